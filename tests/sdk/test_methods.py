"""Every op of the engine's table, called as a user calls it, gives the same values, metadata
and gradients embedded and on a server; and the client's metadata (kept by the shared rules,
without asking) is what the server reports. Cases come from the op table's own examples."""

from __future__ import annotations

import re
import zlib
from typing import Any

import gradd
import gradd.engine as ge
import numpy as np
import pytest
from gradd import command_encoding as enc
from gradd.engine.inplace_rules import WRITING_COMPOSITES
from gradd.engine.op_examples import C, Ex, S
from gradd.op_recording import remote_function
from gradd.remote_tensor import RemoteTensor
from gradd.wire.dtypes import WIRE_DTYPES

EXTRA = {  # ops without examples in the table, and tensor-tensor comparisons
    "argmax": (Ex(S(3, 4)), Ex(S(3, 4), 1, True), Ex(S(), -1)),
    "argmin": (Ex(S(3, 4), dim=0),),
    "sign": (Ex(S(5)),),
    "argsort": (Ex(S(3, 4)), Ex(S(3, 4), 0, True), Ex(S(5), stable=True), Ex(S(), -1)),
    "lt": (Ex(S(3, grad=False), S(3, grad=False)),),
}
CASES = [
    (name, i)
    for name, d in sorted(ge.OPS.items())
    for i in range(len(d.examples) + len(EXTRA.get(name, ())))
    if name != "to_device"
]


def example(name: str, i: int) -> Ex:
    d = ge.OPS[name]
    examples = d.examples + EXTRA.get(name, ())
    return examples[i]


def build(s: gradd.Session, x: Any, rng: np.random.Generator, leaves: list) -> Any:
    if isinstance(x, S):
        t = s.tensor(x.make(rng), requires_grad=x.grad)
        if x.grad:
            leaves.append(t)
        return t
    if isinstance(x, C):
        return s.tensor(x.value)
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(build(s, v, rng, leaves) for v in x)
    return x


def call(s: gradd.Session, d: ge.OpDef, args: tuple, kwargs: dict) -> Any:
    """The op as a user reaches it: a method, a session function, or (internal ops) the table."""
    if (d.inplace or d.name in WRITING_COMPOSITES) and args[0].requires_grad:
        args = (args[0].clone(),) + args[1:]
    s.manual_seed(1234)  # dropout draws from the session's stream
    if d.method == "__getitem__":
        return args[0][args[1]]
    if d.method == "__setitem__":
        args[0][args[1]] = args[2]
        return args[0]
    if d.method:
        # An engine tensor does not know its embedded session: its drawing methods
        # (uniform_, normal_) draw from the thread's current stream, the session's here.
        with s._drawing():
            return getattr(args[0], d.method)(*args[1:], **kwargs)
    if d.function:
        return getattr(s, d.function)(*args, **kwargs)
    fn = remote_function(d) if isinstance(args[0], RemoteTensor) else d.call
    return fn(*args, **kwargs)


def run(s: gradd.Session, name: str, i: int) -> dict:
    """Call the op, then backward through its first float output; everything observable."""
    rng = np.random.default_rng(zlib.crc32(f"{name}/{i}".encode()))
    ex = example(name, i)
    leaves: list = []
    args = build(s, ex.args, rng, leaves)
    kwargs = {k: build(s, v, rng, leaves) for k, v in ex.kwargs.items()}
    out = call(s, ge.OPS[name], args, kwargs)
    outs = list(out) if isinstance(out, tuple) else [out]
    seen: dict = {"outs": [describe(o) for o in outs]}
    if any(isinstance(o, RemoteTensor) for o in outs):
        for o in outs:
            check_against_server(s, o)
    root = next((o for o in outs if o.requires_grad), None)
    if root is not None:
        root.sum().backward()
        seen["grads"] = [leaf.grad.numpy() if leaf.grad is not None else None for leaf in leaves]
    return seen


def describe(t: Any) -> dict:
    return {
        "value": t.detach().numpy(),
        "shape": tuple(t.shape),
        "dtype": t.dtype,
        "requires_grad": t.requires_grad,
        "is_leaf": t.is_leaf,
        "grad_fn": t.grad_fn.name() if t.grad_fn is not None else None,
    }


WIRE = {WIRE_DTYPES[d.name]: d for d in ge.dtypes.ALL}


def check_against_server(s: Any, t: RemoteTensor) -> None:
    """The metadata the client derived equals what the server reports."""
    info = s._stream.request(enc.fetch(t._h, metadata_only=True), ("test", "", 0)).tensor.info
    assert tuple(info.shape) == t.shape
    assert WIRE[info.dtype] is t.dtype
    assert info.requires_grad == t.requires_grad
    assert info.is_leaf == t.is_leaf
    assert info.grad_fn == (t.grad_fn.name() if t.grad_fn is not None else "")
    assert info.version == t._version


def params() -> list:
    # dropout included: both sessions start from the same default seed, and the server draws
    # each session's masks from that session's own generator.
    return [pytest.param(name, i, id=f"{name}-{i}") for name, i in CASES]


@pytest.mark.parametrize(("name", "i"), params())
def test_op_same_embedded_and_remote(name: str, i: int, remote: gradd.Session) -> None:
    embedded = gradd.connect()
    want = run(embedded, name, i)
    got = run(remote, name, i)
    assert len(got["outs"]) == len(want["outs"])
    for g, w in zip(got["outs"], want["outs"]):
        np.testing.assert_array_equal(g.pop("value"), w.pop("value"))
        assert g == w
    assert ("grads" in got) == ("grads" in want)
    for g, w in zip(got.get("grads", ()), want.get("grads", ())):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


def test_every_op_is_covered() -> None:
    covered = {name for name, _ in CASES}
    assert covered == set(ge.OPS) - {"to_device"}  # one device per session


TENSOR_API = [
    "shape", "ndim", "dtype", "device", "requires_grad", "is_leaf", "grad", "grad_fn",
    "backward", "zero_", "detach", "item", "numpy", "tolist", "float", "double", "long", "bool",
    "size", "dim", "numel", "requires_grad_", "retain_grad", "to", "T", "mT", "clone",
]  # fmt: skip


def test_tensor_api_names(remote: gradd.Session) -> None:
    t = remote.ones(2, 3)
    e = ge.ones(2, 3)
    for name in TENSOR_API + [d.method for d in ge.OPS.values() if d.method]:
        assert hasattr(t, name) and hasattr(e, name), name


def test_values_and_conversions(session: gradd.Session) -> None:
    t = session.tensor([[1.5, -2.0], [3.0, 4.25]])
    assert t.tolist() == [[1.5, -2.0], [3.0, 4.25]]
    assert t.size() == (2, 2) and t.size(1) == 2 and t.dim() == 2 and t.numel() == 4
    assert len(t) == 2 and [r.tolist() for r in t] == [[1.5, -2.0], [3.0, 4.25]]
    assert t.double().dtype is ge.float64 and t.long().tolist() == [[1, -2], [3, 4]]
    assert t.bool().dtype is ge.bool_ and t.float() is t
    assert t.T.tolist() == [[1.5, 3.0], [-2.0, 4.25]]
    assert float(t[0, 0]) == 1.5 and int(t[1, 1]) == 4 and bool(t[0, 0] > 0)
    assert np.array_equal(np.asarray(t), t.numpy())
    on = "" if session.device.type == "cpu" else f", device='{session.device}'"  # as PyTorch
    assert repr(t) == f"tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.2500]]{on})"
    assert repr(session.arange(4)) == f"tensor([0, 1, 2, 3]{on})"
    assert session.full((2,), 7).tolist() == [7, 7]
    assert session.zeros(2, dtype=session.float64).dtype is ge.float64
    assert session.ones((1, 2)).shape == (1, 2)
    assert session.arange(0.0, 1.0, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    session.manual_seed(0)
    r = session.rand(3)
    assert r.shape == (3,) and 0 <= r.min().item() and r.max().item() < 1
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t > 0)
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        t.item()


def test_scalars_are_zero_dimensional(session: gradd.Session) -> None:
    for scalar in (session.tensor(3.0), session.tensor(np.float64(3.0)), session.tensor(True)):
        assert scalar.shape == () and scalar.ndim == 0
    on = "" if session.device.type == "cpu" else f", device='{session.device}'"  # as PyTorch
    assert repr(session.tensor(3.0)) == f"tensor(3.{on})"
    b = session.ones(2, 3)
    assert (session.tensor(2.0) * b).shape == (2, 3)
    assert session.tensor(np.array(5)).tolist() == 5


def test_ndarray_operands_become_tensors(remote: gradd.Session) -> None:
    nd = np.arange(4.0)
    assert (nd * remote.tensor(2.0)).tolist() == [0.0, 2.0, 4.0, 6.0]
    assert (remote.tensor([1.0]) + nd).dtype is ge.float64  # an ndarray operand is a tensor


def test_grad_modes_and_functional(session: gradd.Session) -> None:
    F = session.functional
    x = session.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    with session.no_grad():
        assert not (x * 2).requires_grad
        with session.enable_grad():
            assert (x * 2).requires_grad
    with session.set_grad_enabled(False):
        assert not x.exp().requires_grad
    loss = F.cross_entropy(F.linear(x, session.ones(2, 3), session.zeros(2)), session.tensor([1]))
    assert loss.grad_fn.name() == "NllLossBackward0"
    loss.backward()
    assert x.grad.shape == (1, 3)
    y = session.cat([x, x], dim=0)
    assert y.shape == (2, 3) and y.grad_fn.name() == "CatBackward0"
    v, idx = y.max(dim=1)
    assert v.tolist() == [3.0, 3.0] and idx.tolist() == [2, 2]


OPERATOR_CASES = [
    ("a + b", lambda a, b, m: a + b),
    ("2 + a", lambda a, b, m: 2 + a),
    ("a - b", lambda a, b, m: a - b),
    ("2 - a", lambda a, b, m: 2 - a),
    ("a * b", lambda a, b, m: a * b),
    ("2 * a", lambda a, b, m: 2 * a),
    ("a / b", lambda a, b, m: a / b),
    ("2 / a", lambda a, b, m: 2.0 / a),
    ("a ** 2", lambda a, b, m: a**2),
    ("2 ** a", lambda a, b, m: 2**a),
    ("a @ b", lambda a, b, m: a @ b),
    ("-a", lambda a, b, m: -a),
    ("abs(a)", lambda a, b, m: abs(a)),
    ("a < b", lambda a, b, m: a < b),
    ("a >= 0", lambda a, b, m: a >= 0),
    ("a == b", lambda a, b, m: a == b),
    ("a != b", lambda a, b, m: a != b),
    ("m & m", lambda a, b, m: m & (a > 0)),
    ("m | m", lambda a, b, m: m | (a > 0)),
    ("a[m]", lambda a, b, m: a[m]),
    ("a[:, 1]", lambda a, b, m: a[:, 1]),
    ("a[..., None]", lambda a, b, m: a[..., None]),
]


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operators(case: tuple, remote: gradd.Session) -> None:
    _, fn = case
    seen = []
    for s in (gradd.connect(), remote):
        a = s.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
        b = s.tensor([[0.5, 2.0], [-1.0, 4.0]])
        m = s.tensor([[True, False], [False, True]])
        out = fn(a.clone(), b, m)
        seen.append(describe(out))
    got, want = seen[1], seen[0]
    np.testing.assert_allclose(got.pop("value"), want.pop("value"))
    assert got == want


def test_inplace_operators(session: gradd.Session) -> None:
    a = session.tensor([1.0, 2.0])
    a += 1
    a -= session.tensor([0.5, 0.5])
    a *= 4
    a /= 2
    assert a.tolist() == [3.0, 5.0] and a._version == 4


def test_wrong_argument_kinds_fail_before_anything_is_sent(session: gradd.Session) -> None:
    """The engine's argument check serves remote tensors too: PyTorch's TypeError, at once."""
    x = session.tensor([[1.0, 2.0, 3.0]])
    F = session.functional
    for call, message in [
        (lambda: x + "a", "add(): argument 'other' (position 2) must be Tensor, not str"),
        (lambda: x.sum(dim=1.5), "sum(): argument 'dim' (position 2) must be int or tuple"),
        (lambda: x.transpose(True, 0), "transpose(): argument 'dim0' (position 2) must be int"),
        (lambda: F.mse_loss(x, "abc"), "mse_loss(): argument 'target' (position 2) must be"),
        (lambda: session.cat([x, 1]), "cat(): argument 'tensors' (position 1) must be tuple of"),
        (lambda: x.reshape("a"), "reshape(): argument 'shape' (position 2) must be tuple of ints"),
    ]:
        with pytest.raises(TypeError, match=re.escape(message)):
            call()
    assert (2 - x).tolist() == [[1.0, 0.0, -1.0]]  # the session goes on; numbers still work
    assert session.add(1, x).tolist() == [[2.0, 3.0, 4.0]]
