"""Autograd's rules as PyTorch has them, each with its message.

Values are computed by hand. The error table at the bottom also runs in PyTorch where it is
installed, to prove that the exception class and key phrase are PyTorch's own.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

F = ge.functional


def leaf(values: Any) -> ge.Tensor:
    return ge.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def close(t: ge.Tensor | None, expected: Any) -> None:
    assert t is not None
    np.testing.assert_allclose(t.detach().numpy(), np.asarray(expected, dtype=np.float64))


# -- .grad ------------------------------------------------------------------------------------


def test_grad_is_filled_on_leaves_that_require_grad() -> None:
    x = leaf([1.0, 2.0, 3.0])
    c = ge.tensor([4.0, 5.0, 6.0], dtype=ge.float64)
    (x * x * c).sum().backward()
    close(x.grad, [8.0, 20.0, 36.0])  # d/dx x^2 c = 2xc
    assert c.grad is None and not c.requires_grad
    assert x.is_leaf and x.grad_fn is None


def test_non_leaf_grad_is_none_with_a_warning() -> None:
    x = leaf([1.0, 2.0])
    y = x * 3
    y.sum().backward()
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert y.grad is None


def test_retain_grad_keeps_a_non_leaf_grad_without_warning() -> None:
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    assert y.retains_grad
    (y * y).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        close(y.grad, [6.0, 12.0])  # 2y
    close(x.grad, [18.0, 36.0])


def test_gradients_accumulate_until_zeroed_or_set_to_none() -> None:
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    close(x.grad, [2.0, -4.0])
    held = x.grad
    (x * x).sum().backward()
    close(x.grad, [4.0, -8.0])
    close(held, [4.0, -8.0])  # accumulated in place, as PyTorch: holders of .grad see the sum
    x.grad.zero_()
    close(x.grad, [0.0, 0.0])
    (3 * x).sum().backward()
    close(x.grad, [3.0, 3.0])
    x.grad = None
    (x * 5).sum().backward()
    close(x.grad, [5.0, 5.0])


def test_grad_assignment_checks_shape_and_dtype() -> None:
    x = leaf([1.0, 2.0])
    x.grad = ge.tensor([1.0, 1.0], dtype=ge.float64)
    with pytest.raises(RuntimeError, match=r"\[3\]"):
        x.grad = ge.ones(3, dtype=ge.float64)
    with pytest.raises(
        RuntimeError, match="with dtype 'float' to a tensor with grad_dtype 'Double'"
    ):
        x.grad = ge.ones(2)  # float32
    with pytest.raises(TypeError):
        x.grad = [1.0, 2.0]  # type: ignore[assignment]


# -- grad modes -------------------------------------------------------------------------------


def test_nothing_is_recorded_inside_no_grad() -> None:
    x = leaf([1.0, 2.0])
    with ge.no_grad():
        assert not ge.is_grad_enabled()
        y = x * 2 + 1
        z = y.exp().sum()
    assert ge.is_grad_enabled()
    for t in (y, z):
        assert not t.requires_grad and t.grad_fn is None and t.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        z.backward()


def test_grad_modes_nest() -> None:
    x = leaf([2.0])
    with ge.no_grad():
        with ge.enable_grad():
            assert ge.is_grad_enabled()
            y = x * x
            with ge.set_grad_enabled(False):
                assert not ge.is_grad_enabled()
                z = x * x
            assert ge.is_grad_enabled()
        assert not ge.is_grad_enabled()
        with ge.no_grad():
            assert not ge.is_grad_enabled()
        assert not ge.is_grad_enabled()
    assert ge.is_grad_enabled()
    assert y.requires_grad and y.grad_fn.name() == "MulBackward0"
    assert not z.requires_grad


def test_grad_modes_restore_on_exceptions() -> None:
    with pytest.raises(ZeroDivisionError), ge.no_grad():
        1 / 0  # noqa: B018
    assert ge.is_grad_enabled()


def test_set_grad_enabled_as_a_call_context_and_decorator() -> None:
    ge.set_grad_enabled(False)
    try:
        assert not ge.is_grad_enabled()
    finally:
        ge.set_grad_enabled(True)
    assert ge.is_grad_enabled()
    with ge.set_grad_enabled(False):
        assert not ge.is_grad_enabled()
    assert ge.is_grad_enabled()

    @ge.set_grad_enabled(False)
    def frozen(t: ge.Tensor) -> ge.Tensor:
        assert not ge.is_grad_enabled()
        return t * 2

    assert ge.is_grad_enabled()  # defining the decorated function changed nothing
    x = leaf([1.0])
    assert not frozen(x).requires_grad
    assert ge.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators() -> None:
    x = leaf([1.0])

    @ge.no_grad()
    def off(t: ge.Tensor) -> ge.Tensor:
        return t * 2

    @ge.enable_grad()
    def on(t: ge.Tensor) -> ge.Tensor:
        return t * 2

    assert not off(x).requires_grad
    with ge.no_grad():
        y = on(x)
        assert not ge.is_grad_enabled()
    assert y.requires_grad and y.grad_fn.name() == "MulBackward0"


def test_grad_mode_is_thread_local() -> None:
    x = leaf([1.0, 2.0])
    inside = threading.Event()
    checked = threading.Event()
    seen: dict[str, Any] = {}

    def holder() -> None:
        with ge.no_grad():
            inside.set()
            checked.wait(5)
            seen["holder_mode"] = ge.is_grad_enabled()
            seen["holder_y"] = x * 2

    def other() -> None:
        inside.wait(5)
        seen["other_mode"] = ge.is_grad_enabled()
        seen["other_y"] = x * 2
        checked.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["holder_mode"] is False and not seen["holder_y"].requires_grad
    assert seen["other_mode"] is True and seen["other_y"].requires_grad
    assert ge.is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled() -> None:
    seen = {}
    with ge.no_grad():
        t = threading.Thread(target=lambda: seen.setdefault("mode", ge.is_grad_enabled()))
        t.start()
        t.join(5)
    assert seen["mode"] is True


# -- in-place ops ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda x: x.add_(1),
        lambda x: x.sub_(1),
        lambda x: x.mul_(2),
        lambda x: x.div_(2),
        lambda x: x.zero_(),
        lambda x: x.fill_(3.0),
        lambda x: x.copy_(ge.ones(2, dtype=ge.float64)),
    ],
    ids=["add_", "sub_", "mul_", "div_", "zero_", "fill_", "copy_"],
)
def test_in_place_on_a_leaf_that_requires_grad(mutate: Callable) -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(
        RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"
    ):
        mutate(x)
    close(x, [1.0, 2.0])  # nothing was written
    with ge.no_grad():
        mutate(x)  # allowed where no graph is recorded
    assert x.is_leaf and x.requires_grad and x._version == 1


def test_augmented_assignment_on_a_leaf() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x += 1
    with ge.no_grad():
        x -= 0.5
    close(x, [0.5, 1.5])


def test_in_place_on_a_non_leaf_is_recorded() -> None:
    x = leaf([1.0, 2.0])
    y = x * 1
    y.mul_(x)  # y = x^2, recorded in place
    y.add_(x)  # y = x^2 + x
    assert y.grad_fn.name() == "AddBackward0" and not y.is_leaf
    y.sum().backward()
    close(x.grad, [3.0, 5.0])  # 2x + 1


def test_in_place_through_a_view_reaches_its_base() -> None:
    t = ge.ones(3)
    t[0].mul_(3)  # an integer index is a view, not a copied scalar
    t[1:].add_(1)
    t.view(3, 1).mul_(2)
    close(t, [6.0, 4.0, 4.0])


def test_in_place_with_a_graph_is_seen_by_views_of_self() -> None:
    w = leaf([2.0, 2.0, 2.0])
    d = w * 1
    first = d[0]
    d.mul_(w)  # d = w^2: the view sees it, as in PyTorch
    close(first, 4.0)
    d.sum().backward()
    close(w.grad, [4.0, 4.0, 4.0])  # 2w


@pytest.mark.parametrize(
    "view", [lambda b: b[1:], lambda b: b[0], lambda b: b.t(), lambda b: b.view(3)]
)
def test_in_place_with_a_graph_on_a_view_records_copy_slices(view: Callable) -> None:
    x = leaf([1.0, 2.0, 3.0])
    b = x * 2
    v = view(b)
    v.mul_(3)  # as PyTorch: the base records CopySlices, the view AsStridedBackward0
    assert b.grad_fn.name() == "torch::autograd::CopySlices"
    assert v.grad_fn.name() == "AsStridedBackward0"
    (b * b).sum().backward()
    expected = 8 * np.array([1.0, 2.0, 3.0])  # d(4x^2)/dx where not written
    written = np.zeros(3, dtype=bool)
    written[np.asarray(view(ge.tensor(np.arange(3.0))).detach().numpy(), dtype=int)] = True
    expected[written] *= 9
    close(x.grad, expected.tolist())


def test_modifying_a_saved_input_fails_backward() -> None:
    x = leaf([1.0, 2.0])
    a = x * 2
    z = (a * a).sum()  # MulBackward0 saves a
    a.add_(1)
    with pytest.raises(
        RuntimeError,
        match="one of the variables needed for gradient computation has been modified by an "
        "inplace operation",
    ) as err:
        z.backward()
    assert "version 1; expected version 0" in str(err.value)


@pytest.mark.parametrize("op", ["exp", "sigmoid", "tanh", "sqrt"])
def test_modifying_a_saved_output_fails_backward(op: str) -> None:
    x = leaf([0.5, 1.0])
    y = getattr(x, op)()  # these ops save their output
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_modifying_an_unsaved_input_is_fine() -> None:
    x = leaf([1.0, 2.0])
    a = x * 2
    z = (a + 1).sum()  # AddBackward0 saves nothing
    with ge.no_grad():
        a.add_(100)
    z.backward()
    close(x.grad, [2.0, 2.0])


def test_version_counter_counts_in_place_writes() -> None:
    t = ge.zeros(3)
    assert t._version == 0
    t.add_(1)
    t.mul_(2)
    t += 1
    assert t._version == 3
    close(t, [3.0, 3.0, 3.0])
    assert t.detach()._version == 3  # shared with detached views, as PyTorch


def test_in_place_cannot_upcast_an_int_tensor() -> None:
    t = ge.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired"):
        t.mul_(1.5)


# -- backward ---------------------------------------------------------------------------------


def test_backward_twice_through_saved_buffers_raises() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_backward_twice_through_nodes_that_saved_nothing_is_allowed() -> None:
    # PyTorch allows it: AddBackward0 and SumBackward0 keep no tensors, so nothing was freed.
    x = leaf([1.0, 2.0])
    y = (x + 1).sum()
    y.backward()
    y.backward()
    close(x.grad, [2.0, 2.0])
    torch = pytest.importorskip("torch")
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = (tx + 1).sum()
    ty.backward()
    ty.backward()  # PyTorch allows it too
    assert tx.grad.tolist() == [2.0, 2.0]


def test_retain_graph_allows_a_second_backward() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    close(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_non_scalar_backward_needs_a_gradient() -> None:
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar outputs"
    ):
        y.backward()
    y.backward(gradient=ge.tensor([1.0, 0.5, -1.0], dtype=ge.float64))
    close(x.grad, [2.0, 2.0, -6.0])


def test_gradient_must_match_the_output_shape() -> None:
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(ge.ones(2, dtype=ge.float64))


def test_backward_on_a_tensor_that_needs_no_grad() -> None:
    t = ge.tensor([1.0, 2.0]).sum()
    with pytest.raises(
        RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"
    ):
        t.backward()


def test_backward_of_a_leaf_itself() -> None:
    x = leaf(3.0)
    x.backward()
    close(x.grad, 1.0)


def test_module_level_backward_with_several_roots() -> None:
    x = leaf([1.0, 2.0])
    ge.backward([(x * x).sum(), (3 * x).sum()])
    close(x.grad, [5.0, 7.0])


def test_backward_with_one_root_twice_sums_both() -> None:
    # torch.autograd.backward([l, l]) gives 2 dl/dx; so does a root reached from another root
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    ge.backward([loss, loss])
    close(x.grad, [4.0, 8.0])
    w = leaf([2.0])
    y = w * 3
    ge.backward([(y * y).sum(), y.sum()])
    close(w.grad, [39.0])


def test_backward_inputs_limits_accumulation() -> None:
    x, w = leaf([1.0]), leaf([2.0])
    (x * w).sum().backward(inputs=[w])
    close(w.grad, [1.0])
    assert x.grad is None


# -- ge.grad ----------------------------------------------------------------------------------


def test_grad_returns_gradients_without_touching_dot_grad() -> None:
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    gx, gw = ge.grad((x * w).sum(), [x, w])
    close(gx, [3.0, -1.0])
    close(gw, [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_grad_with_respect_to_a_non_leaf() -> None:
    x = leaf([1.0, 2.0])
    a = x * 2
    (ga,) = ge.grad((a * a).sum(), a)
    close(ga, [4.0, 8.0])  # 2a
    assert x.grad is None


def test_grad_with_grad_outputs() -> None:
    x = leaf([1.0, 2.0])
    (g,) = ge.grad(x * x, x, grad_outputs=ge.tensor([10.0, 1.0], dtype=ge.float64))
    close(g, [20.0, 4.0])


def test_higher_order_derivatives_of_x_cubed() -> None:
    x = leaf(2.0)
    y = x**3
    (d1,) = ge.grad(y, x, create_graph=True)
    close(d1, 12.0)  # 3x^2
    assert d1.requires_grad
    (d2,) = ge.grad(d1, x, create_graph=True)
    close(d2, 12.0)  # 6x
    (d3,) = ge.grad(d2, x)
    close(d3, 6.0)
    assert x.grad is None


def test_higher_order_through_backward_create_graph() -> None:
    x = leaf([1.0, 2.0])
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    close(g, [3.0, 12.0])
    x.grad = None
    g.sum().backward()
    close(x.grad, [6.0, 12.0])


def test_create_graph_through_relu_records_the_grad_as_pytorch() -> None:
    # PyTorch 2.13: w.grad is a copy (CopyBackwards) of relu's ThresholdBackwardBackward0, so it
    # requires grad even though relu's second derivative is zero, and a second backward runs.
    w = leaf([1.0, -2.0, 3.0])
    w.relu().sum().backward(create_graph=True)
    g = w.grad
    assert g.requires_grad and g.grad_fn.name() == "torch::autograd::CopyBackwards"
    assert [n and n.name() for n, _ in g.grad_fn.next_functions] == [
        None,
        "ThresholdBackwardBackward0",
    ]
    assert "grad_fn=<CopyBackwards>" in repr(g) and repr(g.grad_fn).startswith("<CopyBackwards ")
    g.sum().backward()  # adds relu'' = 0 in place: the same tensor, its grad_fn kept
    assert w.grad is g and g.grad_fn is not None
    close(w.grad, [1.0, 0.0, 1.0])


def test_a_second_backward_without_create_graph_adds_in_place() -> None:
    x = leaf([1.0, 2.0])
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    (x * 1).sum().backward()
    assert x.grad is g and g.grad_fn is not None  # PyTorch: in place, grad_fn kept
    close(g, [4.0, 13.0])


def test_mixed_second_derivative() -> None:
    x, y = leaf(1.5), leaf(-2.0)
    f = x * x * y + y.exp()
    (fx,) = ge.grad(f, x, create_graph=True)  # 2xy
    (fxy,) = ge.grad(fx, y)
    close(fxy, 3.0)  # 2x


def test_grad_errors() -> None:
    x, unused = leaf([1.0]), leaf([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        ge.grad((x * 2).sum(), ge.ones(1))
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        ge.grad((x * 2).sum(), [x, unused])
    gx, gu = ge.grad((x * 2).sum(), [x, unused], allow_unused=True)
    close(gx, [2.0])
    assert gu is None


def test_grad_frees_the_graph_unless_retained() -> None:
    x = leaf([1.0])
    y = (x * x).sum()
    ge.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        ge.grad(y, x)
    z = (x * x).sum()
    ge.grad(z, x, retain_graph=True)
    close(ge.grad(z, x)[0], [2.0])


# -- hooks ------------------------------------------------------------------------------------


def test_hook_on_a_leaf_sees_and_replaces_the_grad() -> None:
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10)
    (x * x).sum().backward()
    np.testing.assert_allclose(seen[0], [2.0, 4.0])
    close(x.grad, [20.0, 40.0])


def test_hook_on_a_non_leaf_changes_what_flows_on() -> None:
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []

    def hook(g: ge.Tensor) -> ge.Tensor:
        seen.append(g.numpy().copy())
        return g * 0.5

    y.register_hook(hook)
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], [6.0, 12.0])  # 2y
    close(x.grad, [9.0, 18.0])  # 3 * 0.5 * 2y


def test_hook_remove() -> None:
    x = leaf([1.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2).sum().backward()
    handle.remove()
    (x * 2).sum().backward()
    assert calls == [1]
    close(x.grad, [4.0])


def test_hook_needs_requires_grad() -> None:
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ge.ones(2).register_hook(lambda g: g)


# -- detach, requires_grad_ and what is in the graph -----------------------------------------


def test_detach_cuts_the_graph_and_shares_storage() -> None:
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    (x * d).sum().backward()  # only the x factor is differentiated
    close(x.grad, [1.0, 2.0])
    with ge.no_grad():
        x.mul_(3)
    close(d, [3.0, 6.0])  # same data


def test_requires_grad_flag_rules() -> None:
    x = leaf([1.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        y.requires_grad_(False)
    assert y.requires_grad_(True) is y  # allowed, as in PyTorch
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        ge.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        ge.tensor([1, 2], requires_grad=True)
    t = ge.ones(2)
    assert t.requires_grad_() is t and t.requires_grad and t.is_leaf


def test_tensors_without_grad_never_enter_the_graph() -> None:
    w, b = leaf([2.0]), ge.tensor([1.0], dtype=ge.float64)
    x = ge.tensor([[1.0], [2.0]], dtype=ge.float64)
    y = w * x + b
    assert y.grad_fn.name() == "AddBackward0"
    (mul, _), (nothing, _) = y.grad_fn.next_functions
    assert nothing is None  # b needs no grad: no node
    assert mul.name() == "MulBackward0"
    (acc, _), (none_x, _) = mul.next_functions
    assert none_x is None
    assert acc.name() == "torch::autograd::AccumulateGrad" and acc.variable is w
    # Ops on tensors that need no grad record nothing at all.
    assert (x * b).grad_fn is None and not (x * b).requires_grad


def test_a_leaf_has_one_accumulate_grad_shared_by_graphs() -> None:
    w = leaf([1.0])
    a, b = w * 2, w * 3
    assert a.grad_fn.next_functions[0][0] is b.grad_fn.next_functions[0][0]


def test_grad_fn_names_of_the_basic_ops() -> None:
    x = leaf([1.0, 2.0])
    names = {
        "AddBackward0": x + x,
        "SubBackward0": x - 1,
        "RsubBackward1": 1 - x,
        "MulBackward0": 2 * x,
        "DivBackward0": x / 2,
        "PowBackward0": x**2,
        "PowBackward1": x**x,
        "PowBackward2": 2**x,
        "NegBackward0": -x,
        "MeanBackward0": x.mean(),
        "SumBackward0": x.sum(),
        "SumBackward1": x.sum(0),
        "DotBackward0": x @ x,
        "ExpBackward0": x.exp(),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name


# -- control flow -----------------------------------------------------------------------------


def test_python_control_flow_builds_the_graph_taken() -> None:
    def f(x: ge.Tensor) -> ge.Tensor:
        if x.sum() > 0:
            return (x * x).sum()
        return (x * 3).sum()

    pos, neg = leaf([1.0, 2.0]), leaf([-1.0, -2.0])
    f(pos).backward()
    f(neg).backward()
    close(pos.grad, [2.0, 4.0])
    close(neg.grad, [3.0, 3.0])


def test_loops_unroll_into_the_graph() -> None:
    x = leaf([2.0])
    y = x
    for _ in range(3):
        y = y * x
    y.sum().backward()
    close(x.grad, [32.0])  # d/dx x^4 = 4x^3


def test_a_deep_graph_does_not_hit_the_recursion_limit() -> None:
    x = leaf([1.0])
    y = x
    for _ in range(5000):
        y = y + 0.0
    y.sum().backward()
    close(x.grad, [1.0])


def test_a_tensor_used_twice_sums_both_paths() -> None:
    x = leaf([3.0])
    a = x * 2
    y = a * a + a  # dy/da = 2a + 1 = 13, dy/dx = 26
    y.sum().backward()
    close(x.grad, [26.0])


# -- errors for bad input ---------------------------------------------------------------------


def test_unknown_op_via_call_op() -> None:
    with pytest.raises(ValueError, match="unknown op 'frobnicate'"):
        ge.call_op("frobnicate", ge.ones(1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        ge.call_op("add", ge.ones(1), ge.ones(1), foo=1)
    close(ge.call_op("add", ge.ones(2), ge.ones(2), alpha=3), [4.0, 4.0])


def _torch_adapter() -> Any:
    import torch

    class T:
        tensor = torch.tensor
        ones = torch.ones
        float64 = torch.float64
        long = torch.long
        functional = torch.nn.functional
        grad = torch.autograd.grad
        cat, stack, where = torch.cat, torch.stack, torch.where

    return T


# (id, program over a module `m` offering tensor/ones/..., exception, phrase in gradd's message,
#  whether PyTorch's message carries the same phrase)
# fmt: off
ERRORS: list[tuple[str, Callable[[Any], Any], type, str, bool]] = [
    ("broadcast", lambda m: m.ones(3) + m.ones(4), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0",
     True),
    ("broadcast2d", lambda m: m.ones(2, 3) * m.ones(4, 3), RuntimeError,
     "size of tensor a (2) must match the size of tensor b (4)", True),
    ("mm", lambda m: m.ones(2, 3) @ m.ones(4, 5), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", True),
    ("dot", lambda m: m.ones(3) @ m.ones(4), RuntimeError,
     "expected tensor [3] and src [4] to have the same number of elements", True),
    ("mv", lambda m: m.ones(2, 3) @ m.ones(4), RuntimeError, "2x3", True),
    ("bmm", lambda m: m.ones(2, 2, 3) @ m.ones(2, 4, 5), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor", True),
    ("matmul0d", lambda m: m.ones(3) @ m.tensor(2.0), RuntimeError,
     "both arguments to matmul need to be at least 1D, but they are 1D and 0D", True),
    ("requires_grad_int", lambda m: m.tensor([1, 2], requires_grad=True), RuntimeError,
     "Tensors of floating point", True),
    ("requires_grad_int_", lambda m: m.tensor([1, 2]).requires_grad_(), RuntimeError,
     "only Tensors of floating point dtype can require gradients", True),
    ("inplace_cast", lambda m: m.ones(3, dtype=m.long).add_(1.5), RuntimeError,
     "result type Float can't be cast to the desired output type Long", True),
    ("mean_int", lambda m: m.tensor([1, 2]).mean(), RuntimeError,
     "mean(): could not infer output dtype", True),
    ("index", lambda m: m.ones(3)[5], IndexError,
     "index 5 is out of bounds for dimension 0 with size 3", True),
    ("dim", lambda m: m.ones(3).sum(dim=2), IndexError,
     "Dimension out of range (expected to be in range of [-1, 0], but got 2)", True),
    ("reshape", lambda m: m.ones(2, 3).reshape(4), RuntimeError,
     "shape '[4]' is invalid for input of size 6", True),
    ("cat", lambda m: m.cat([m.ones(2, 3), m.ones(2, 4)]), RuntimeError,
     "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4", True),
    ("stack", lambda m: m.stack([m.ones(2), m.ones(3)]), RuntimeError,
     "stack expects each tensor to be equal size, but got [2] at entry 0 and [3] at entry 1",
     True),
    ("expand", lambda m: m.ones(3).expand(4, 2), RuntimeError,
     "The expanded size of the tensor (2) must match the existing size (3)", True),
    ("t3d", lambda m: m.ones(2, 3, 4).t(), RuntimeError,
     "t() expects a tensor with <= 2 dimensions, but self is 3D", True),
    ("where_cond", lambda m: m.where(m.tensor([1, 0]), m.ones(2), m.ones(2)), RuntimeError,
     "where expected condition to be a boolean tensor", True),
    ("nll_target_dtype", lambda m: m.functional.nll_loss(m.ones(2, 3), m.tensor([0.0, 1.0])),
     RuntimeError, "Float", True),
    ("nll_target_oob", lambda m: m.functional.nll_loss(m.ones(2, 3), m.tensor([0, 5])),
     IndexError, "Target 5 is out of bounds", True),
    ("nll_batch", lambda m: m.functional.nll_loss(m.ones(2, 3), m.tensor([0, 1, 2])),
     ValueError, "Expected input batch_size (2) to match target batch_size (3)", True),
    ("reduction", lambda m: m.functional.mse_loss(m.ones(2), m.ones(2), reduction="avg"),
     ValueError, "avg is not a valid value for reduction", True),
    ("dropout_p", lambda m: m.functional.dropout(m.ones(2), p=1.5), ValueError,
     "dropout probability has to be between 0 and 1, but got 1.5", True),
    ("float_index", lambda m: m.ones(3)[m.tensor([0.0])], IndexError,
     "tensors used as indices must be long, int, byte or bool tensors", True),
    ("bool_ambiguous", lambda m: bool(m.ones(2)), RuntimeError,
     "Boolean value of Tensor with more than one value is ambiguous", True),
    ("item", lambda m: m.ones(2).item(), RuntimeError,
     "a Tensor with 2 elements cannot be converted to Scalar", True),
    ("numpy_requires_grad", lambda m: m.ones(2, requires_grad=True).numpy(), RuntimeError,
     "Can't call numpy() on Tensor that requires grad", True),
    ("device", lambda m: m.ones(2, device="tpu"), RuntimeError,
     "device type at start of device string: tpu", True),
    ("operand_type", lambda m: m.ones(2) * "a", TypeError, "", False),
    ("unknown_kwarg", lambda m: m.ones(2).sum(foo=1), TypeError, "foo", True),
]
# fmt: on


# Errors a GPU does not raise at the call: checking there would wait for the device each step.
ON_CPU_ONLY = {
    "nll_target_oob": "a GPU does not check targets synchronously (PyTorch's CUDA kernel asserts "
    "later; gradd's loss is NaN)"
}


@pytest.mark.parametrize(
    ("program", "exc", "phrase"),
    [
        pytest.param(p, e, s, id=n, marks=[pytest.mark.cpu_only(ON_CPU_ONLY[n])])
        if n in ON_CPU_ONLY
        else pytest.param(p, e, s, id=n)
        for n, p, e, s, _ in ERRORS
    ],
)
def test_errors_for_bad_input(program: Callable, exc: type, phrase: str) -> None:
    with pytest.raises(exc) as err:
        program(ge)
    assert phrase in str(err.value)


@pytest.mark.parametrize(
    ("program", "exc", "phrase", "same"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_are_pytorchs(program: Callable, exc: type, phrase: str, same: bool) -> None:
    pytest.importorskip("torch")
    with pytest.raises(exc) as err:
        program(_torch_adapter())
    if same:
        assert phrase.lower() in str(err.value).lower()


# The key phrases of autograd's own errors, checked against PyTorch's messages.
# fmt: off
AUTOGRAD_ERRORS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("leaf_inplace", lambda m: m.ones(2, requires_grad=True).add_(1),
     "a leaf Variable that requires grad is being used in an in-place operation."),
    ("non_scalar", lambda m: (m.ones(2, requires_grad=True) * 2).backward(),
     "grad can be implicitly created only for scalar outputs"),
    ("no_grad_fn", lambda m: m.ones(2).sum().backward(),
     "element 0 of tensors does not require grad and does not have a grad_fn"),
    ("non_leaf_flag", lambda m: (m.ones(2, requires_grad=True) * 2).requires_grad_(False),
     "you can only change requires_grad flags of leaf variables"),
]
# fmt: on


def _backward_twice(m: Any) -> None:
    y = (m.ones(2, requires_grad=True) * m.ones(2, requires_grad=True)).sum()
    y.backward()
    y.backward()


def _saved_modified(m: Any) -> None:
    a = m.ones(2, requires_grad=True) * 2
    z = (a * a).sum()
    a.add_(1)
    z.backward()


AUTOGRAD_ERRORS += [
    ("backward_twice", _backward_twice, "Trying to backward through the graph a second time"),
    (
        "saved_modified",
        _saved_modified,
        "one of the variables needed for gradient computation has been modified by an inplace "
        "operation",
    ),
]


@pytest.mark.parametrize(
    ("program", "phrase"), [e[1:] for e in AUTOGRAD_ERRORS], ids=[e[0] for e in AUTOGRAD_ERRORS]
)
def test_autograd_errors_carry_pytorchs_key_phrase(program: Callable, phrase: str) -> None:
    with pytest.raises(RuntimeError) as err:  # what a PyTorch user catches
        program(ge)
    assert phrase in str(err.value)
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as terr:
        program(torch)
    assert phrase in str(terr.value)


@pytest.mark.parametrize(
    "program",
    [e[1] for e in AUTOGRAD_ERRORS if e[0] != "non_leaf_flag"],
    ids=[e[0] for e in AUTOGRAD_ERRORS if e[0] != "non_leaf_flag"],
)
def test_broken_autograd_rules_raise_autograd_error(program: Callable) -> None:
    # The server tells a broken rule (FAILED_PRECONDITION) from a bad argument by this class.
    with pytest.raises(ge.AutogradError):
        program(ge)


def test_a_zero_dim_leaf_broadcast_over_a_vector_gets_a_zero_dim_grad() -> None:
    x = leaf(2.0)
    (x * ge.ones(3, dtype=ge.float64)).sum().backward()
    assert x.grad.shape == () and x.grad.numpy().shape == ()
    close(x.grad, 3.0)


def test_contiguous_returns_a_contiguous_tensor_itself() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    assert x.contiguous() is x  # as torch: no copy, no node
    y = x.t().contiguous()
    assert y.grad_fn.name() == "CloneBackward0" and y._data.flags.c_contiguous
    (y * ge.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=ge.float64)).sum().backward()
    close(x.grad, [[1.0, 3.0], [2.0, 4.0]])


def chain(t: ge.Tensor) -> list[str]:
    """grad_fn names along the first input, down to the leaf."""
    names, fn = [], t.grad_fn
    while fn is not None and not hasattr(fn, "variable"):
        names.append(fn.name())
        fn = fn.next_functions[0][0]
    return names


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ((slice(None),), ["AliasBackward0"]),  # t[:,] spans the dim: torch 2.13 aliases
        (slice(None), ["SliceBackward0"]),  # t[:] alone is always a slice
        ((slice(None), slice(None)), ["AliasBackward0"]),
        (Ellipsis, ["AliasBackward0"]),
        ((slice(-4, None), 0), ["SelectBackward0", "SliceBackward0"]),
        ((slice(0, 100), 0), ["SelectBackward0"]),
        ((None, Ellipsis, 1), ["SelectBackward0", "UnsqueezeBackward0"]),
        (([0, 0], slice(None)), ["IndexBackward0"]),
        ((1, slice(1, None)), ["SliceBackward0", "SelectBackward0"]),
    ],
)
def test_indexing_records_torchs_nodes(key: Any, names: list[str]) -> None:
    x = leaf(np.arange(12.0).reshape(4, 3))
    y = x[key]
    assert y is not x and chain(y) == names
    np.testing.assert_array_equal(y.detach().numpy(), np.arange(12.0).reshape(4, 3)[key])
