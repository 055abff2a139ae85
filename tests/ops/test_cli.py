"""The `gradd` command end to end against a real gradd-server: watch, sessions, graph, errors."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import article_commands as article
import pytest
from gradd.cli import human_bytes, human_seconds
from gradd.cli_render import write_graph
from gradd.cli_watch import LossHistory, Watch, WatchOptions, step_line
from gradd.v1 import watch_pb2 as wpb
from server_harness import Client

GRADD = [sys.executable, "-m", "gradd.cli"]
HAS_DOT = shutil.which("dot") is not None


def gradd(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run `gradd ARGS` to completion."""
    return subprocess.run(
        [*GRADD, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, **kw
    )


def start_watch(addr: str, session, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`gradd watch` in the background, returned once it is registered as a watcher."""
    proc = subprocess.Popen(
        [*GRADD, "watch", addr, session.id, "--plain", *args],
        env={**os.environ, "GRADD_TOKEN": session.created.token, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()  # the first thing it says: it is watching
    assert line.startswith(f"watching session {session.id}"), line + proc.stderr.read()
    return proc


def train(session, steps: int) -> None:
    """The article's linear regression, `steps` epochs, in one batch per epoch."""
    session.execute(*article.setup(*article.data()))
    for _ in range(steps):
        session.execute(*article.epoch())


@pytest.fixture(scope="module")
def client(ops_server) -> Client:
    c = Client(ops_server.addr)
    yield c
    c.close()


def test_watch_prints_steps_and_writes_pictures_at_session_end(ops_server, client, tmp_path):
    s = client.session(seed=42, label="watched")
    png, svg = tmp_path / "loss.png", tmp_path / "graph.svg"
    proc = start_watch(ops_server.addr, s, "--png", str(png), "--graph", str(svg))
    train(s, 40)
    s.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 40
    found = [re.fullmatch(r"step (\d+)  loss (\S+)  rate (\S+) steps/s", line) for line in lines]
    assert all(found), lines[:3]
    assert [int(m.group(1)) for m in found] == list(range(1, 41))
    losses = [float(m.group(2)) for m in found]
    assert losses[-1] < losses[0] / 2  # it trains
    assert f"session {s.id} ended (closed)" in err
    assert png.read_bytes().startswith(b"\x89PNG") and "wrote" in err
    if HAS_DOT:
        assert "<svg" in svg.read_text() and "MeanBackward0" in svg.read_text()
    else:
        assert "MeanBackward0" in svg.with_suffix(".dot").read_text() and "not installed" in err
    assert s.created.token not in out + err


def test_watch_writes_on_sigusr1_and_every_n_and_exits_0_on_sigterm(ops_server, client, tmp_path):
    s = client.session(seed=1)
    png, every_png = tmp_path / "now.png", tmp_path / "every.png"
    proc = start_watch(ops_server.addr, s, "--png", str(png), "--print-every", "5")
    every = start_watch(ops_server.addr, s, "--png", str(every_png), "--every", "10")
    train(s, 10)
    wait_for(lambda: every_png.exists())  # step 10 reached: written without being asked
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: png.exists())
    proc.send_signal(signal.SIGTERM)
    every.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1].startswith("step 10  loss")  # --print-every 5: steps 5 and 10
    assert len(out.splitlines()) == 2
    assert err.count(f"wrote {png}") == 2  # on SIGUSR1 and on exit
    assert every.wait(timeout=30) == 0
    s.close()


def test_sessions_lists_every_session_for_the_admin(ops_server, client):
    s = client.session(seed=3, label="listed")
    train(s, 3)
    admin = ops_server.admin_token
    result = gradd("sessions", ops_server.addr, env={"GRADD_ADMIN_TOKEN": admin})
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "SESSION", "LABEL", "DEVICE", "AGE", "IDLE", "TENSORS", "BYTES", "STEPS", "WATCHERS"
    ]  # fmt: skip
    row = next(r.split() for r in rows if r.startswith(s.id))
    assert row[1:3] == ["listed", "cpu"] and row[-2:] == ["3", "0"]
    as_json = gradd("sessions", ops_server.addr, "--json", "--admin-token", admin)
    mine = [json.loads(line) for line in as_json.stdout.splitlines()]
    mine = next(r for r in mine if r["session"] == s.id)
    assert mine["steps"] == 3 and mine["tensors"] > 0 and mine["bytes"] > 0
    assert admin not in result.stdout + result.stderr + as_json.stdout
    s.close()


def test_graph_renders_one_tensor(ops_server, client, tmp_path):
    s = client.session(seed=4)
    train(s, 1)
    env = {"GRADD_TOKEN": s.created.token}
    dot_text = gradd("graph", ops_server.addr, s.id, "loss", "--param", "b=b", env=env)
    assert dot_text.returncode == 0 and dot_text.stdout.startswith("digraph")
    assert "MeanBackward0" in dot_text.stdout and 'label="b\\n' in dot_text.stdout  # --param
    out = tmp_path / "loss.svg"
    drawn = gradd("graph", ops_server.addr, s.id, "loss", "-o", str(out), env=env)
    assert drawn.returncode == 0, drawn.stderr
    if HAS_DOT:
        assert "<svg" in out.read_text() and f"wrote {out}" in drawn.stdout
        # Any format `dot` draws that people ask for, by the suffix; an unknown one says so.
        jpg = tmp_path / "loss.jpg"
        as_jpg = gradd("graph", ops_server.addr, s.id, "loss", "-o", str(jpg), env=env)
        assert as_jpg.stdout == f"wrote {jpg} (7 nodes)\n", as_jpg.stdout + as_jpg.stderr
        assert jpg.read_bytes().startswith(b"\xff\xd8\xff")  # JPEG
        odd = gradd("graph", ops_server.addr, s.id, "loss", "-o", str(tmp_path / "g.xyz"), env=env)
        assert ".xyz is not one of .svg, .png" in odd.stdout and "not installed" not in odd.stdout
    # Without Graphviz's `dot` on PATH it writes the DOT text and says so.
    no_dot = {**env, "PATH": str(Path(sys.executable).parent)}
    text_only = gradd(
        "graph", ops_server.addr, s.id, "loss", "-o", str(tmp_path / "g.svg"), env=no_dot
    )
    assert text_only.returncode == 0, text_only.stderr
    assert "not installed" in text_only.stdout
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    s.close()


@pytest.mark.parametrize(
    "args, token, code",
    [
        # Another session's token learns nothing about an id: UNAUTHENTICATED, not NOT_FOUND.
        (["watch", "{addr}", "no-such-session"], "{token}", "UNAUTHENTICATED"),
        (["watch", "{addr}", "{sid}"], "wrong-token", "UNAUTHENTICATED"),
        (["graph", "{addr}", "{sid}", "no-such-handle"], "{token}", "NOT_FOUND"),
        (["graph", "127.0.0.1:1", "{sid}", "loss"], "{token}", "UNAVAILABLE"),
        (["sessions", "{addr}", "--admin-token", "{token}"], "", "PERMISSION_DENIED"),
        (["sessions", "{addr}", "--admin-token", "wrong-admin"], "", "UNAUTHENTICATED"),
    ],
)
def test_failures_exit_2_with_one_line_and_no_token(ops_server, client, args, token, code):
    s = client.session(seed=5)
    fill = {"addr": ops_server.addr, "sid": s.id, "token": s.created.token}
    argv = [a.format(**fill) for a in args]
    result = gradd(*argv, env={"GRADD_TOKEN": token.format(**fill)}, timeout=60)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"gradd {args[0]}: {code}: "), result.stderr
    assert s.created.token not in result.stderr and "wrong-token" not in result.stderr
    s.close()


def test_sessions_without_an_admin_token_says_how_to_give_one():
    result = gradd("sessions", "127.0.0.1:1", env={"GRADD_ADMIN_TOKEN": ""})
    assert result.returncode == 2 and "GRADD_ADMIN_TOKEN" in result.stderr


def test_small_pieces():
    assert step_line(3, 0.5, 12.25) == "step 3  loss 0.5  rate 12.2 steps/s"
    assert step_line(1, None, None) == "step 1  loss -  rate - steps/s"
    history = LossHistory()
    for i in range(1, 11):
        history.add(wpb.StepEvent(step=i, loss=1.0 / i), timestamp=100.0 + i / 2)
    assert history.rate() == pytest.approx(2.0) and history.steps == list(range(1, 11))
    # A burst (the SDK sends steps in batches) claims no rate until a second has been seen.
    burst = LossHistory()
    for i in range(1, 6):
        burst.add(wpb.StepEvent(step=i), timestamp=100.0 + i / 1000)
    assert burst.rate() is None
    burst.add(wpb.StepEvent(step=6), timestamp=101.5)
    assert burst.rate() == pytest.approx(5 / 1.499)
    assert [human_seconds(s) for s in (5, 185, 7800, 100000)] == ["5s", "3m05s", "2h10m", "1d03h"]
    assert [human_bytes(n) for n in (512, 1536, 64 << 20)] == ["512 B", "1.5 KiB", "64.0 MiB"]


def test_write_graph_without_dot_writes_dot_text(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    path, rendered = write_graph(tmp_path / "g.png", "digraph { a -> b }")
    assert (path, rendered) == (tmp_path / "g.dot", False)
    assert path.read_text() == "digraph { a -> b }"


def wait_for(condition, timeout: float = 30.0) -> None:
    """Poll until `condition()` holds (bounded; never asserts on timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_live_display_over_any_event_iterator(tmp_path):
    now = time.time()
    events = [wpb.WatchEvent(seq=1, timestamp=now, started=wpb.WatchStartedEvent(step=0))]
    events += [
        wpb.WatchEvent(seq=i + 1, timestamp=now + i / 10, step=wpb.StepEvent(step=i, loss=1 / i))
        for i in range(1, 50)
    ]
    events.append(wpb.WatchEvent(seq=60, ended=wpb.SessionEndedEvent(reason="expired")))
    out, err = io.StringIO(), io.StringIO()
    sid = "ecd64f8c60e2fd30ecd64f8c60e2fd30"  # as long as the SDK's ids
    watch = Watch(sid, WatchOptions(live=True, png=str(tmp_path / "c.png")), out=out, err=err)
    watch.run(iter(events))
    assert "step 49  loss 0.0204082  rate 10.0 steps/s" in out.getvalue()
    assert f"session {sid} ended (expired)" in out.getvalue()
    # The live line fits an 80-column terminal: never wrapped onto a second line.
    live_lines = [line for line in out.getvalue().splitlines() if "loss" in line]
    assert live_lines and all(len(line.split("\x1b")[0]) <= 80 for line in live_lines)
    assert watch.ended == "expired" and (tmp_path / "c.png").exists()


def test_the_admin_token_opens_any_session(ops_server, client):
    s = client.session(seed=6)
    train(s, 1)
    env = {"GRADD_TOKEN": "", "GRADD_ADMIN_TOKEN": ops_server.admin_token}
    result = gradd("graph", ops_server.addr, s.id, "loss", env=env)
    assert result.returncode == 0 and result.stdout.startswith("digraph"), result.stderr
    s.close()


def test_watch_writes_tensorboard_events_read_back_by_tensorboard(ops_server, client, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    s = client.session(seed=7, label="tensorboard")
    logdir = tmp_path / "tb"
    proc = start_watch(ops_server.addr, s, "--tensorboard", str(logdir))
    s.execute(*article.setup(*article.data()))
    for _ in range(30):  # paced over more than a second, so the step rate is measured
        s.execute(*article.epoch())
        time.sleep(0.05)
    s.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    printed = {
        int(m.group(1)): float(m.group(2)) for m in re.finditer(r"step (\d+)  loss (\S+)", out)
    }
    assert f"wrote TensorBoard events to {logdir}" in err
    # TensorBoard's own reader finds what `gradd watch` printed.
    events = EventAccumulator(str(logdir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss", "steps_per_second"} <= set(tags["scalars"])
    losses = events.Scalars("loss")
    assert [e.step for e in losses] == list(range(1, 31)) == sorted(printed)
    assert [e.value for e in losses] == pytest.approx([printed[i] for i in range(1, 31)], rel=1e-5)
    rates = events.Scalars("steps_per_second")
    assert rates and all(r.value > 0 for r in rates)
    if HAS_DOT:
        images = events.Images("graph")
        assert images and images[0].step == 1
        assert images[0].encoded_image_string.startswith(b"\x89PNG")
        assert images[0].width > 0 and images[0].height > 0
    else:
        assert "graph" not in tags["images"] and "dot` is not installed" in err
