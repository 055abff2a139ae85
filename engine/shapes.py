"""Shape rules: the output shape of each op from its input shapes, with PyTorch's errors.

The engine uses them to explain a failed forward; the SDK uses them to know a remote tensor's
shape without waiting for the server.
"""

from __future__ import annotations

from collections.abc import Sequence

Shape = tuple[int, ...]


def broadcast(*shapes: Shape | None) -> Shape:
    """Broadcast shapes (None stands for a Python scalar)."""
    real = [s for s in shapes if s is not None]
    ndim = max((len(s) for s in real), default=0)
    out = [1] * ndim
    for s in real:
        for i, n in enumerate(s, ndim - len(s)):
            m = out[i]
            if m == 1:
                out[i] = n
            elif n != 1 and n != m:
                raise RuntimeError(
                    f"The size of tensor a ({m}) must match the size of tensor b ({n}) at "
                    f"non-singleton dimension {i}"
                )
    return tuple(out)


def same(a: Shape, *rest: object, **attrs: object) -> Shape:
    return a


def elementwise(*shapes: Shape | None, **attrs: object) -> Shape:
    """The rule of elementwise ops: their operands broadcast (attributes change no shape)."""
    return broadcast(*shapes)


def wrap_dim(dim: int, ndim: int) -> int:
    """Normalise a possibly negative dim, with PyTorch's IndexError."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return dim % n


def dims_arg(dim: int | Sequence[int] | None, ndim: int) -> tuple[int, ...] | None:
    """A reduction's dim argument as a sorted tuple of non-negative dims (None = all).

    A 0-d tensor accepts dims in [-1, 0], as PyTorch: they name no axis of its array, so the
    result is ``()`` (every dim of a 0-d tensor), which array reductions take as ``axis=()``.
    """
    if dim is None:
        return None
    if not isinstance(dim, (tuple, list)):
        dim = (dim,)  # one dim: an int or a NumPy integer
    out = tuple(sorted({wrap_dim(int(d), ndim) for d in dim}))
    if len(out) != len(tuple(dim)):
        raise RuntimeError("dim appears multiple times in the list of dims")
    return out if ndim else ()


def axis(dim: int, ndim: int) -> int | tuple[()]:
    """A wrapped single dim as an array axis: ``()`` for a 0-d array (no axis to name)."""
    return dim if ndim else ()


def reduce(a: Shape, dim: tuple[int, ...] | None = None, keepdim: bool = False) -> Shape:
    if dim is None:
        return (1,) * len(a) if keepdim else ()
    if keepdim:
        return tuple(1 if i in dim else n for i, n in enumerate(a))
    return tuple(n for i, n in enumerate(a) if i not in dim)


def matmul(a: Shape, b: Shape) -> Shape:
    """torch.matmul's shape rule, with its error messages."""
    if not a or not b:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {len(a)}D and {len(b)}D"
        )
    if len(a) == 1 and len(b) == 1:
        if a[0] != b[0]:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{a[0]}] and src [{b[0]}] to have "
                f"the same number of elements, but got {a[0]} and {b[0]} elements respectively"
            )
        return ()
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        if len(a) <= 2 and len(b) <= 2:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({a2[-2]}x{a2[-1]} and "
                f"{b2[-2]}x{b2[-1]})"
            )
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: "
            f"[{a2[-1]}, {b2[-2]}] but got: [{b2[-2]}, {b2[-1]}]."
        )
    batch = broadcast(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def reshape(a: Shape, shape: Shape) -> Shape:
    """Resolve one -1 in ``shape`` and check the element count."""
    numel = 1
    for n in a:
        numel *= n
    known, infer = 1, None
    for i, n in enumerate(shape):
        if n == -1:
            if infer is not None:
                raise RuntimeError("only one dimension can be inferred")
            infer = i
        elif n < 0:
            raise RuntimeError(f"invalid shape dimension {n}")
        else:
            known *= n
    if infer is not None:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = shape[:infer] + (numel // known,) + shape[infer + 1 :]
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def expand(a: Shape, sizes: Shape, tensor_type: str = "FloatTensor") -> Shape:
    """``sizes`` with -1 resolved; ``tensor_type`` (torch's name of the input's type, as
    ``DoubleTensor``) is for the message."""
    if len(sizes) < len(a):
        raise RuntimeError(
            f"expand(torch.{tensor_type}{{[{', '.join(map(str, a))}]}}, "
            f"size=[{', '.join(map(str, sizes))}]): the number of sizes provided "
            f"({len(sizes)}) must be greater or equal to the number of dimensions in the "
            f"tensor ({len(a)})"
        )
    out = [0] * len(sizes)
    lead = len(sizes) - len(a)
    for i in reversed(range(len(sizes))):  # from the last dim, as PyTorch: it names the last
        n = sizes[i]  # mismatch
        if i < lead:
            if n < 0:
                raise RuntimeError(
                    "The expanded size of the tensor (-1) isn't allowed in a "
                    "leading, non-existing dimension 0"
                )
            out[i] = n
            continue
        m = a[i - lead]
        if n == -1:
            n = m
        if m != 1 and m != n:
            raise RuntimeError(
                f"The expanded size of the tensor ({n}) must match the existing size ({m}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: "
                f"{list(a)}"
            )
        out[i] = n
    return tuple(out)


def permute(a: Shape, dims: Shape) -> Shape:
    if len(dims) != len(a):
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {len(a)} is not "
            f"equal to len(dims) = {len(dims)}"
        )
    return tuple(a[d] for d in dims)


def cat(shapes: Sequence[Shape], dim: int) -> Shape:
    if not shapes:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    first = shapes[0]
    total = 0
    for k, s in enumerate(shapes):
        if not s:
            raise RuntimeError(f"zero-dimensional tensor (at position {k}) cannot be concatenated")
        if len(s) != len(first):
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {len(first)} and {len(s)}"
            )
        for i, (m, n) in enumerate(zip(first, s)):
            if i != dim and m != n:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {dim}. Expected size {m} "
                    f"but got size {n} for tensor number {k} in the list."
                )
        total += s[dim]
    return first[:dim] + (total,) + first[dim + 1 :]


def stack(shapes: Sequence[Shape], dim: int) -> Shape:
    if not shapes:
        raise RuntimeError("stack expects a non-empty TensorList")
    for k, s in enumerate(shapes):
        if s != shapes[0]:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shapes[0])} at entry "
                f"0 and {list(s)} at entry {k}"
            )
    return shapes[0][:dim] + (len(shapes),) + shapes[0][dim:]
