"""Per-session limits (RESOURCE_EXHAUSTED with the numbers, nothing changed) and large tensors."""

from __future__ import annotations

import grpc
import numpy as np
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import Tensor, op, status, tensor

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _limited(client, **limits):
    return client.session(limits=spb.SessionLimits(**limits))


def test_tensor_count_limit(client):
    s = _limited(client, max_tensors=3)
    s.execute(*(tensor(h, np.zeros(2, np.float32)) for h in "abc"))
    code, message = status(lambda: s.execute(op("add", Tensor("a"), 1.0, outs=["d"])))
    assert code == EXHAUSTED and "3 handles bound" in message and "limit of 3" in message
    assert status(lambda: s.fetch("d"))[0] == grpc.StatusCode.NOT_FOUND
    s.execute(op("add", Tensor("a"), 1.0, outs=["c"]))  # rebinding needs no new handle
    s.execute(cpb.Command(release=cpb.Release(handles=["b"])), tensor("d", [1.0]))
    assert s.array("c").tolist() == [1.0, 1.0] and s.array("d").tolist() == [1.0]
    s.close()


def test_byte_limit(client):
    s = _limited(client, max_bytes=1000)
    s.execute(tensor("a", np.zeros(200, np.float32)))  # 800 bytes
    code, message = status(lambda: s.execute(tensor("b", np.zeros(100, np.float32))))
    assert code == EXHAUSTED
    assert "holding 800 bytes" in message and "400 more" in message and "limit of 1000" in message
    # An op whose result does not fit is refused before it runs; the session is unchanged.
    code, message = status(lambda: s.execute(op("mul", Tensor("a"), 2.0, outs=["twice"])))
    assert code == EXHAUSTED and "op 'mul' needs 800 more" in message
    assert status(lambda: s.fetch("twice"))[0] == grpc.StatusCode.NOT_FOUND
    # A result needs room while its inputs live; rebinding the handle then frees the old
    # tensor, so this fits again and again (400 bytes held, 800 for a moment).
    s.execute(
        cpb.Command(release=cpb.Release(handles=["a"])), tensor("a", np.zeros(100, np.float32))
    )
    s.execute(*[op("add", Tensor("a"), 1.0, outs=["a"])] * 3, op("sum", Tensor("a"), outs=["t"]))
    s.execute(cpb.Command(release=cpb.Release(handles=["a"])))  # room to fetch, on any device
    assert s.array("t") == 300.0
    # A factory is checked before anything is allocated.
    huge = cpb.Command(factory=cpb.Factory(out="z", kind="zeros", shape=[1 << 20, 1 << 20]))
    code, message = status(lambda: s.execute(huge))
    assert code == EXHAUSTED and str(4 << 40) in message
    s.close()


def test_64_mib_round_trip(session):
    array = np.random.default_rng(0).standard_normal(16 << 20, dtype=np.float32)  # 64 MiB
    response = session.execute(
        tensor("big", array),
        op("mul", Tensor("big"), 2.0, outs=["twice"]),
        cpb.Command(fetch=cpb.Fetch(handle="twice")),
    )
    assert len(response.results[0].tensor.data.raw) == 64 << 20
    np.testing.assert_array_equal(session.array("big"), array)
    np.testing.assert_array_equal(session.array("twice"), array * 2)
