"""SIGTERM: refuse new calls, let the running one finish, end streams, exit 0."""

from __future__ import annotations

import queue
import signal
import threading

import grpc
import numpy as np
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import Client, Tensor, op, status, tensor

LONG_BATCH = 400  # matmuls of 300x300: long enough to be running when SIGTERM arrives


def test_sigterm_finishes_running_calls_and_exits_0(start_server):
    server = start_server("--grace", "60", "--log-level", "debug")
    client = Client(server.addr)
    s = client.session()
    watch = s.stub.Watch(spb.WatchRequest(session_id=s.id), metadata=s.md, timeout=120)
    assert next(watch).HasField("started")
    # An idle ExecuteStream: open, one batch answered, then waiting for the next.
    pending: queue.Queue = queue.Queue()
    stream = s.stub.ExecuteStream(iter(pending.get, None), metadata=s.md, timeout=120)
    pending.put(cpb.ExecuteRequest(session_id=s.id, sequence=1))
    assert next(stream).sequence == 1

    m = Tensor("m")
    matmuls = [op("matmul", m, m, outs=["p"]) for _ in range(LONG_BATCH)]
    s.execute(tensor("m", np.random.default_rng(0).standard_normal((300, 300))))
    result: dict = {}

    def long_call() -> None:
        try:
            result["reply"] = s.execute(*matmuls)
        except grpc.RpcError as err:
            result["error"] = err

    caller = threading.Thread(target=long_call)
    caller.start()
    server.wait_log(rf"execute {s.id}: {LONG_BATCH} commands")  # it is running now
    server.proc.send_signal(signal.SIGTERM)
    server.wait_log("shutting down")

    late = Client(server.addr)
    code, _ = status(lambda: late.session())
    assert code == grpc.StatusCode.UNAVAILABLE  # no new calls
    caller.join(timeout=120)
    assert "error" not in result and result["reply"].applied == LONG_BATCH  # it finished
    assert [e.ended.reason for e in watch] == ["shutdown"]
    code, _ = status(lambda: next(stream))
    assert code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    pending.put(None)
    assert server.proc.wait(timeout=120) == 0
    log = server.log()
    assert f"session {s.id} closed (shutdown" in log and "stopped" in log
    assert s.created.token not in log  # never the token
    late.close()
    client.close()
