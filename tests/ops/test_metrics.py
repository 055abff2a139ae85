"""Metrics and logs of a real gradd-server: the Prometheus endpoint moves after real calls, and
the JSON log lines carry session ids but never a token."""

from __future__ import annotations

import json
import logging
import time
import urllib.request

import article_commands as article
import grpc
import pytest
from gradd.server.log_format import JsonFormatter, mask_secrets, session_id_of
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from prometheus_client.parser import text_string_to_metric_families
from server_harness import Client, ServerProcess, Tensor, op, status

Sample = tuple[str, tuple[tuple[str, str], ...]]
SERVICE = "gradd.v1.AutogradService"


def scrape(url: str) -> dict[Sample, float]:
    """Every sample of the endpoint, by name and sorted labels."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """One sample's value (0 when it does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def rpc(method: str, code: str = "OK") -> dict[str, str]:
    return {"service": SERVICE, "method": method, "code": code}


@pytest.fixture(scope="module")
def client(ops_server: ServerProcess) -> Client:
    c = Client(ops_server.addr)
    yield c
    c.close()


def test_counters_histograms_and_gauges_move_after_real_calls(ops_server, client):
    url = ops_server.metrics_url
    before = scrape(url)
    s = client.session(seed=42, label="metered")
    s.execute(*article.setup(*article.data()))
    for _ in range(5):
        s.execute(*article.epoch())
    epoch_ops = sum(c.WhichOneof("kind") == "op" for c in article.epoch())
    unknown_op = status(lambda: s.execute(op("no_such_op", Tensor("b"))))[0]
    assert unknown_op == grpc.StatusCode.INVALID_ARGUMENT

    def batches():  # three batches on one stream, the second one failing
        for i, commands in enumerate([article.epoch(), [op("no_such_op")], article.epoch()]):
            yield cpb.ExecuteRequest(session_id=s.id, sequence=i, commands=commands)

    answers = list(s.stub.ExecuteStream(batches(), metadata=s.md, timeout=60))
    assert [a.HasField("error") for a in answers] == [False, True, False]
    wrong = (("authorization", "Bearer not-the-token"),)
    request = spb.FetchRequest(session_id=s.id, handle="b")
    assert status(lambda: s.stub.Fetch(request, metadata=wrong))[0].name == "UNAUTHENTICATED"
    s.fetch("b")
    during = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    # Ops and backward calls, counted from the commands of Execute and ExecuteStream batches.
    assert delta("gradd_ops_total") == 7 * epoch_ops + 2
    assert delta("gradd_backward_total") == 7
    assert delta("gradd_commands_total", kind="backward") == 7
    assert delta("gradd_commands_total", kind="factory") == 2  # b and w from randn
    # Statuses: the unary failure, the failed stream batch and the wrong token are errors.
    assert delta("gradd_rpcs_total", **rpc("Execute")) == 6
    assert delta("gradd_rpcs_total", **rpc("Execute", "INVALID_ARGUMENT")) == 1
    assert delta("gradd_rpcs_total", **rpc("ExecuteStream")) == 1
    assert delta("gradd_rpcs_total", **rpc("Fetch", "UNAUTHENTICATED")) == 1
    assert delta("gradd_errors_total", code="INVALID_ARGUMENT") == 2
    assert delta("gradd_errors_total", code="UNAUTHENTICATED") == 1
    # Latency histograms: one observation per RPC, and per batch for Execute(Stream).
    by_method = {"service": SERVICE, "method": "Execute"}
    assert delta("gradd_rpc_duration_seconds_count", **by_method) == 7
    assert delta("gradd_rpc_duration_seconds_sum", **by_method) > 0
    assert value(during, "gradd_rpc_duration_seconds_bucket", le="+Inf", **by_method) == value(
        during, "gradd_rpc_duration_seconds_count", **by_method
    )
    assert delta("gradd_batch_duration_seconds_count", method="ExecuteStream") == 3
    assert delta("gradd_batch_duration_seconds_count", method="Execute") == 7
    # Gauges read from the session store at scrape time.
    assert delta("gradd_sessions_open") == 1
    assert value(during, "gradd_tensors_held") >= 4  # b, w, x, y at least
    assert value(during, "gradd_bytes_held") >= 2 * 80 * 4  # x and y
    assert value(during, "process_resident_memory_bytes") > 0

    s.close()
    after = scrape(url)
    assert value(after, "gradd_sessions_open") == value(before, "gradd_sessions_open")


def test_a_watcher_hanging_up_is_cancelled_not_an_error(ops_server, client):
    before = scrape(ops_server.metrics_url)
    s = client.session(seed=1)
    watch = s.stub.Watch(spb.WatchRequest(session_id=s.id), metadata=s.md)
    assert next(watch).HasField("started")
    during = scrape(ops_server.metrics_url)
    assert value(during, "gradd_watchers_open") == value(before, "gradd_watchers_open") + 1
    watch.cancel()
    cancelled = rpc("Watch", "CANCELLED")
    deadline = time.monotonic() + 30
    while value(scrape(ops_server.metrics_url), "gradd_rpcs_total", **cancelled) <= value(
        before, "gradd_rpcs_total", **cancelled
    ):
        assert time.monotonic() < deadline, "the cancelled Watch was never counted"
        time.sleep(0.05)
    after = scrape(ops_server.metrics_url)
    assert value(after, "gradd_errors_total", code="CANCELLED") == 0
    s.close()


def test_an_sdk_session_closing_normally_is_no_cancelled_call(ops_server):
    import gradd

    before = scrape(ops_server.metrics_url)
    s = gradd.connect(ops_server.addr)
    x = s.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    s.close()
    after = scrape(ops_server.metrics_url)
    for code in ("OK", "CANCELLED"):
        moved = value(after, "gradd_rpcs_total", **rpc("ExecuteStream", code)) - value(
            before, "gradd_rpcs_total", **rpc("ExecuteStream", code)
        )
        assert moved == (1 if code == "OK" else 0), code


def test_logs_are_json_lines_with_session_ids_and_never_a_token(ops_server, client):
    s = client.session(seed=7, label="logged")
    token = s.created.token
    status(lambda: s.execute(op("no_such_op")))  # logged as a failure of this session
    wrong = (("authorization", f"Bearer {token}x"),)
    status(lambda: s.stub.Fetch(spb.FetchRequest(session_id=s.id, handle="b"), metadata=wrong))
    s.close()
    ops_server.wait_log(rf"session {s.id} closed")
    text = ops_server.log()
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert entries and all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    mine = [e for e in entries if e.get("session_id") == s.id]
    assert any("opened" in e["msg"] for e in mine) and any("closed" in e["msg"] for e in mine)
    assert any("no_such_op" in e["msg"] for e in mine)
    assert any("listening on" in e["msg"] for e in entries)
    assert any("metrics on http://" in e["msg"] for e in entries)
    assert token not in text and ops_server.admin_token not in text


def test_metrics_are_off_by_default_and_text_logs_too(tmp_path):
    server = ServerProcess(tmp_path / "plain.log")
    try:
        text = server.log()
        assert "metrics on" not in text and not text.lstrip().startswith("{")
        assert " INFO gradd.server: gradd-server " in text
    finally:
        server.stop()


def test_bad_log_format_is_a_usage_error(tmp_path):
    with pytest.raises(AssertionError, match="--log-format must be text or json"):
        ServerProcess(tmp_path / "bad.log", "--log-format", "xml")


def test_formatter_masks_secrets_and_finds_session_ids():
    assert mask_secrets("authorization: Bearer abc.DEF-1") == "authorization: Bearer <redacted>"
    assert mask_secrets('{"token": "s3cret"} token=s3cret') == (
        '{"token": "<redacted>"} token=<redacted>'
    )
    # The server's own message about tokens stays readable.
    assert mask_secrets("missing or wrong token: send metadata") == (
        "missing or wrong token: send metadata"
    )
    record = logging.LogRecord("gradd.server", logging.INFO, "", 0, "%s: session %s: %s", (
        "x", "abc", "Bearer zzz"), None)  # fmt: skip
    assert session_id_of(record) == "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["session_id"] == "abc" and entry["msg"] == "x: session abc: Bearer <redacted>"
    limit = logging.LogRecord("gradd.server", logging.INFO, "", 0, "session limit: 3", (), None)
    assert session_id_of(limit) is None
    extra = logging.LogRecord("gradd.server", logging.INFO, "", 0, "hi", (), None)
    extra.session_id, extra.token = "s9", "t0k"
    entry = json.loads(JsonFormatter().format(extra))
    assert entry["session_id"] == "s9" and entry["token"] == "<redacted>"
