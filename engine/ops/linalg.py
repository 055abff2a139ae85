"""Products and matrix reductions: einsum, outer, bmm, baddbmm, dot, mv, trace, diag."""

from __future__ import annotations

from typing import Any

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import composite, op


def _torch_name(x: Any) -> str:
    """PyTorch's name of a tensor's or an array's dtype ("Double")."""
    d = x.dtype
    return (d if isinstance(d, dt.DType) else dt.from_numpy(d)).torch_name


def _same_dtype(a: Any, b: Any) -> dt.DType:
    """The dtype rule of the products that do not promote: both operands share one dtype."""
    if _torch_name(a) != _torch_name(b):
        raise RuntimeError(f"expected scalar type {_torch_name(a)} but found {_torch_name(b)}")
    return a.dtype


# --- dot, mv -------------------------------------------------------------------------------


def _dot_shape(a: tuple, b: tuple) -> tuple:
    if len(a) != 1 or len(b) != 1:
        raise RuntimeError(f"1D tensors expected, but got {len(a)}D and {len(b)}D tensors")
    if a[0] != b[0]:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{a[0]}] and src [{b[0]}] to have the "
            f"same number of elements, but got {a[0]} and {b[0]} elements respectively"
        )
    return ()


def _dot_dtype(self: Any, tensor: Any) -> dt.DType:
    if _torch_name(self) != _torch_name(tensor):
        raise RuntimeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{_torch_name(self)} and {_torch_name(tensor)}"
        )
    return self.dtype


@op(
    grad_fn="DotBackward0",
    arity=2,
    dtype=_dot_dtype,
    saves=(0, 1),
    shape=_dot_shape,
    examples=(Ex(S(3), S(3)), Ex(S(1), S(1))),
)
def dot(xp: Any, self: arg.Tensor, tensor: arg.Tensor) -> Any:
    """The inner product of two vectors of one dtype."""
    if self.ndim == 1 and tensor.ndim == 1:  # PyTorch: dims, then dtypes, then sizes
        _dot_dtype(self, tensor)
    _dot_shape(self.shape, tensor.shape)
    return xp.asarray(xp.dot(self, tensor))


@dot.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    return (g * b if ctx.needs(0) else None), (g * a if ctx.needs(1) else None)


def _mv_shape(a: tuple, v: tuple) -> tuple:
    if len(a) != 2 or len(v) != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {len(a)}, {len(v)}")
    if a[1] != v[0]:
        raise RuntimeError(f"size mismatch, got input ({a[0]}), mat ({a[0]}x{a[1]}), vec ({v[0]})")
    return (a[0],)


def _mv_dtype(self: Any, vec: Any) -> dt.DType:
    m, v = _torch_name(self), _torch_name(vec)
    if m != v:  # PyTorch's mv is addmv into a result of vec's dtype: it is named first
        raise RuntimeError(
            f"addmv input tensors must have the same dtype, but got {v}, {m}, and {v}"
        )
    return self.dtype


@op(
    grad_fn="MvBackward0",
    arity=2,
    dtype=lambda self, vec: _mv_dtype(self, vec),
    saves=(0, 1),
    shape=_mv_shape,
    examples=(Ex(S(2, 3), S(3)), Ex(S(1, 4), S(4))),
)
def mv(xp: Any, self: arg.Tensor, vec: arg.Tensor) -> Any:
    """Matrix times vector."""
    _mv_shape(self.shape, vec.shape)
    _mv_dtype(self, vec)
    return xp.matmul(self, vec)


@mv.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, v = ctx.saved
    ga = outer.call(g, v) if ctx.needs(0) else None
    gv = a.t().mv(g) if ctx.needs(1) else None
    return ga, gv


# --- outer ---------------------------------------------------------------------------------


def _outer(self: Any, vec2: Any) -> Any:
    if self.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {self.ndim}-D")
    if vec2.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    # As PyTorch: a column view of self times vec2 (ViewBackward0 -> MulBackward0).
    return self.reshape(self.shape[0], 1) * vec2


@composite("outer", method=True, examples=(Ex(S(3), S(4)), Ex(S(1), S(2))))
def outer(self: arg.Tensor, vec2: arg.Tensor) -> Any:
    """The outer product of two vectors: out[i][j] = self[i] * vec2[j]."""
    return _outer(self, vec2)


@composite("ger", method=True, examples=(Ex(S(2), S(3)),))
def ger(self: arg.Tensor, vec2: arg.Tensor) -> Any:
    """outer's older name."""
    return _outer(self, vec2)


# --- bmm, baddbmm --------------------------------------------------------------------------


def _bmm_shape(a: tuple, b: tuple) -> tuple:
    if len(a) != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if len(b) != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if b[0] != a[0] or b[1] != a[2]:
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{a[0]}, {a[2]}] "
            f"but got: [{b[0]}, {b[1]}]."
        )
    return (a[0], a[1], b[2])


@op(
    grad_fn="BmmBackward0",
    arity=2,
    dtype=lambda self, mat2: _same_dtype(self, mat2),
    saves=(0, 1),
    shape=_bmm_shape,
    examples=(Ex(S(2, 3, 4), S(2, 4, 5)), Ex(S(1, 2, 1), S(1, 1, 3))),
)
def bmm(xp: Any, self: arg.Tensor, mat2: arg.Tensor) -> Any:
    """Batched matrix product of two 3-D tensors with one batch size."""
    _bmm_shape(self.shape, mat2.shape)
    _same_dtype(self, mat2)
    return xp.matmul(self, mat2)


@bmm.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    ga = g.bmm(b.transpose(1, 2)) if ctx.needs(0) else None
    gb = a.transpose(1, 2).bmm(g) if ctx.needs(1) else None
    return ga, gb


def _baddbmm_shape(s: tuple, a: tuple, b: tuple, beta: Any = 1, alpha: Any = 1) -> tuple:
    if len(a) >= 2 and len(b) >= 3:
        # As PyTorch: self is expanded to [batch1 0, batch1 1, batch2 2] before the batches
        # are checked, so expand's error comes first.
        shapes.expand(s, (a[0], a[1], b[2]))
    return _bmm_shape(a, b)


def _baddbmm_dtype(self: Any, batch1: Any, batch2: Any, beta: Any = 1, alpha: Any = 1) -> Any:
    names = [_torch_name(x) for x in (self, batch1, batch2)]
    if len(set(names)) > 1:
        raise RuntimeError(
            f"Input dtypes must be the same, got: input {names[0].lower()}, batch1: "
            f"{names[1].lower()}, batch2: {names[2].lower()}"
        )
    return self.dtype


@op(
    grad_fn="BaddbmmBackward0",
    arity=3,
    dtype=_baddbmm_dtype,
    saves=(1, 2),
    shape=_baddbmm_shape,
    examples=(
        Ex(S(2, 3, 5), S(2, 3, 4), S(2, 4, 5)),
        Ex(S(5), S(2, 3, 4), S(2, 4, 5), beta=0.5, alpha=2),
        Ex(S(3, 1), S(2, 3, 2), S(2, 2, 4), beta=0, alpha=-1.5),
    ),
)
def baddbmm(
    xp: Any,
    self: arg.Tensor,
    batch1: arg.Tensor,
    batch2: arg.Tensor,
    beta: arg.Number = 1,
    alpha: arg.Number = 1,
) -> Any:
    """beta * self + alpha * (batch1 @ batch2), batched (self broadcasts)."""
    _baddbmm_shape(self.shape, batch1.shape, batch2.shape)
    _baddbmm_dtype(self, batch1, batch2)
    prod = xp.matmul(batch1, batch2)
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:  # as PyTorch: self is ignored (its NaNs and infinities too)
        return prod
    return prod + self if beta == 1 else prod + beta * self


@baddbmm.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    beta, alpha = ctx.attrs["beta"], ctx.attrs["alpha"]
    gs = None
    if ctx.needs(0):
        gs = g if beta == 1 else g * beta
    ga = g.bmm(b.transpose(1, 2)) if ctx.needs(1) else None
    gb = a.transpose(1, 2).bmm(g) if ctx.needs(2) else None
    if alpha != 1:
        ga = ga * alpha if ga is not None else None
        gb = gb * alpha if gb is not None else None
    return gs, ga, gb


# --- einsum --------------------------------------------------------------------------------
# PyTorch's einsum is not one autograd node: it records the permutes, views, bmm and sums it
# runs (sumproduct_pair), so its graph has no einsum name. gradd computes with xp.einsum and
# records its own nodes: a one-operand step (diagonals and sums) and a two-operand step
# (EinsumBackward0 both), contracting operands left to right as PyTorch does.

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_sizes(terms: list[str], shapes_: list[tuple]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes_):
        for letter, n in zip(term, shape):
            sizes.setdefault(letter, n)
    return sizes


def _einsum_shape(*shapes_: tuple, equation: str) -> tuple:
    lhs, out = equation.split("->")
    sizes = _einsum_sizes(lhs.split(","), list(shapes_))
    return tuple(sizes[c] for c in out)


def _unique(term: str) -> str:
    return "".join(dict.fromkeys(term))


@op(
    internal=True,
    grad_fn="EinsumBackward0",
    shape=lambda a, equation: _einsum_shape(a, equation=equation),
    method=False,
    function=False,
    examples=(Ex(S(3, 3), "ii->i"), Ex(S(2, 3), "ij->j"), Ex(S(2, 2, 3), "iij->ji")),
)
def einsum_single(xp: Any, self: Any, equation: str) -> Any:
    """One operand's einsum step: a transpose, diagonals and sums.

    ``equation`` has explicit subscripts, no ellipsis and distinct output letters."""
    return xp.array(xp.einsum(equation, self), copy=True)  # never a view of self


@einsum_single.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (einsum_single_backward.call(g, ctx.meta[0][0], ctx.attrs["equation"]),)


@op(
    internal=True,
    grad_fn="EinsumBackwardBackward0",
    shape=lambda g, shape, equation: shape,
    method=False,
    function=False,
    examples=(Ex(S(3), (3, 3), "ii->i"), Ex(S(3, 2), (2, 2, 3), "iij->ji")),
)
def einsum_single_backward(xp: Any, self: Any, shape: tuple, equation: str) -> Any:
    """The adjoint of ``einsum_single``, zeros off the diagonals of repeated letters.

    ``self`` is spread back over the summed letters and written on those diagonals."""
    term, out = equation.split("->")
    kept = [c for c in _unique(term) if c in out]  # out's letters, in term's order
    g = xp.transpose(self, [out.index(c) for c in kept]) if kept else self
    # One axis per position of term: its letter's axis at the letter's first occurrence,
    # size 1 at repeats and at summed letters (the broadcast below spreads self over them).
    axes = iter(g.shape)
    g = g.reshape(
        [next(axes) if term.index(c) == k and c in out else 1 for k, c in enumerate(term)]
    )
    out_arr = xp.broadcast_to(g, shape)
    for k, c in enumerate(term):
        j = term.index(c)
        if j != k:  # a repeated letter: keep only its diagonal with the first occurrence
            n = shape[k]
            ar = xp.arange(n)
            eye = ar.reshape([n if d == j else 1 for d in range(len(term))]) == ar.reshape(
                [n if d == k else 1 for d in range(len(term))]
            )
            out_arr = out_arr * eye
    return xp.array(xp.broadcast_to(out_arr, shape), dtype=self.dtype, copy=True)


@einsum_single_backward.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (einsum_single.call(g, ctx.attrs["equation"]),)


@op(
    internal=True,
    grad_fn="EinsumBackward0",
    arity=2,
    saves=(0, 1),
    shape=lambda a, b, equation: _einsum_shape(a, b, equation=equation),
    method=False,
    function=False,
    examples=(Ex(S(2, 3), S(3, 4), "ij,jk->ik"), Ex(S(3), S(2, 3), "j,ij->ji")),
)
def einsum_pair(xp: Any, self: Any, other: Any, equation: str) -> Any:
    """Two operands' einsum step: a contraction of two operands.

    ``equation`` has explicit subscripts, each letter once per operand, and every letter of an
    operand in the other or in the output."""
    return xp.einsum(equation, self, other)


@einsum_pair.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    lhs, out = ctx.attrs["equation"].split("->")
    ta, tb = lhs.split(",")
    ga = einsum_pair.call(g, b, f"{out},{tb}->{ta}") if ctx.needs(0) else None
    gb = einsum_pair.call(g, a, f"{out},{ta}->{tb}") if ctx.needs(1) else None
    return ga, gb


def _check_dots(term: str, twice: str, stray: str) -> None:
    """A term's dots form at most one ellipsis (PyTorch's two messages otherwise)."""
    k, found = 0, False
    while k < len(term):
        if term[k] == ".":
            if found:
                raise RuntimeError(twice)
            if term[k : k + 3] != "...":
                raise RuntimeError(stray)
            found = True
            k += 3
        else:
            k += 1


def _einsum_terms(equation: str, operands: list) -> tuple[list[str], str]:
    """Explicit subscripts per operand and for the output (ellipses made letters), with
    PyTorch's errors."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    if len(terms) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    for k, c in enumerate(lhs):
        if c not in _LETTERS and c not in ",.":
            raise RuntimeError(
                f"einsum(): invalid subscript given at index {k} in the equation string, "
                "subscripts must be in [a-zA-Z]"
            )
    for i, term in enumerate(terms):
        _check_dots(
            term,
            f"einsum(): found '.' for operand {i} for which an ellipsis was already found",
            f"einsum(): found '.' for operand {i} that is not part of any ellipsis",
        )
    n_ell = 0
    for i, (term, x) in enumerate(zip(terms, operands)):
        letters = len(term.replace("...", ""))
        if "..." in term:
            if letters > x.ndim:
                raise RuntimeError(
                    f"einsum(): the number of subscripts in the equation ({letters}) is more "
                    f"than the number of dimensions ({x.ndim}) for operand {i}"
                )
            n_ell = max(n_ell, x.ndim - letters)
        elif letters != x.ndim:
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({letters}) does not match "
                f"the number of dimensions ({x.ndim}) for operand {i} and no ellipsis was given"
            )
    free = [c for c in _LETTERS if c not in eq]
    ell = "".join(free[:n_ell])
    out_terms = []
    for term, x in zip(terms, operands):
        if "..." in term:
            k = x.ndim - len(term.replace("...", ""))
            term = term.replace("...", ell[n_ell - k :] if k else "")
        out_terms.append(term)
    if arrow:
        for k, c in enumerate(rhs, len(lhs) + 2):
            if c not in _LETTERS and c != ".":
                raise RuntimeError(
                    f"einsum(): invalid subscript given at index {k} in the equation string, "
                    "subscripts must be in [a-zA-Z]"
                )
        _check_dots(
            rhs,
            "einsum(): found '.' for output but an ellipsis (...) was already found",
            "einsum(): found '.' for output that is not part of any ellipsis (...)",
        )
        out = rhs.replace("...", ell)
        for c in out:
            if not any(c in t for t in out_terms):
                raise RuntimeError(
                    f"einsum(): output subscript {c} does not appear in the equation for any "
                    "input operand"
                )
        if len(set(out)) != len(out):
            raise RuntimeError(
                f"einsum(): output subscript {out[0]} appears more than once in the output"
            )
    else:
        counts: dict[str, int] = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(
            sorted((c for c, n in counts.items() if n == 1 and c not in ell), key=_LETTERS.index)
        )
    return out_terms, out


@composite(
    "einsum",
    arity=0,  # the equation comes first; the tensors follow it
    examples=(
        Ex("ij,jk->ik", S(2, 3), S(3, 4)),
        Ex("ii->i", S(3, 3)),
        Ex("ij->", S(2, 3)),
        Ex("bij,bjk->bik", S(2, 2, 3), S(2, 3, 2)),
        Ex("i,j", S(3), S(2)),
        Ex("...ij,...jk", S(2, 1, 2, 3), S(4, 3, 2)),
        Ex("ij,jk,kl->il", S(2, 3), S(3, 2), S(2, 2)),
        Ex("iij,jk->ki", S(2, 2, 3), S(3, 2)),
        Ex("ab,cd->", S(2, 2), S(3, 1)),
    ),
)
def einsum(equation: arg.Str, *operands: arg.Anything) -> Any:
    """Sum of products over the subscripts of ``equation``, as PyTorch's einsum.

    Operands come as arguments or as one list; ellipses and size-1 broadcasting included."""
    # ``equation`` declares no kind: the first parameter of a kind other than Tensor would make
    # the argument check ask for a tensor there. It is checked here instead.
    if type(equation) is not str:
        raise TypeError(
            f"einsum(): argument 'equation' (position 1) must be str, not {type(equation).__name__}"
        )
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, x in enumerate(operands):
        if not arg.is_tensor(x):
            raise TypeError(
                f"einsum(): argument 'tensors' must be tuple of Tensors, but element {i} is "
                f"{type(x).__name__}"
            )
    terms, out = _einsum_terms(equation, list(operands))
    ops = list(operands)
    # Sizes: a letter's sizes agree, or are 1 (that operand is expanded, as PyTorch broadcasts).
    sizes: dict[str, int] = {}
    for i, (term, x) in enumerate(zip(terms, ops)):
        for c, n in zip(term, x.shape):
            seen = sizes.get(c)
            if seen is None or seen == 1:
                sizes[c] = n
            elif n != seen and n != 1:
                raise RuntimeError(
                    f"einsum(): subscript {c} has size {n} for operand {i} which does not "
                    f"broadcast with previously seen size {seen}"
                )
    for i, (term, x) in enumerate(zip(terms, ops)):
        full = tuple(sizes[c] for c in term)
        if x.shape != full:
            ops[i] = x.expand(*full)
    if len(ops) == 1:
        return einsum_single.call(ops[0], f"{terms[0]}->{out}")
    # Each operand first loses the letters no other operand nor the output has (summed) and
    # its repeated letters (diagonals); then the operands are contracted left to right.
    for i, term in enumerate(terms):
        others = out + "".join(t for j, t in enumerate(terms) if j != i)
        keep = "".join(c for c in _unique(term) if c in others)
        if keep != term:
            ops[i] = einsum_single.call(ops[i], f"{term}->{keep}")
            terms[i] = keep
    cur, cur_term = ops[0], terms[0]
    for k in range(1, len(ops)):
        if k == len(ops) - 1:
            step_out = out
        else:
            later = out + "".join(terms[k + 1 :])
            step_out = "".join(c for c in _unique(cur_term + terms[k]) if c in later)
        cur = einsum_pair.call(cur, ops[k], f"{cur_term},{terms[k]}->{step_out}")
        cur_term = step_out
    return cur
