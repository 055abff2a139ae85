"""``s.nn.init`` and default initialisation against PyTorch: after ``manual_seed`` a layer
holds torch's CPU numbers bit for bit, embedded and drawn on a server."""

from __future__ import annotations

import math

import gradd
import numpy as np
import pytest

torch = pytest.importorskip("torch")
CPU_STREAM = "PyTorch's CPU random numbers"

# (gradd constructor, torch constructor): the same architecture, built after the same seed.
LAYERS = {
    "linear": lambda nn: nn.Linear(64, 32),
    "linear_no_bias": lambda nn: nn.Linear(7, 5, bias=False),
    "bilinear": lambda nn: nn.Bilinear(3, 4, 5),
    "conv1d": lambda nn: nn.Conv1d(3, 8, 5),
    "conv2d": lambda nn: nn.Conv2d(3, 16, (3, 5), stride=2, groups=1),
    "conv2d_groups": lambda nn: nn.Conv2d(4, 8, 3, groups=2, bias=False),
    "embedding": lambda nn: nn.Embedding(10, 6),
    "embedding_padding": lambda nn: nn.Embedding(10, 6, padding_idx=-2),
    "batchnorm2d": lambda nn: nn.BatchNorm2d(5),
    "layernorm": lambda nn: nn.LayerNorm((3, 4)),
    "groupnorm": lambda nn: nn.GroupNorm(2, 6),
    "mha": lambda nn: nn.MultiheadAttention(8, 2),
    "mha_kv": lambda nn: nn.MultiheadAttention(8, 2, kdim=5, vdim=3, add_bias_kv=True),
    "encoder_layer": lambda nn: nn.TransformerEncoderLayer(8, 2, 16),
    "mlp": lambda nn: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)),
}


def _numpy(t: object) -> np.ndarray:
    return t.detach().numpy()  # type: ignore[attr-defined]


@pytest.mark.cpu_only(CPU_STREAM)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_default_init_is_torchs_bit_for_bit(session: gradd.Session, name: str) -> None:
    session.manual_seed(0)
    ours = LAYERS[name](session.nn)
    torch.manual_seed(0)
    theirs = LAYERS[name](torch.nn)
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(ref)
    for key, value in ref.items():
        assert tuple(mine[key].shape) == tuple(value.shape), key
        np.testing.assert_array_equal(_numpy(mine[key]), value.numpy(), err_msg=key)
    # the stream is where torch's is afterwards: the next draw agrees too
    np.testing.assert_array_equal(session.rand(5).numpy(), torch.rand(5).numpy())


INITS = {
    "uniform_": ((-0.3, 0.7), {}),
    "normal_": ((0.5, 2.0), {}),
    "xavier_uniform_": ((), {"gain": 1.5}),
    "xavier_normal_": ((), {}),
    "kaiming_uniform_": ((), {"a": 0.1, "mode": "fan_out", "nonlinearity": "relu"}),
    "kaiming_normal_": ((), {"nonlinearity": "leaky_relu"}),
    "trunc_normal_": ((0.0, 1.0, -2.0, 2.0), {}),
    "trunc_normal__narrow": ((0.0, 1.0, 1.5, 3.0), {}),  # torch's rejection branch
    "constant_": ((0.25,), {}),
    "ones_": ((), {}),
    "zeros_": ((), {}),
}


@pytest.mark.cpu_only(CPU_STREAM)
@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 3, 3), (40,)])
def test_init_functions_draw_torchs_numbers(session: gradd.Session, name: str, shape) -> None:
    args, kwargs = INITS[name]
    fn = name.removesuffix("_narrow")
    if len(shape) < 2 and fn.startswith(("xavier", "kaiming")):
        with pytest.raises(ValueError, match="fewer than 2 dimensions"):
            getattr(session.nn.init, fn)(session.empty(*shape), *args, **kwargs)
        return
    session.manual_seed(3)
    t = session.empty(*shape)
    assert getattr(session.nn.init, fn)(t, *args, **kwargs) is t
    torch.manual_seed(3)
    r = getattr(torch.nn.init, fn)(torch.empty(*shape), *args, **kwargs)
    if fn == "trunc_normal_":  # erfinv-free, but log() may differ by an ulp from torch's
        np.testing.assert_allclose(t.numpy(), r.numpy(), rtol=1e-6)
    else:
        np.testing.assert_array_equal(t.numpy(), r.numpy())


def test_init_on_a_parameter_needs_no_grad_and_keeps_it_a_leaf(session: gradd.Session) -> None:
    p = session.nn.Parameter(session.empty(3, 4))
    session.nn.init.kaiming_uniform_(p, a=math.sqrt(5))
    assert p.requires_grad and p.grad_fn is None and p.is_leaf
    bound = 1 / math.sqrt(4)
    assert np.all(np.abs(p.detach().numpy()) <= bound)


def test_calculate_gain_is_torchs(session: gradd.Session) -> None:
    gain = session.nn.init.calculate_gain
    for args in [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("selu",)]:
        assert gain(*args) == torch.nn.init.calculate_gain(*args)
    for slope in (None, 0.2, 3):
        assert gain("leaky_relu", slope) == torch.nn.init.calculate_gain("leaky_relu", slope)
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        gain("foo")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        gain("leaky_relu", True)


def test_init_errors_are_torchs(session: gradd.Session) -> None:
    init = session.nn.init
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(session.empty(3, 3), mode="fan_avg")
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_normal_(session.empty(0, 3))
    with pytest.raises(RuntimeError, match=r"uniform_ expects to return a \[from, to\) range"):
        init.uniform_(session.empty(3), 1.0, 0.0)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std -1"):
        init.normal_(session.empty(3), 0.0, -1.0)
    with pytest.raises(NotImplementedError, match="check_uniform_bounds"):
        init.uniform_(session.zeros(3, dtype=session.int64))


def test_inplace_draws_without_no_grad_are_refused_on_a_leaf(session: gradd.Session) -> None:
    p = session.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        p.uniform_()
    y = p * 1
    y.normal_()  # a non-leaf: recorded, and no gradient flows through the draw
    assert y.grad_fn.name() == "NormalBackward0"
    y.sum().backward()
    assert p.grad.tolist() == [0.0, 0.0, 0.0]


def test_draws_follow_the_session_stream_on_any_device(session: gradd.Session) -> None:
    session.manual_seed(11)
    a = session.nn.Linear(6, 4).weight.detach().numpy()
    session.manual_seed(11)
    b = session.nn.Linear(6, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(a) <= 1 / math.sqrt(6))


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [
        ("float32", 0.0, math.inf),
        ("float32", math.nan, 1.0),
        ("float32", -3e38, 3e38),
        ("float64", 0.0, math.nan),
        ("float16", 0.0, 1e6),
        ("float16", -6e4, 6e4),
        ("float32", 2.0, -2.0),
    ],
)
def test_uniform_bounds_errors_are_torchs(
    session: gradd.Session, dtype: str, low: float, high: float
) -> None:
    with pytest.raises(RuntimeError) as ref:
        torch.empty(3, dtype=getattr(torch, dtype)).uniform_(low, high)
    with pytest.raises(RuntimeError) as mine:
        session.empty(3, dtype=getattr(session, dtype)).uniform_(low, high)
    assert str(mine.value) == str(ref.value)


def test_normal_with_infinite_or_nan_parameters(session: gradd.Session) -> None:
    inf = session.empty(40).normal_(0.0, math.inf).numpy()
    assert np.all(np.isinf(inf))
    assert np.all(np.isnan(session.empty(4).normal_(math.nan, 1.0).numpy()))
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std nan"):
        session.empty(3).normal_(0.0, math.nan)


@pytest.mark.cpu_only(CPU_STREAM)
def test_gradd_torch_tensor_methods_follow_torch_manual_seed() -> None:
    """gradd.torch's default embedded session draws from the process stream, as torch does,
    so a tensor's own uniform_() follows torch.manual_seed."""
    import gradd.torch as gt

    with gt.use(None):
        gt.manual_seed(7)
        ours = gt.empty(3, 4).uniform_(-1, 1)
        layer = gt.nn.Linear(4, 2)
        torch.manual_seed(7)
        ref = torch.empty(3, 4).uniform_(-1, 1)
        ref_layer = torch.nn.Linear(4, 2)
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
        np.testing.assert_array_equal(
            layer.weight.detach().numpy(), ref_layer.weight.detach().numpy()
        )
