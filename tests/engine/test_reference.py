"""PyTorch as the reference (runs where torch is installed).

1. Every example of the op table runs in gradd and torch: forward values, gradients and the
   whole recorded graph (grad_fn names, node by node) must agree.
2. Seeded random programs (chains of 5-15 ops on float64 tensors with broadcasting) run in both,
   comparing every intermediate value, every leaf's gradient and the graph.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
import pytest
from gradd.engine.random_state import DRAWING_OPS

torch = pytest.importorskip("torch")

from .engine_examples import (  # noqa: E402
    call,
    example_cases,
    instantiate,
    materialise,
    rng_for,
    tensor_outputs,
)
from .test_article import gradd_structure, torchviz_structure  # noqa: E402
from .torch_reference import to_torch, torch_op  # noqa: E402

RTOL, ATOL = 1e-10, 1e-12


def same_graph(ours: Any, theirs: Any, leaves: dict[int, Any]) -> None:
    """Walk both graphs together: same names, same inputs (Nones dropped), same leaves."""
    seen: set[tuple[int, int]] = set()
    stack = [(ours, theirs, "root")]
    while stack:
        g, t, path = stack.pop()
        if (id(g), id(t)) in seen:
            continue
        seen.add((id(g), id(t)))
        assert (g is None) == (t is None), f"{path}: gradd {g}, torch {t}"
        if g is None:
            continue
        assert g.name() == t.name(), f"{path}: gradd {g.name()}, torch {t.name()}"
        if hasattr(t, "variable"):
            assert leaves.get(id(g.variable)) is t.variable, f"{path}: a different leaf"
            continue
        gn = [n for n, _ in g.next_functions if n is not None]
        tn = [n for n, _ in t.next_functions if n is not None]
        names = [n.name() for n in gn], [n.name() for n in tn]
        assert len(gn) == len(tn), f"{path} -> inputs: gradd {names[0]}, torch {names[1]}"
        stack.extend((a, b, f"{path} > {b.name()}") for a, b in zip(gn, tn))


def assert_close(ours: ge.Tensor, theirs: Any, what: str) -> None:
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shapes"
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"{what}: dtypes"
    np.testing.assert_allclose(
        ours.detach().numpy(), theirs.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=what
    )


# -- the op table's examples -----------------------------------------------------------------

UNINITIALISED = {"empty", "empty_like", "new_empty"}  # only shapes and dtypes are compared

# Where gradd records one node and torch several, named after its decomposition.
KNOWN = {
    ("squeeze_result", 0): "torch's squeeze_ is in place, refused on a leaf (matmul's vector by "
    "matrix examples compare its node with torch's SqueezeBackward4)",
}
# padding="same" with an even kernel: torch pads the extra element by a ConstantPadNd node
# (F.pad) before a symmetric convolution; gradd's convolution pads both ends itself.
SAME_EVEN = "torch records the extra padding of an even 'same' kernel as ConstantPadNdBackward0"
KNOWN[("conv1d", 2)] = SAME_EVEN
KNOWN[("conv2d", 4)] = SAME_EVEN
# torch's einsum is no autograd node: it records the permutes, views, bmm and sums of its
# contraction (see engine/ops/linalg.py); gradd records its own einsum steps. Values and
# gradients are compared with torch's in test_linalg_ops.py.
EINSUM_OPS = ("einsum", "einsum_single", "einsum_pair", "einsum_single_backward")
KNOWN.update(
    {
        (n, i): "torch records einsum as permute/view/bmm/sum nodes; gradd as EinsumBackward0"
        for n in EINSUM_OPS
        for i in range(len(ge.OP_TABLE[n].examples))
    }
)
KNOWN[("pad", 4)] = "torch records circular padding as slice copies (CopySlices); gradd as cat"
KNOWN[("pad", 5)] = KNOWN[("pad", 4)]
for _i in (0, 1):  # the node's inputs: torch's takes the forward's input too, for its shape
    KNOWN[("pad_nd_backward", _i)] = "torch's pad backward node also has the forward input"
# torch's CPU default is a fused kernel, ScaledDotProductFlashAttentionForCpuBackward0; gradd
# records its math backend's ops (values and gradients: tests/engine/test_nn_attention.py).
KNOWN.update(
    {
        ("scaled_dot_product_attention", i): "torch records one fused attention node"
        for i in range(len(ge.OP_TABLE["scaled_dot_product_attention"].examples))
    }
)
# torch's C++ cross_entropy scales by Scalars (MulBackward1, DivBackward1), which gradd records as
# torch's Python x * 0.9 is (MulBackward0). Values and gradients:
# tests/engine/test_nn_cross_entropy.py.
_SCALAR_NODES = "torch's C++ records Tensor-by-Scalar ops as MulBackward1/DivBackward1"
KNOWN.update({("cross_entropy", i): _SCALAR_NODES for i in (3, 4, 5, 8)})
# torch records a node for random ops of tensors that require grad; gradd records none (their
# values are the same, and torch's gradients are zeros or not implemented).
KNOWN[("bernoulli", 0)] = "torch records grad_fn=<NotImplemented> (its backward raises)"
KNOWN[("normal", 0)] = "torch records NormalBackward1, whose gradient is zeros"
KNOWN[("normal", 2)] = "torch records NormalBackward3, whose gradients are zeros"
# Compared with torch's CPU stream, so CPU-only: dropout's mask, and every drawing op.
RANDOM = {("dropout", 1)} | {
    (n, i) for n in DRAWING_OPS if n in ge.OP_TABLE for i in range(len(ge.OP_TABLE[n].examples))
}
CASES = [
    pytest.param(n, i, marks=pytest.mark.xfail(strict=True, reason=KNOWN[n, i]))
    if (n, i) in KNOWN
    else pytest.param(n, i, marks=pytest.mark.cpu_only("PyTorch's CPU random numbers"))
    if (n, i) in RANDOM
    else (n, i)
    for n, i in example_cases()
]


@pytest.mark.parametrize(("name", "i"), CASES, ids=[f"{n}-{i}" for n, i in example_cases()])
def test_examples_match_torch(name: str, i: int) -> None:
    d = ge.OP_TABLE[name]
    case = materialise(d, d.examples[i], rng_for(name, i))
    args, kwargs, leaves = instantiate(case)
    mapping: dict[int, Any] = {}
    targs, tkwargs = to_torch(args, mapping), to_torch(kwargs, mapping)
    out = tensor_outputs(call(d, args, kwargs))[0]
    with torch.random.fork_rng():
        torch.manual_seed(1234)  # call() draws gradd's randoms from seed 1234 too (dropout)
        tout = torch_op(name)(*targs, **tkwargs)
    if not isinstance(tout, torch.Tensor):
        tout = tout[0]
    if name in UNINITIALISED:  # torch's values are whatever its memory held
        assert (tuple(out.shape), out.dtype.name) == (
            tuple(tout.shape),
            str(tout.dtype).removeprefix("torch."),
        )
    else:
        assert_close(out, tout, f"{name} forward")
    assert (out.grad_fn is None) == (tout.grad_fn is None)
    if out.grad_fn is None:
        return
    same_graph(out.grad_fn, tout.grad_fn, mapping)
    v = np.random.default_rng(i).standard_normal(out.shape)
    ge.backward([out], [ge.tensor(v.astype(out.dtype.np))])
    tout.backward(torch.tensor(v, dtype=tout.dtype))
    for leaf in leaves:
        tleaf = mapping[id(leaf)]
        assert (leaf.grad is None) == (tleaf.grad is None)
        if leaf.grad is not None:
            assert_close(leaf.grad, tleaf.grad, f"{name} gradient")


# -- random programs -------------------------------------------------------------------------


class Program:
    """A straight-line program: each step makes one tensor from earlier ones (or a new leaf)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[..., Any], tuple[int, ...]]] = []
        self.leaf_values: dict[int, np.ndarray] = {}

    def run(self, m: Any) -> list[Any]:
        env: list[Any] = []
        for k, (_, fn, ins) in enumerate(self.steps):
            if k in self.leaf_values:
                env.append(m.tensor(self.leaf_values[k].copy(), requires_grad=True))
            else:
                env.append(fn(m, *(env[i] for i in ins)))
        return env

    def __repr__(self) -> str:
        return "; ".join(
            f"t{k} = {label}{list(ins)}" for k, (label, _, ins) in enumerate(self.steps)
        )


def F(m: Any) -> Any:
    return m.nn.functional if m is torch else m.functional


UNARY: list[tuple[str, Callable[..., Any]]] = [
    ("exp(tanh)", lambda m, a: a.tanh().exp()),
    ("log", lambda m, a: (a * a + 1).log()),
    ("sqrt", lambda m, a: (a * a + 0.25).sqrt()),
    ("abs", lambda m, a: a.abs()),
    ("neg", lambda m, a: -a),
    ("relu", lambda m, a: a.relu()),
    ("sigmoid", lambda m, a: a.sigmoid()),
    ("tanh", lambda m, a: a.tanh()),
    ("clamp", lambda m, a: a.clamp(-0.5, 0.5)),
    ("clamp_min", lambda m, a: a.clamp(min=-0.2)),
    ("mul_scalar", lambda m, a: a * 1.5),
    ("add_scalar", lambda m, a: 0.5 + a),
    ("rsub_scalar", lambda m, a: 2.0 - a),
    ("rdiv_scalar", lambda m, a: 3.0 / (a * a + 1)),
    ("div_scalar", lambda m, a: a / 4),
    ("square", lambda m, a: a**2),
    ("cube", lambda m, a: a**3),
    ("rpow", lambda m, a: 2 ** a.tanh()),
    ("clone", lambda m, a: a.clone()),
]
BINARY: list[tuple[str, Callable[..., Any]]] = [
    ("add", lambda m, a, b: a + b),
    ("sub", lambda m, a, b: a - b),
    ("mul", lambda m, a, b: a * b),
    ("div", lambda m, a, b: a / (b * b + 1)),
    ("pow", lambda m, a, b: (a * a + 0.5) ** b.tanh()),
    ("where", lambda m, a, b: m.where(a > b, a, b)),
    ("add_alpha", lambda m, a, b: m.add(a, b, alpha=0.5)),
]


def _rand_shape(r: random.Random) -> tuple[int, ...]:
    return tuple(r.randint(1, 4) for _ in range(r.randint(1, 3)))


def _broadcast_partner(r: random.Random, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: a suffix of it, some dims set to 1."""
    suffix = shape[r.randint(0, len(shape)) :] if shape else ()
    return tuple(1 if r.random() < 0.3 else n for n in suffix)


def generate(seed: int) -> Program:
    """A random program of 5-15 ops, generated (and run in gradd) step by step."""
    r = random.Random(seed)
    nprng = np.random.default_rng(seed)
    prog = Program()
    env: list[ge.Tensor] = []

    def leaf(shape: tuple[int, ...]) -> int:
        k = len(prog.steps)
        prog.leaf_values[k] = nprng.uniform(-1.5, 1.5, shape)
        prog.steps.append((f"leaf{shape}", lambda m: None, ()))
        # On the CPU whatever the default device: the choices below read NumPy's layouts, which
        # follow torch's (CuPy's elementwise results are C-contiguous where torch's are not).
        env.append(ge.tensor(prog.leaf_values[k].copy(), requires_grad=True, device="cpu"))
        return k

    def add(label: str, fn: Callable[..., Any], *ins: int) -> None:
        out = fn(ge, *(env[i] for i in ins))
        prog.steps.append((label, fn, ins))
        env.append(out)

    for _ in range(r.randint(1, 2)):
        leaf(_rand_shape(r))
    n_ops = r.randint(5, 15)
    while len(prog.steps) - len(prog.leaf_values) < n_ops:
        a = r.choice([k for k, t in enumerate(env) if t.requires_grad])
        s = env[a].shape
        kind = r.random()
        if kind < 0.3:
            add(*r.choice(UNARY), a)
        elif kind < 0.55:
            partners = [k for k, t in enumerate(env) if _broadcasts(s, t.shape) and k != a]
            b = r.choice(partners) if partners and r.random() < 0.5 else None
            if b is None:
                b = leaf(_broadcast_partner(r, s))
            add(*r.choice(BINARY), a, b)
        elif kind < 0.7:
            _reduction(r, add, a, s)
        elif kind < 0.85:
            _shape_op(r, add, leaf, a, env[a])
        else:
            _nn_op(r, add, leaf, a, s)
    return prog


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x == y or x == 1 or y == 1 for x, y in zip(a[::-1], b[::-1]))


def _reduction(r: random.Random, add: Callable, a: int, s: tuple[int, ...]) -> None:
    if not s:
        add("sum", lambda m, x: x.sum(), a)
        return
    d = r.randrange(-len(s), len(s))
    keep = r.random() < 0.5
    choices = [
        ("sum", lambda m, x: x.sum()),
        (f"sum({d},{keep})", lambda m, x: x.sum(d, keepdim=keep)),
        ("sum(dims)", lambda m, x: x.sum(dim=tuple(range(len(s))), keepdim=keep)),
        ("mean", lambda m, x: x.mean()),
        (f"mean({d})", lambda m, x: x.mean(dim=d, keepdim=keep)),
        ("max", lambda m, x: x.max()),
        (f"max({d})", lambda m, x: x.max(d, keepdim=keep).values),
        (f"min({d})", lambda m, x: x.min(dim=d).values),
    ]
    add(*r.choice(choices), a)


def _shape_op(r: random.Random, add: Callable, leaf: Callable, a: int, t: ge.Tensor) -> None:
    s = t.shape
    nd = len(s)
    choices: list[tuple[str, Callable[..., Any]]] = [
        ("unsqueeze(0)", lambda m, x: x.unsqueeze(0)),
        ("unsqueeze(-1)", lambda m, x: x.unsqueeze(-1)),
    ]
    if t._data.flags.c_contiguous:  # torch names a reshape of a strided tensor differently
        choices.append(("reshape(-1)", lambda m, x: x.reshape(-1)))
        choices.append(("flatten", lambda m, x: x.flatten()))
    if nd >= 1:
        choices += [
            ("[0]", lambda m, x: x[0]),
            ("[-1:]", lambda m, x: x[-1:]),
            ("[[0,0]]", lambda m, x: x[[0, 0]]),
            ("[None,...]", lambda m, x: x[None, ...]),
        ]
        if s[0] > 1:
            choices.append(("[1:]", lambda m, x: x[1:]))
        if (t.detach().numpy() > 0).any():
            choices.append(("[x>0]", lambda m, x: x[x > 0]))
    if nd >= 2:
        perm = list(range(nd))
        r.shuffle(perm)
        choices += [
            ("transpose(0,-1)", lambda m, x: x.transpose(0, -1)),
            (f"permute{perm}", lambda m, x: x.permute(*perm)),
            ("[:, 0]", lambda m, x: x[:, 0]),
        ]
    if nd == 2:
        choices.append(("t", lambda m, x: x.t()))
    if 1 in s:
        choices.append(("squeeze", lambda m, x: x.squeeze()))
        big = tuple(3 if n == 1 else n for n in s)
        choices.append((f"expand{big}", lambda m, x: x.expand(*big)))
    label, fn = r.choice(choices)
    if r.random() < 0.25 and nd >= 1:
        other = leaf((r.randint(1, 3),) + s[1:])
        add("cat", lambda m, x, y: m.cat([x, y], 0), a, other)
        return
    if r.random() < 0.15:
        other = leaf(s)
        add("stack", lambda m, x, y: m.stack([x, y], -1), a, other)
        return
    add(label, fn, a)


def _nn_op(r: random.Random, add: Callable, leaf: Callable, a: int, s: tuple[int, ...]) -> None:
    if not s:
        add("relu", lambda m, x: x.relu(), a)
        return
    d = r.randrange(-len(s), len(s))
    choices = ["softmax", "log_softmax", "mse_loss"]
    if len(s) <= 2:
        choices += ["linear", "matmul"]
    if len(s) == 2:
        choices += ["cross_entropy"]
    kind = r.choice(choices)
    if kind == "softmax":
        add(f"softmax({d})", lambda m, x: F(m).softmax(x, d), a)
    elif kind == "log_softmax":
        add(f"log_softmax({d})", lambda m, x: F(m).log_softmax(x, dim=d), a)
    elif kind == "mse_loss":
        other = leaf(s)
        red = r.choice(["mean", "sum", "none"])
        add(f"mse_loss({red})", lambda m, x, y: F(m).mse_loss(x, y, reduction=red), a, other)
    elif kind == "linear":
        out_features = r.randint(1, 3)
        w = leaf((out_features, s[-1]))
        if len(s) == 2 and r.random() < 0.5:  # 1-D without bias is (n)@(n,m): see KNOWN
            add("linear", lambda m, x, y: F(m).linear(x, y), a, w)
        else:
            bias = leaf((out_features,))
            add("linear+bias", lambda m, x, y, z: F(m).linear(x, y, z), a, w, bias)
    elif kind == "matmul":
        # (n)@(n,m) is a known divergence (torch: unsqueeze -> mm -> squeeze_): dot, mv, mm only.
        vector = len(s) == 1 or r.random() < 0.4
        other = leaf((s[-1],) if vector else (s[-1], r.randint(1, 3)))
        add("matmul", lambda m, x, y: x @ y, a, other)
    else:
        target = np.random.default_rng(a).integers(0, s[1], s[0])
        add(
            "cross_entropy",
            lambda m, x: F(m).cross_entropy(x, m.tensor(target, device=x.device)),
            a,
        )


SEEDS = range(100)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_program_matches_torch(seed: int) -> None:
    prog = generate(seed)
    ours = prog.run(ge)
    theirs = prog.run(torch)
    mapping = {id(g): t for g, t in zip(ours, theirs) if g.is_leaf and g.requires_grad}
    for k, (g, t) in enumerate(zip(ours, theirs)):
        assert_close(g, t, f"t{k} in {prog}")
    # One scalar from the last result and an earlier one, so the graph is a DAG with sharing.
    last, mid = ours[-1], ours[len(ours) // 2]
    tlast, tmid = theirs[-1], theirs[len(theirs) // 2]
    loss = last.sum() + (mid * 0.5).sum() if mid.requires_grad else last.sum()
    tloss = tlast.sum() + (tmid * 0.5).sum() if tmid.requires_grad else tlast.sum()
    same_graph(loss.grad_fn, tloss.grad_fn, mapping)
    assert gradd_structure(ge.make_dot(loss)) == torchviz_structure(tloss)
    loss.backward()
    tloss.backward()
    for k, (g, t) in enumerate(zip(ours, theirs)):
        if g.is_leaf:
            assert (g.grad is None) == (t.grad is None), f"t{k} grad in {prog}"
            if g.grad is not None:
                assert_close(g.grad, t.grad, f"d loss / d t{k} in {prog}")


def test_random_programs_cover_the_op_families() -> None:
    labels = {label.split("(")[0].split("[")[0] for s in SEEDS for label, _, _ in generate(s).steps}
    for family in ("exp", "add", "sum", "max", "softmax", "linear", "matmul", "cat", "permute"):
        assert any(lab.startswith(family) for lab in labels), family


def test_reshape_of_a_strided_tensor_is_named_as_torch() -> None:
    x = ge.tensor(np.ones((3, 4)), requires_grad=True)
    tx = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    # Not viewable: CloneBackward0 -> UnsafeViewBackward0; viewable but strided:
    # ReshapeAliasBackward0; contiguous: ViewBackward0.
    for fn in (lambda v: v.t().reshape(-1), lambda v: v[:, 1:].reshape(9), lambda v: v.reshape(12)):
        same_graph(fn(x).grad_fn, fn(tx).grad_fn, {id(x): tx})
