"""The hand-written wire encoding parses back, with the generated classes, to the messages the
protocol defines (every kind of command and every kind of Value)."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest
from gradd import command_encoding as enc
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb


def command(framed: bytes) -> cpb.Command:
    """Parse one framed command (an ExecuteRequest.commands entry)."""
    request = cpb.ExecuteRequest.FromString(framed)
    assert len(request.commands) == 1
    return request.commands[0]


def value(x: object) -> cpb.Value:
    return cpb.Value.FromString(enc.value(x))


class Handle:
    """Stands for a remote tensor: what the encoder looks at."""

    def __init__(self, h: bytes) -> None:
        self._h = h

    def _gradd_record(self) -> None:  # the marker of a tensor
        pass


@pytest.mark.parametrize(
    ("x", "field", "expected"),
    [
        (1.5, "f", 1.5),
        (-2.0, "f", -2.0),
        (0, "i", 0),
        (7, "i", 7),
        (-3, "i", -3),
        (1 << 40, "i", 1 << 40),
        (True, "b", True),
        (False, "b", False),
        ("mean", "s", "mean"),
        ("", "s", ""),
        (np.int64(4), "i", 4),
        (np.float32(0.5), "f", 0.5),
    ],
)
def test_scalars(x: object, field: str, expected: object) -> None:
    v = value(x)
    assert v.WhichOneof("kind") == field and getattr(v, field) == expected


def test_structured_values() -> None:
    assert value(None).WhichOneof("kind") == "none"
    assert value(Ellipsis).WhichOneof("kind") == "ellipsis"
    assert value(ge.float64).dtype == tpb.FLOAT64 and value(ge.bool_).dtype == tpb.BOOL
    assert list(value((2, -1, 300)).ints.values) == [2, -1, 300]
    s = value(slice(-3, None, 2)).slice
    assert (s.start, s.HasField("stop"), s.step) == (-3, False, 2)
    assert not value(slice(None)).slice.HasField("start")
    t = value((slice(1, 4), None, Ellipsis, 2, Handle(b"a1")))
    kinds = [item.WhichOneof("kind") for item in t.tuple.items]
    assert kinds == ["slice", "none", "ellipsis", "i", "tensor"]
    assert t.tuple.items[4].tensor == "a1"
    lst = value([0, 2, True, [1.5]])
    assert [i.WhichOneof("kind") for i in lst.list.items] == ["i", "i", "b", "list"]
    assert value(np.array([[1, 2], [3, 4]])).list.items[1].list.items[0].i == 3
    assert value(()).WhichOneof("kind") == "tuple" and not value(()).tuple.items
    with pytest.raises(TypeError, match="cannot send"):
        enc.value(object())


def test_op_command() -> None:
    body = (
        enc.op_name("add")
        + enc.op_arg(enc.tensor_value(b"x"))
        + enc.op_arg(enc.value(2.5))
        + enc.op_kwarg("alpha", enc.value(3))
        + enc.op_out(b"y")
        + enc.OP_NO_GRAD
    )
    c = command(enc.op_command(body))
    assert c.op.op == "add" and [a.WhichOneof("kind") for a in c.op.args] == ["tensor", "f"]
    assert c.op.args[0].tensor == "x" and c.op.kwargs["alpha"].i == 3
    assert list(c.op.outs) == ["y"] and c.op.no_grad


def test_every_other_command() -> None:
    c = command(enc.create_tensor(b"t", tpb.FLOAT64, (2, 3), b"\0" * 48, True))
    assert c.tensor.out == "t" and c.tensor.requires_grad
    assert (c.tensor.data.dtype, list(c.tensor.data.shape), len(c.tensor.data.raw)) == (
        tpb.FLOAT64,
        [2, 3],
        48,
    )
    c = command(enc.factory(b"r", "full", (4,), (1.5,), tpb.FLOAT32, False))
    assert (c.factory.kind, list(c.factory.shape), c.factory.args[0].f) == ("full", [4], 1.5)
    assert c.factory.dtype == tpb.FLOAT32 and not c.factory.requires_grad
    assert command(enc.factory(b"r", "randn", (), (), 0, True)).factory.dtype == 0
    assert command(enc.manual_seed(42)).manual_seed.seed == 42
    c = command(enc.backward(b"loss", b"", None, False))
    assert c.backward.handle == "loss" and not c.backward.HasField("retain_graph")
    c = command(enc.backward(b"loss", b"g", False, True))
    assert c.backward.gradient == "g" and c.backward.HasField("retain_graph")
    assert not c.backward.retain_graph and c.backward.create_graph
    c = command(enc.backward(b"loss", b"", None, False, [b"b", b"w"]))
    assert list(c.backward.inputs) == ["b", "w"]
    c = command(enc.set_grad(b"b", b"g"))
    assert (c.set_grad.handle, c.set_grad.grad) == ("b", "g")
    c = command(enc.set_grad(b"b", b""))
    assert c.WhichOneof("kind") == "set_grad" and c.set_grad.grad == ""
    c = command(enc.set_data(b"b", b"d"))
    assert (c.set_data.handle, c.set_data.data) == ("b", "d")
    c = command(enc.grad_of(b"g", b"b"))
    assert (c.grad_of.out, c.grad_of.handle) == ("g", "b")
    c = command(enc.zero_grad([b"b", b"w"], True))
    assert list(c.zero_grad.handles) == ["b", "w"] and c.zero_grad.set_to_none
    assert command(enc.retain_grad(b"y")).retain_grad.handle == "y"
    c = command(enc.set_requires_grad(b"b", True))
    assert c.requires_grad.handle == "b" and c.requires_grad.requires_grad
    c = command(enc.detach(b"d", b"b"))
    assert (c.detach.out, c.detach.handle) == ("d", "b")
    assert list(command(enc.release([b"1", b"2"])).release.handles) == ["1", "2"]
    options = {"lr": 0.1, "momentum": 0.9, "nesterov": 1.0, "dampening": 0.0}
    groups = [
        (options, [(b"w", [b"w.m"], True, 0.0), (b"b", [b"b.m"], False, 3.0)]),
        ({"lr": 1e-300}, [(b"x", [], False, 1.0)]),
    ]
    c = command(enc.optimizer_step("sgd", groups)).optimizer_step
    assert c.kind == "sgd" and dict(c.groups[0].options) == options
    first, second = c.groups[0].params
    assert (first.param, list(first.state), first.init, first.step) == ("w", ["w.m"], True, 0.0)
    assert (second.param, list(second.state), second.init, second.step) == ("b", ["b.m"], False, 3)
    assert dict(c.groups[1].options) == {"lr": 1e-300} and c.groups[1].params[0].step == 1.0
    c = command(enc.fetch(b"b", grad=True, metadata_only=True))
    assert c.fetch.handle == "b" and c.fetch.grad and c.fetch.metadata_only
    c = command(enc.graph(b"yhat", {"b": b"1", "w": b"2"}, publish=True))
    assert c.graph.handle == "yhat" and dict(c.graph.params) == {"b": "1", "w": "2"}


def test_execute_request() -> None:
    cmds = [enc.manual_seed(1), enc.retain_grad(b"x")]
    request = cpb.ExecuteRequest.FromString(
        enc.execute_request(enc.session_prefix("s-1"), cmds, 1 << 33)
    )
    assert request.session_id == "s-1" and request.sequence == 1 << 33
    assert [c.WhichOneof("kind") for c in request.commands] == ["manual_seed", "retain_grad"]


def test_long_fields() -> None:
    raw = bytes(range(256)) * 1000  # lengths past one varint byte
    c = command(enc.create_tensor(b"h" * 300, tpb.BOOL, (256000,), raw, False))
    assert c.tensor.out == "h" * 300 and c.tensor.data.raw == raw
