"""The SDK's hot path sends ops in the lean form (Command.tape records on slots): ops that fit go
as records, packed into one tape command per run of them, tensors get slots that are reused
once released, and a failing record is raised at the op and line that queued it."""

from __future__ import annotations

import gc
import sys
import traceback

import gradd
import pytest
from gradd import command_encoding as enc
from gradd.v1 import command_pb2 as cpb


def line_of(exc: BaseException) -> int:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == __file__]
    return frames[-1].lineno


def here() -> int:
    return sys._getframe(1).f_lineno


def queued(s: gradd.Session) -> list[cpb.Command]:
    """The commands queued now (the open tape closed first), parsed back."""
    stream = s._stream
    if stream.tape:
        stream._close_tape()
    return list(cpb.ExecuteRequest.FromString(b"".join(stream.cmds)).commands)


def test_ops_that_fit_go_as_one_tape(remote: gradd.Session) -> None:
    w = remote.tensor([1.0, 2.0], requires_grad=True)
    remote.synchronize()
    loss = ((w * 2.0 + 1) ** 2).mean()
    y = w.sum(dim=0)  # an attribute off its default: a readable Op (with slot handles)
    commands = queued(remote)
    assert [c.WhichOneof("kind") for c in commands] == ["tape", "op"]
    assert len(remote._stream.sites[0]) == 4  # mul, add, pow, mean: a site each
    assert commands[1].op.args[0].tensor == w._h.decode() and w._h.startswith(b"#")
    loss.backward()
    assert w.grad.tolist() == pytest.approx([6.0, 10.0])
    assert y.item() == 3.0


def test_freed_slots_are_reused_after_their_release_is_queued(remote: gradd.Session) -> None:
    a = remote.tensor([1.0, 2.0])
    b = a * 2.0
    slot = b._slot
    del b
    gc.collect()
    c = a * 3.0
    assert c._slot != slot  # its Release is not queued yet: the slot is not free
    remote.synchronize()
    d = a * 4.0
    assert d._slot == slot
    assert (c.tolist(), d.tolist()) == ([3.0, 6.0], [4.0, 8.0])


def test_a_failing_record_is_raised_at_its_op_and_line(remote: gradd.Session) -> None:
    a = remote.tensor([1.0, 2.0])
    b = a + 1.0
    remote._stream.push(enc.release([b._h]), ("test", "", 0))  # the server forgets b
    c = a * 2.0
    d = b * 2.0
    line = here() - 1
    with pytest.raises(gradd.GraddError, match=r"unknown tensor handle '#\d+'") as info:
        remote.synchronize()
    assert info.value.code_name == "NOT_FOUND"
    assert info.value.site[0] == "mul" and info.value.site[2] == line
    assert f"mul queued at {__file__}:{line}" in str(info.value)
    assert not str(info.value).split("\n")[0].startswith("record")
    assert c.tolist() == [2.0, 4.0]  # the record before it stayed applied
    del d


def test_custom_function_backward_records_readable_ops(remote: gradd.Session) -> None:
    class Double(remote.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2.0 + 0.0

    x = remote.tensor([1.0, 3.0], requires_grad=True)
    Double.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
