"""Custom ``s.autograd.Function`` subclasses against PyTorch: values, gradients, second
derivatives, grad_fn names, ctx features and errors, embedded and on a server (where the SDK
records ``backward`` as ops that the server replays)."""

from __future__ import annotations

from typing import Any

import gradd
import pytest

torch = pytest.importorskip("torch")


def functions(lib: Any) -> Any:
    """The same custom Functions, written against ``lib`` (torch or a gradd session)."""
    F = lib.autograd.Function

    class Cube(F):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x**3 * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g * ctx.k, None

    class MulAdd(F):  # two tensor inputs, two outputs
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b, a + b

        @staticmethod
        def backward(ctx, g_prod, g_sum):
            a, b = ctx.saved_tensors
            ga = g_prod * b + g_sum if ctx.needs_input_grad[0] else None
            gb = g_prod * a + g_sum if ctx.needs_input_grad[1] else None
            return ga, gb

    class Exp(F):  # setup_context style, saves its output
        @staticmethod
        def forward(x):
            return x.exp()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    class WithIndex(F):  # a non-differentiable output
        @staticmethod
        def forward(ctx, x):
            doubled = x * 2
            flag = x * 0
            ctx.mark_non_differentiable(flag)
            return doubled, flag

        @staticmethod
        def backward(ctx, g, g_flag):
            return 2 * g + g_flag

    class Identity(F):  # returns its input as it is
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    class Scale(F):  # changes its input in place
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    return Cube, MulAdd, Exp, WithIndex, Identity, Scale


def run(lib: Any) -> dict:
    """A program using every Function; what it observes."""
    Cube, MulAdd, Exp, WithIndex, Identity, Scale = functions(lib)
    f64 = lib.float64
    seen: dict[str, Any] = {}
    x = lib.tensor([1.0, 2.0, -1.5], dtype=f64, requires_grad=True)
    w = lib.tensor([0.5, -2.0, 3.0], dtype=f64, requires_grad=True)
    y = Cube.apply(x, 2.0)
    seen["cube"] = y.tolist()
    seen["name"] = y.grad_fn.name()
    seen["next"] = [
        type(n).__name__ if n is not None else None for n, _ in y.grad_fn.next_functions
    ]
    seen["ctx_k"] = y.grad_fn.k
    (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    seen["grad"], seen["grad_rg"] = g.tolist(), g.requires_grad
    (gg,) = lib.autograd.grad((g * w).sum(), x)
    seen["second"] = gg.tolist()  # 12 k x w
    p, s = MulAdd.apply(x, w)
    seen["muladd_names"] = (p.grad_fn.name(), s.grad_fn.name())
    gx, gw = lib.autograd.grad((p * 3).sum() + (s * s).sum(), (x, w), retain_graph=True)
    seen["muladd_grads"] = (gx.tolist(), gw.tolist())
    (only_p,) = lib.autograd.grad(p.sum(), w)  # s gets no gradient: zeros in backward
    seen["muladd_one_output"] = only_p.tolist()
    e = Exp.apply(x)
    (ge,) = lib.autograd.grad(e.sum(), x, create_graph=True)
    (gge,) = lib.autograd.grad(ge.sum(), x)
    seen["exp"] = (e.tolist(), e.grad_fn.name(), ge.tolist(), gge.tolist())
    d, flag = WithIndex.apply(x)
    seen["non_diff"] = (flag.requires_grad, flag.grad_fn is None, d.grad_fn.name())
    seen["non_diff_grad"] = lib.autograd.grad(d.sum(), x)[0].tolist()
    i = Identity.apply(x)
    seen["identity"] = (i is x, i.requires_grad, i.grad_fn.name())
    seen["identity_grad"] = lib.autograd.grad(i.sum(), x)[0].tolist()
    z = x * 1
    out = Scale.apply(z)
    seen["dirty"] = (out is z, z.grad_fn.name(), z.tolist())
    seen["dirty_grad"] = lib.autograd.grad(out.sum(), x)[0].tolist()
    with lib.no_grad():
        seen["no_grad"] = Cube.apply(x, 1.0).grad_fn is None
    seen["no_input_rg"] = Cube.apply(lib.ones(2, dtype=f64), 1.0).requires_grad
    loss = (Cube.apply(x, 1.0) * w).sum()
    loss.backward()
    seen["backward"] = x.grad.tolist()
    return seen


def test_functions_match_pytorch(session: gradd.Session) -> None:
    assert run(session) == run(torch)


def values_of(lib: Any, make: Any, *args: Any) -> Any:
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    return make(lib, x, *args)


def raised(call: Any) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        call()
    return info.type, str(info.value)


def bad_functions(lib: Any) -> dict:
    F = lib.autograd.Function

    class TooMany(F):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g

    class ForANumber(F):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g

    class BadShape(F):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:1]

    return {"too_many": TooMany, "for_a_number": ForANumber, "bad_shape": BadShape}


@pytest.mark.parametrize("which", ["too_many", "for_a_number", "bad_shape"])
def test_bad_gradients_raise_pytorch_s_errors(session: gradd.Session, which: str) -> None:
    """Raised when the backward pass reaches the node (a server session's backward was
    recorded at apply; the error waits until then), with PyTorch's message."""

    def program(lib: Any) -> Any:
        fn = bad_functions(lib)[which]
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = fn.apply(*((x, 3.0) if which == "for_a_number" else (x,))).sum()
        return lambda: y.backward()

    assert raised(program(session)) == raised(program(torch))


def test_saved_tensors_and_the_freed_graph(session: gradd.Session) -> None:
    for lib in (torch, session):
        Cube = functions(lib)[0]
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = Cube.apply(x, 1.0).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()
        h = x * 1
        y = Cube.apply(h, 1.0).sum()
        h.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()


def test_leaf_marked_dirty_is_refused(session: gradd.Session) -> None:
    for lib in (torch, session):
        Scale = functions(lib)[5]
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            Scale.apply(x)


def test_materialize_grads_off(session: gradd.Session) -> None:
    seen = []

    class Two(session.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append(gb is None)
            return ga * 2 if gb is None else ga * 2 + gb * 3

    x = session.tensor([1.0, 2.0], requires_grad=True)
    a, _ = Two.apply(x)
    a.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]  # PyTorch's numbers either way
    # Embedded, backward sees None as PyTorch's; recorded for a server, it saw a placeholder.
    assert seen == ([True] if isinstance(x, gradd.engine.Tensor) else [False])


def test_once_differentiable(session: gradd.Session) -> None:
    for lib in (torch, session):
        once = lib.autograd.function.once_differentiable

        class Square(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @once
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        x = lib.tensor([1.0, 3.0], requires_grad=True)
        v = lib.tensor([1.0, 1.0], requires_grad=True)
        (g,) = lib.autograd.grad(Square.apply(x), x, v, create_graph=True)
        assert g.tolist() == [2.0, 6.0] and g.requires_grad
        if lib is torch or isinstance(x, gradd.engine.Tensor):
            # (a server's autograd.grad hands create_graph gradients over through .grad, so
            # theirs start with CopyBackwards, before this node)
            assert g.grad_fn.name() == "torch::autograd::Error"
        with pytest.raises(RuntimeError, match="trying to differentiate twice a function"):
            g.sum().backward()
            getattr(lib, "synchronize", lambda: None)()  # a server reports it at the next wait
        (g,) = lib.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
        assert g.tolist() == [2.0, 6.0] and not g.requires_grad  # no gradient needed one


def test_value_reads_in_a_recorded_backward_name_the_line(remote: gradd.Session) -> None:
    class Peek(remote.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            if g.sum().item() > 0:  # needs a value: the line named
                return g
            return -g

    x = remote.tensor([1.0], requires_grad=True)
    h = x * 1
    with pytest.raises(gradd.GraddError) as info:
        Peek.apply(h)
    line = Peek.backward.__code__.co_firstlineno + 2
    assert f"{__file__}:{line}" in str(info.value) and "PeekBackward" in str(info.value)
    assert isinstance(info.value, NotImplementedError)
    assert (x * 3).sum().item() == 3.0  # the session goes on
    assert h.grad_fn.name() == "MulBackward0" and h.tolist() == [2.0]  # as the server has it


def test_remote_backward_runs_on_the_server_only_when_reached(remote: gradd.Session) -> None:
    calls = []

    class Half(remote.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x / 2

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g / 2

    x = remote.tensor([4.0, 8.0], requires_grad=True)
    y = Half.apply(Half.apply(x))
    assert calls == [1, 1]  # recorded once per apply, here
    y.sum().backward()
    y2 = Half.apply(x)
    y2.sum().backward()
    assert calls == [1, 1, 1] and x.grad.tolist() == [0.75, 0.75]


def test_gradd_torch_carries_them(session: gradd.Session) -> None:
    import gradd.torch as gtorch

    with gtorch.use(session):
        Cube = functions(gtorch)[0]  # a Function subclass of gradd.torch.autograd.Function
        x = gtorch.tensor([1.0, 2.0], requires_grad=True)
        (g,) = gtorch.autograd.grad(Cube.apply(x, 1.0).sum(), x)
        jac = gtorch.autograd.functional.jacobian(lambda t: Cube.apply(t, 1.0), x)
        assert g.tolist() == [3.0, 12.0] and jac.tolist() == [[3.0, 0.0], [0.0, 12.0]]
        assert gtorch.autograd.function.once_differentiable is not None
        assert isinstance(Cube.apply(x, 1.0).grad_fn, gtorch.autograd.function.FunctionCtx)


def test_make_dot_draws_one_node_per_function(session: gradd.Session) -> None:
    class Two(session.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = session.tensor([1.0, 2.0], requires_grad=True)
    a, b = Two.apply(x)
    picture = gradd.make_dot((a * b).sum(), params={"x": x})
    labels = sorted(n.label for n in picture.nodes)
    assert labels == sorted(["SumBackward0", "MulBackward0", "TwoBackward", "x\n (2)"])
    assert len(picture.edges) == 4  # TwoBackward -> MulBackward0 twice, as torchviz draws it


def test_vjp_is_backward_s_other_name(session: gradd.Session) -> None:
    for lib in (torch, session):

        class Double(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def vjp(ctx, g):
                return g * 2

        class Both(Double):
            @staticmethod
            def backward(ctx, g):
                return g * 2

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        Double.apply(x).sum().backward()
        assert x.grad.tolist() == [2.0, 2.0]
        with pytest.raises(RuntimeError, match="Implementing both 'backward' and 'vjp'"):
            Both.apply(x).sum().backward()


def test_graphs_are_freed_by_reference_counting(session: gradd.Session) -> None:
    import weakref

    Exp = functions(session)[2]  # saves its output
    MulAdd = functions(session)[1]
    x = session.tensor([1.0, 2.0], requires_grad=True)
    y = Exp.apply(x)
    p, s = MulAdd.apply(y, x)
    nodes = [weakref.ref(y.grad_fn), weakref.ref(p.grad_fn), weakref.ref(s.grad_fn)]
    del y, p, s  # no cycle through the saved output or ctx: gone at once, without gc
    assert all(n() is None for n in nodes)


def test_double_backward_with_backward(session: gradd.Session) -> None:
    """A second pass by ``.backward()`` through gradients made with create_graph fills the
    leaves' ``.grad`` as PyTorch's does (on a server the client asks which it reached)."""

    def program(lib: Any) -> list:
        Cube = functions(lib)[0]
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([3.0, -1.0], dtype=lib.float64, requires_grad=True)
        unused = lib.tensor([1.0], requires_grad=True)
        (g,) = lib.autograd.grad(Cube.apply(x, 2.0).sum(), x, create_graph=True)
        (g * w).sum().backward()
        (h,) = lib.autograd.grad((x**3 * w).sum(), x, create_graph=True)
        h.sum().backward()
        return [x.grad.tolist(), w.grad.tolist(), unused.grad]

    assert program(session) == program(torch)


def test_save_for_backward_takes_tensors_or_none(session: gradd.Session) -> None:
    def program(lib: Any) -> Any:
        class Save(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, extra):
                ctx.save_for_backward(x, extra)
                return x * 2

            @staticmethod
            def backward(ctx, g):
                x, extra = ctx.saved_tensors
                return g * 2 if extra is None else g * 3, None

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        Save.apply(x, None).sum().backward()
        return x.grad.tolist(), raised(lambda: Save.apply(x, 3))

    assert program(session) == program(torch)


def test_saved_outputs_of_a_several_output_function_differentiate_again(
    session: gradd.Session,
) -> None:
    def program(lib: Any) -> Any:
        class ExpSquare(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                a, b = x.exp(), x * x
                ctx.save_for_backward(a, b, x)
                return a, b

            @staticmethod
            def backward(ctx, ga, gb):
                a, b, x = ctx.saved_tensors  # a and b lead back to this node's own outputs
                return ga * a + gb * 2 * x + gb * b

        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        a, b = ExpSquare.apply(x)
        (g,) = lib.autograd.grad((a * 3 + b).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        return g.tolist(), gg.tolist()

    got, expected = program(session), program(torch)
    assert torch.allclose(torch.tensor(got), torch.tensor(expected))
