"""`gradd dashboard` in a real headless Chromium against a real gradd-server.

Debian's `chromium` driven by Playwright for Python (`.ci/run` installs both; Playwright's own
browser download is not used). A session trains through the SDK while the page watches: the page
lists it by its label, its loss curve gains points, its graph appears as SVG, and once closed it
is marked ended. Screenshots go to build/dashboard-screenshots/; any console error fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import gradd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("GRADD_SCREENSHOTS", ROOT / "build" / "dashboard-screenshots"))
CHROMIUM = os.environ.get("GRADD_CHROMIUM") or shutil.which("chromium")
HAS_DOT = shutil.which("dot") is not None
WAIT_MS = 30_000  # the longest any one thing may take to show on the page

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

needs_browser = pytest.mark.skipif(
    sync_playwright is None or CHROMIUM is None,
    reason="needs Playwright for Python (dev extra) and Debian's chromium "
    "(apt-get install chromium; .ci/run installs it) or GRADD_CHROMIUM=/path/to/chromium",
)


class Dashboard:
    """`gradd dashboard TARGET [SESSION] --port 0` in a subprocess; `url` once it serves."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gradd.cli", "dashboard", *args, "--port", "0"],
            env={**os.environ, "GRADD_TOKEN": "", "GRADD_ADMIN_TOKEN": "", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("gradd dashboard: http://"):
            self.proc.kill()
            raise AssertionError(line + self.proc.stdout.read() + self.proc.stderr.read())
        self.url = line.split()[2]

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; its exit status and everything it printed."""
        self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out + err


class Trainer(threading.Thread):
    """The article's loop through the SDK, paced so the page sees it train, until stopped;
    then the session is closed."""

    def __init__(self, target: str, label: str) -> None:
        super().__init__(name="dashboard-trainer", daemon=True)
        self.session = gradd.connect(target, label=label, seed=42)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        s = self.session
        try:
            x = s.rand(80, 1)
            y = 1 + 2 * x + 0.1 * s.randn(80, 1)
            b = s.randn(1, requires_grad=True)
            w = s.randn(1, requires_grad=True)
            for epoch in range(3000):  # bounded: about a minute at this pace
                if self.stop_event.is_set():
                    break
                loss = ((y - (b + w * x)) ** 2).mean()
                loss.backward()
                with s.no_grad():
                    b -= 0.05 * b.grad
                    w -= 0.05 * w.grad
                b.grad.zero_(), w.grad.zero_()
                if epoch % 5 == 4:
                    s.synchronize()
                    time.sleep(0.1)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            s.close()

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)
        assert not self.is_alive() and self.error is None, self.error


def open_page(browser, url: str):
    """A page at `url` whose console errors and uncaught exceptions are collected."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.goto(url)
    return page, errors


def points(page) -> int:
    return int(page.get_attribute("#chart", "data-points"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@needs_browser
def test_page_follows_a_training_session_to_its_end(ops_server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin = ops_server.admin_token
    dash = Dashboard(ops_server.addr, "--refresh", "0.5", env={"GRADD_ADMIN_TOKEN": admin})
    label = f"dash-{uuid.uuid4().hex[:8]}"
    trainer = Trainer(ops_server.addr, label)
    try:
        page, errors = open_page(browser, dash.url)
        page.wait_for_selector("#connection.live", timeout=WAIT_MS)
        trainer.start()
        row = page.wait_for_selector(f'tr[data-label="{label}"]', timeout=WAIT_MS)
        row.click()
        page.wait_for_function(
            "n => document.querySelector('#chosen').textContent.includes(n)",
            arg=label,
            timeout=WAIT_MS,
        )
        # The curve gains points while it trains, pushed by the page's server.
        page.wait_for_function(
            "() => +document.querySelector('#chart').dataset.points > 0", timeout=WAIT_MS
        )
        first = points(page)
        page.wait_for_function(
            "n => +document.querySelector('#chart').dataset.points > n + 20",
            arg=first,
            timeout=WAIT_MS,
        )
        assert page.query_selector("#chart canvas") is not None  # uPlot drew it
        # The graph snapshot, as Graphviz's SVG (its DOT text without Graphviz), with the loss's
        # op in it.
        drawn = "#graph svg" if HAS_DOT else "#graph pre"
        svg = page.wait_for_selector(drawn, state="attached", timeout=WAIT_MS)
        assert "MeanBackward0" in svg.text_content()
        rate = page.text_content(f'tr[data-label="{label}"] td.rate')
        page.check("#log-scale")
        page.fill("#smoothing", "0.9")
        page.wait_for_selector("#chart canvas", timeout=WAIT_MS)
        page.screenshot(path=str(SHOTS / "training.png"), full_page=True)

        trainer.finish()  # closes the session
        ended = page.wait_for_selector(f'tr.ended[data-label="{label}"]', timeout=WAIT_MS)
        assert ended.query_selector("td.status").text_content() == "ended (closed)"
        assert page.text_content("#chosen").endswith("ended (closed)")
        page.screenshot(path=str(SHOTS / "ended.png"), full_page=True)

        content = page.content()
        page.close()
        assert errors == [], errors
        assert rate.endswith("/s") or rate == "-", rate
        assert admin not in content and trainer.session.id in content
    finally:
        trainer.stop_event.set()
        code, printed = dash.stop()
    assert code == 0, printed
    assert admin not in printed
    assert (SHOTS / "training.png").stat().st_size > 10_000
    assert (SHOTS / "ended.png").stat().st_size > 10_000


@needs_browser
def test_one_session_with_its_own_token(ops_server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    s = gradd.connect(ops_server.addr, label="own-token", seed=1)
    try:
        x = s.rand(8, 1)
        w = s.randn(1, requires_grad=True)
        for _ in range(3):
            loss = (w * x).pow(2).mean()
            loss.backward()
        s.synchronize()
        dash = Dashboard(ops_server.addr, s.id, env={"GRADD_TOKEN": s.token})
        try:
            page, errors = open_page(browser, dash.url)
            page.wait_for_selector(f'tr[data-session="{s.id}"]', timeout=WAIT_MS)
            # Watch starts from now: a step taken now shows; the graph is sent on connect.
            (w * x).pow(2).mean().backward()
            s.synchronize()
            page.wait_for_function(
                "() => +document.querySelector('#chart').dataset.points >= 1", timeout=WAIT_MS
            )
            drawn = "#graph svg" if HAS_DOT else "#graph pre"
            page.wait_for_selector(drawn, state="attached", timeout=WAIT_MS)
            page.screenshot(path=str(SHOTS / "one-session.png"), full_page=True)
            content = page.content()
            page.close()
            assert errors == [], errors
            assert s.token not in content
        finally:
            code, printed = dash.stop()
        assert code == 0 and s.token not in printed, printed
    finally:
        s.close()


@needs_browser
def test_a_server_that_stops_is_shown(browser, tmp_path):
    from server_harness import ServerProcess

    server = ServerProcess(tmp_path / "server.log", env={"GRADD_ADMIN_TOKEN": "stopping-admin"})
    try:
        s = gradd.connect(server.addr, label="until-shutdown")
        dash = Dashboard(
            server.addr, "--refresh", "0.5", env={"GRADD_ADMIN_TOKEN": "stopping-admin"}
        )
        try:
            page, errors = open_page(browser, dash.url)
            page.wait_for_selector('tr[data-label="until-shutdown"]', timeout=WAIT_MS)
            assert server.terminate() == 0
            row = page.wait_for_selector('tr.ended[data-label="until-shutdown"]', timeout=WAIT_MS)
            assert row.query_selector("td.status").text_content() == "ended (shutdown)"
            problem = page.wait_for_selector("#server-status", state="visible", timeout=WAIT_MS)
            assert "UNAVAILABLE: cannot reach a gradd-server" in problem.text_content()
            page.screenshot(path=str(SHOTS / "server-stopped.png"), full_page=True)
            page.close()
            # EventSource and the page's own fetches never failed: only the gradd-server went.
            assert errors == [], errors
        finally:
            code, printed = dash.stop()
        assert code == 0 and "stopping-admin" not in printed, printed
        s.close()
    finally:
        server.stop()


def run_dashboard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradd.cli", "dashboard", *args, "--port", "0"],
        env={**os.environ, "GRADD_TOKEN": "", "GRADD_ADMIN_TOKEN": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refusals_exit_2_with_one_line_and_no_token(ops_server):
    missing = run_dashboard(ops_server.addr, env={})
    assert missing.returncode == 2 and "GRADD_ADMIN_TOKEN" in missing.stderr
    wrong = run_dashboard(ops_server.addr, env={"GRADD_ADMIN_TOKEN": "wrong-admin-token"})
    assert wrong.returncode == 2, wrong.stderr
    assert wrong.stderr.startswith("gradd dashboard: UNAUTHENTICATED: ")
    assert "wrong-admin-token" not in wrong.stdout + wrong.stderr
    fast = run_dashboard(ops_server.addr, "--refresh", "0", env={"GRADD_ADMIN_TOKEN": "x"})
    assert fast.returncode == 2 and "--refresh" in fast.stderr


def test_the_board_pushes_each_point_once_and_stays_bounded(monkeypatch):
    from gradd import dashboard
    from gradd.v1 import service_pb2 as spb
    from gradd.v1 import watch_pb2 as wpb

    monkeypatch.setattr(dashboard, "MAX_POINTS", 8)
    monkeypatch.setattr(dashboard, "KEEP_ENDED", 1)
    board = dashboard.Board()
    board.listed([spb.SessionSummary(session_id="a", label="first", bytes=10)], now=100.0)

    def step(n: int) -> wpb.WatchEvent:
        return wpb.WatchEvent(timestamp=100.0 + n, step=wpb.StepEvent(step=n, loss=1.0 / n))

    for n in range(1, 6):
        board.event("a", step(n))
    first = board.changes()
    assert first["points"] == {"a": [(n, 1.0 / n) for n in range(1, 6)]}
    assert first["sessions"][0]["label"] == "first" and first["sessions"][0]["steps"] == 5
    assert board.changes() is None  # nothing new: nothing pushed
    assert board.snapshot()["points"]["a"] == [(n, 1.0 / n) for n in range(1, 6)]
    for n in range(6, 10):  # past MAX_POINTS: every other point kept, all sent again
        board.event("a", step(n))
    thinned = board.changes()
    assert thinned["points"] == {} and [p[0] for p in thinned["replace"]["a"]] == [1, 3, 5, 7, 9]
    # Ended sessions beyond KEEP_ENDED are forgotten, and the pages told.
    board.event("a", wpb.WatchEvent(ended=wpb.SessionEndedEvent(reason="closed")))
    board.listed([spb.SessionSummary(session_id="b")], now=101.0)
    assert set(board.sessions) == {"a", "b"}
    board.event("b", wpb.WatchEvent(ended=wpb.SessionEndedEvent(reason="expired")))
    board.listed([], now=102.0)
    assert set(board.sessions) == {"b"} and board.changes()["forget"] == ["a"]
