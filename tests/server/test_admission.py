"""Hostile clients against a real server: starving others, unauthenticated bodies, probing ids,
garbage bytes, long batches at SIGTERM, orphaned sessions and a busy port."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import threading
import time

import grpc
import numpy as np
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from server_harness import ADMIN_TOKEN, BIN, Client, Tensor, factory, op, status, tensor

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
SERVICE = spb.DESCRIPTOR.services_by_name["AutogradService"]


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status_file:
        for line in status_file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _control_calls_answer(client: Client, label: str) -> None:
    """Health, ServerInfo and CreateSession answer (each within a generous deadline)."""
    health = health_pb2_grpc.HealthStub(client.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=15)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=15).version
    request = spb.CreateSessionRequest(label=label)
    assert client.stub.CreateSession(request, timeout=15).token


def _idle_stream(client: Client, metadata: tuple) -> tuple[queue.Queue, object]:
    pending: queue.Queue = queue.Queue()
    call = client.stub.ExecuteStream(iter(pending.get, None), metadata=metadata, timeout=60)
    return pending, call


def test_idle_and_unauthenticated_streams_starve_nobody(start_server):
    server = start_server("--workers", "16", "--max-watchers", "2")
    client = Client(server.addr)
    # 40 idle streams with no token, and 40 with a wrong one: refused before anything is read.
    refused = [_idle_stream(client, ()) for _ in range(40)]
    refused += [_idle_stream(client, (("authorization", "Bearer nope"),)) for _ in range(40)]
    for _, call in refused:
        assert status(lambda call=call: next(call))[0] == UNAUTHENTICATED
    # Two sessions each take their whole allowance of streams; the next one is refused.
    streams, watches = [], []
    for s in (client.session(), client.session()):
        streams += [_idle_stream(client, s.md) for _ in range(2)]
        extra = _idle_stream(client, s.md)
        code, message = status(lambda extra=extra: next(extra[1]))
        assert code == EXHAUSTED and "limit is 2" in message
        watches += [s.stub.Watch(spb.WatchRequest(session_id=s.id), metadata=s.md) for _ in "ab"]
        for watch in watches[-2:]:
            assert next(watch).HasField("started")
    _control_calls_answer(client, "still served")
    # A session of an honest client still trains while the others idle.
    honest = client.session()
    honest.execute(tensor("x", np.ones(3, np.float32)), op("mul", Tensor("x"), 2.0, outs=["y"]))
    assert honest.array("y").tolist() == [2.0, 2.0, 2.0]
    for pending, _ in refused + streams:
        pending.put(None)
    client.close()


def test_session_pool_full_fails_fast_but_control_calls_answer(start_server):
    server = start_server("--workers", "2")
    client = Client(server.addr)
    streams = []
    for s in (client.session(), client.session()):
        pending, call = _idle_stream(client, s.md)
        pending.put(cpb.ExecuteRequest(session_id=s.id, sequence=1))
        assert next(call).sequence == 1  # running: it holds one of the two threads
        streams.append((pending, call))  # the call too: a collected call is cancelled
    third = client.session()
    code, message = status(lambda: third.execute())
    assert code == EXHAUSTED and "server busy" in message and "limit is 2" in message
    _control_calls_answer(client, "control calls have threads of their own")
    for pending, _ in streams:
        pending.put(None)
    client.close()


def test_unauthenticated_bodies_are_never_read(start_server):
    server = start_server("--max-message-bytes", "300M")
    client = Client(server.addr)
    before = _rss_kib(server.proc.pid)
    body = np.zeros(250 << 20, np.uint8).tobytes()  # a 250 MiB tensor, no token
    request = cpb.ExecuteRequest(
        session_id="x",
        commands=[cpb.Command(tensor=cpb.CreateTensor(out="t", data={"dtype": 4, "raw": body}))],
    )
    wire = request.SerializeToString()
    del body, request
    send = client.channel.unary_unary(
        "/gradd.v1.AutogradService/Execute",
        request_serializer=None,
        response_deserializer=None,
    )
    for _ in range(3):
        code, _ = status(lambda: send(wire, timeout=30))
        assert code == UNAUTHENTICATED
    grown = _rss_kib(server.proc.pid) - before
    assert grown < 64 << 10, f"the server grew by {grown} KiB reading unauthenticated bodies"
    client.close()


def test_unauthenticated_calls_learn_nothing_about_session_ids(server, client, session):
    for method in ("Execute", "Fetch", "GetGraph", "CloseSession"):
        request_type = {"Execute": cpb.ExecuteRequest}.get(method)
        request_type = request_type or getattr(spb, f"{method}Request")
        call = getattr(client.stub, method)
        answers = set()
        for session_id in (session.id, "no-such-session"):
            for md in ((), (("authorization", "Bearer guess"),)):
                request = request_type(session_id=session_id)
                answers.add(status(lambda r=request, md=md, call=call: call(r, metadata=md)))
        assert len(answers) == 1 and next(iter(answers))[0] == UNAUTHENTICATED, answers


GARBAGE = b"\xff" * 64  # a field key whose varint never ends


def test_garbage_bytes_are_invalid_argument_for_every_method(server, client, session):
    garbage = GARBAGE
    for method in SERVICE.methods:
        path = f"/{SERVICE.full_name}/{method.name}"
        if method.client_streaming:
            stream = client.channel.stream_stream(path)
            code, message = status(lambda s=stream: list(s(iter([GARBAGE]), metadata=session.md)))
        elif method.server_streaming:
            stream = client.channel.unary_stream(path)
            code, message = status(lambda s=stream: list(s(GARBAGE, metadata=session.md)))
        else:
            unary = client.channel.unary_unary(path)
            code, message = status(lambda u=unary: u(GARBAGE, metadata=session.md))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method.name, code, message)
        assert "malformed request" in message
    health = client.channel.unary_unary("/grpc.health.v1.Health/Check")
    code, _ = status(lambda: health(garbage, timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Traceback" not in server.log()


def test_sigterm_stops_a_long_batch_between_commands_within_the_grace(start_server):
    server = start_server("--grace", "1", "--log-level", "debug")
    client = Client(server.addr)
    s = client.session()
    s.execute(factory("m", "randn", [3072, 3072]))
    # Tens of seconds of matmuls, far longer than the grace period, on any device: about a
    # second each on a CPU; on a GPU a millisecond each, but the host waits once CUDA's launch
    # queue is full, so the batch's commands are not all queued at once.
    n = 16_000
    matmuls = [op("matmul", Tensor("m"), Tensor("m"), outs=["p"]) for _ in range(n)]
    result: dict = {}

    def long_call() -> None:
        try:
            result["reply"] = s.execute(*matmuls)
        except grpc.RpcError as err:
            result["error"] = err

    caller = threading.Thread(target=long_call)
    caller.start()
    server.wait_log(rf"execute {s.id}: {n} commands")
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0
    took = time.monotonic() - signalled
    caller.join(timeout=60)
    assert "error" in result  # the batch did not run to its end
    assert took < 10, took  # generous bound: the batch alone takes tens of seconds
    log = server.log()
    assert "server shutting down" in log and f"session {s.id} closed (shutdown" in log
    client.close()


def test_a_session_whose_stream_ended_without_close_is_an_orphan(start_server):
    server = start_server("--orphan-ttl", "2")
    client = Client(server.addr)
    orphan, kept = client.session(), client.session()
    for s in (orphan, kept):
        pending, call = _idle_stream(client, s.md)
        pending.put(cpb.ExecuteRequest(session_id=s.id, sequence=1))
        assert next(call).sequence == 1
        pending.put(None)  # the client's stream ends; no CloseSession
        assert list(call) == []
    kept.execute(tensor("x", [1.0]))  # its client comes back: no longer an orphan
    # A session that is used without a stream (grpcurl) is no orphan.
    grpcurl_like = client.session()
    grpcurl_like.execute(tensor("x", [1.0]))
    server.wait_log(rf"session {orphan.id} closed \(orphaned")
    time.sleep(2.5)
    assert kept.array("x").tolist() == [1.0] and grpcurl_like.array("x").tolist() == [1.0]
    code, message = status(lambda: orphan.fetch("x"))
    assert code == grpc.StatusCode.NOT_FOUND and "orphaned" in message
    client.close()


def test_closed_session_token_answers_not_found(session):
    session.close()
    code, message = status(lambda: session.fetch("x"))
    assert code == grpc.StatusCode.NOT_FOUND and "closed" in message


def test_list_sessions_with_a_session_token_is_permission_denied(client, session):
    code, _ = status(
        lambda: client.stub.ListSessions(spb.ListSessionsRequest(), metadata=session.md)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    listed = client.stub.ListSessions(spb.ListSessionsRequest(), metadata=admin)
    assert session.id in [s.session_id for s in listed.sessions]


def test_a_busy_port_is_one_line_and_exit_status_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "gradd-server"), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"gradd-server: cannot listen on 127.0.0.1:{port} (in use, or not an address here)"
    ], done.stderr


def test_calls_without_a_token_cannot_hold_threads_by_sending_slowly(start_server):
    server = start_server()
    client = Client(server.addr)
    # Calls that never send their request: they would hold every control thread for ever.
    path = "/gradd.v1.AutogradService/CreateSession"
    silent = client.channel.stream_unary(path, request_serializer=None)
    pending: queue.Queue = queue.Queue()
    held = [silent.future(iter(pending.get, None), timeout=60) for _ in range(8)]
    _control_calls_answer(client, "after the slow ones were cut off")
    for call in held:
        assert call.exception(timeout=30).code() == grpc.StatusCode.CANCELLED
    for _ in held:
        pending.put(None)
    client.close()
