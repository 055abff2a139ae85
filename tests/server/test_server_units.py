"""In-process checks of the server's parts: wire framing, configuration, memory, grad mode."""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import ThreadPoolExecutor

import gradd.engine as ge
import numpy as np
import pytest
from gradd.server import answer_bytes, request_views
from gradd.server.command_runner import execute
from gradd.server.config import ServerConfig, parse_config, parse_size
from gradd.server.session_store import SessionStore
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import tensor_pb2 as tpb
from server_harness import Tensor, op, tensor


def test_large_requests_are_parsed_with_raw_payloads_left_in_place():
    arrays = [np.arange(40_000, dtype=np.float32), np.ones(3), np.arange(5)]
    commands = [
        tensor("a", arrays[0], requires_grad=True),
        op("neg", Tensor("a"), outs=["n"]),
        tensor("b", arrays[1]),
        cpb.Command(tensor=cpb.CreateTensor(out="t", data=tpb.TensorData(float_values=[1.0]))),
        tensor("c", arrays[2]),
    ]
    request = cpb.ExecuteRequest(session_id="s", commands=commands, sequence=7)
    received = request_views.read_execute_request(request.SerializeToString())
    views = received.raw_views
    assert sorted(views) == [0, 2, 4]
    for index, array in zip((0, 2, 4), arrays):
        assert bytes(views[index]) == array.tobytes()
    # The parsed message is the request without those payloads, and reads like it.
    stripped = cpb.ExecuteRequest()
    stripped.CopyFrom(request)
    for index in views:
        stripped.commands[index].tensor.data.ClearField("raw")
    assert received.message == stripped and received.sequence == 7
    small = request_views.read_execute_request(
        cpb.ExecuteRequest(commands=commands[2:]).SerializeToString()
    )
    assert small.raw_views == {} and small.commands[0].tensor.data.raw == arrays[1].tobytes()
    value = tpb.TensorValue(handle="h", data=tpb.TensorData(raw=b"xyz"))
    assert bytes(request_views.nested_view(value.SerializeToString(), (4, 3))) == b"xyz"
    assert request_views.nested_view(value.SerializeToString(), (3,)) is None


def test_framed_answers_parse_as_the_messages_they_stand_for():
    t = ge.tensor(np.arange(6, dtype=np.float64).reshape(2, 3), requires_grad=True)
    chunks = answer_bytes.tensor_value("t", t)
    value = tpb.TensorValue.FromString(b"".join(chunks))
    assert value.handle == "t" and tuple(value.data.shape) == (2, 3)
    assert value.data.dtype == tpb.FLOAT64 and value.info.requires_grad
    assert np.frombuffer(value.data.raw, "<f8").tolist() == list(range(6))
    results = [*answer_bytes.command_result(0, answer_bytes.RESULT_TENSOR, chunks)]
    results += answer_bytes.command_result(
        300, answer_bytes.RESULT_TENSOR, answer_bytes.none_value("g")
    )
    head = cpb.ExecuteResponse(sequence=5, applied=301).SerializeToString()
    response = cpb.ExecuteResponse.FromString(head + b"".join(results))
    assert [r.index for r in response.results] == [0, 300] and response.sequence == 5
    assert response.results[0].tensor == value and response.results[1].tensor.is_none


def test_flags_env_and_defaults():
    assert parse_size("512M") == 512 << 20 and parse_size("2GiB") == 2 << 30
    assert parse_config([], env={}) == ServerConfig()
    env = {"GRADD_PORT": "6000", "GRADD_MAX_SESSION_BYTES": "1G", "GRADD_IDLE_TTL": "2.5"}
    config = parse_config(["--port", "7000"], env=env)
    assert config.port == 7000  # the flag wins over the environment
    assert config.max_session_bytes == 1 << 30 and config.idle_ttl == 2.5
    bad_flags = [["--device", "tpu"], ["--max-message-bytes", "3G"], ["--workers", "-1"]]
    for bad in [*bad_flags, ["--orphan-ttl", "0"]]:
        with pytest.raises(SystemExit):
            parse_config(bad, env={})
    with pytest.raises(SystemExit):
        parse_config([], env={"GRADD_PORT": "eighty"})


def _run(session, *commands):
    response = cpb.ExecuteResponse()
    with session.lock:
        failure = execute(session, commands, response, [])
    assert failure is None, failure


def test_released_handles_and_closed_sessions_free_their_tensors():
    store = SessionStore(ServerConfig(), ["cpu"])
    session, _ = store.create(spb.CreateSessionRequest(seed=0))
    _run(
        session,
        tensor("w", np.ones(1000, np.float32), requires_grad=True),
        op("mul", Tensor("w"), 2.0, outs=["y"]),
        op("sum", Tensor("y"), outs=["loss"]),
        cpb.Command(backward=cpb.Backward(handle="loss")),
    )
    y = weakref.ref(session.table.get("y"))
    _run(session, cpb.Command(release=cpb.Release(handles=["y"])))
    gc.collect()
    # w and its .grad, and loss's graph (two nodes); the 4-byte loss is one element: not metered
    assert y() is None and session.meter.used == 4000 + 4000 + 2 * session.meter.node_bytes
    w = weakref.ref(session.table.get("w"))
    loss = weakref.ref(session.table.get("loss"))
    assert store.close(session, "closed")
    gc.collect()
    assert w() is None and loss() is None and len(store) == 0


def test_grad_mode_never_leaks_between_sessions_on_shared_threads():
    store = SessionStore(ServerConfig(), ["cpu"])
    sessions = [store.create(spb.CreateSessionRequest(seed=i))[0] for i in range(4)]
    for s in sessions:
        _run(s, tensor("w", np.ones(2, np.float32), requires_grad=True))

    def task(s, no_grad: bool) -> bool:  # as a server worker runs one batch of one session
        command = op("mul", Tensor("w"), 2.0, outs=["y"], no_grad=no_grad)
        with s.lock:  # checked under the lock: another worker may run this session next
            assert execute(s, [command], cpb.ExecuteResponse(), []) is None
            return s.table.get("y").requires_grad != no_grad and ge.is_grad_enabled()

    with ThreadPoolExecutor(2) as pool:  # two threads shared by four sessions
        done = [pool.submit(task, sessions[i % 4], i % 3 == 0) for i in range(400)]
        assert all(f.result(timeout=60) for f in done)


def test_every_flag_is_documented():
    from gradd.server.config import _FLAGS
    from server_harness import ROOT

    doc = (ROOT / "README.md").read_text()
    for name, _, _ in _FLAGS:
        flag, var = "--" + name.replace("_", "-"), f"GRADD_{name.upper()}"
        assert f"| `{flag}` | `{var}` |" in doc, (
            f"{flag} is missing from the README's configuration table"
        )
