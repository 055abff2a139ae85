"""Each ``s.nn`` layer's forward and gradients against ``torch.nn``'s, weights shared through
the state_dict, embedded and on a server. Layers over functional ops that are not in the op
table yet are skipped, naming the op, until it lands."""

from __future__ import annotations

import gradd
import numpy as np
import pytest
from gradd.engine.op_table import OP_TABLE

torch = pytest.importorskip("torch")


def needs(*ops: str) -> pytest.MarkDecorator:
    missing = [op for op in ops if op not in OP_TABLE]
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not in op table yet")


def _input(shape: tuple, kind: str = "float") -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + len(shape))
    if kind == "index":
        return rng.integers(0, 10, shape)
    if kind == "prob":
        return rng.uniform(0.05, 0.95, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _check(session: gradd.Session, build, inputs: list[np.ndarray], train: bool = True) -> None:
    """Same weights, same inputs: same outputs and same gradients (inputs and weights)."""
    ours, theirs = build(session.nn), build(torch.nn)
    state = {k: session.tensor(v.numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)
    ours.train(train), theirs.train(train)
    floats = [a.dtype.kind == "f" for a in inputs]
    xs = [session.tensor(a, requires_grad=f) for a, f in zip(inputs, floats, strict=True)]
    rs = [torch.tensor(a, requires_grad=f) for a, f in zip(inputs, floats, strict=True)]
    out, ref = ours(*xs), theirs(*rs)
    out, ref = (out[0], ref[0]) if isinstance(ref, tuple) else (out, ref)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    if not ref.requires_grad:
        return
    weights = np.random.default_rng(1).standard_normal(tuple(ref.shape)).astype(np.float32)
    (out * session.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for x, r in zip(xs, rs, strict=True):
        if r.grad is not None:
            np.testing.assert_allclose(x.grad.numpy(), r.grad.numpy(), rtol=1e-4, atol=1e-5)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if grads[name].grad is not None:
            np.testing.assert_allclose(
                p.grad.numpy(), grads[name].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name
            )


TODAY = {
    "linear": (lambda nn: nn.Linear(5, 3), [(4, 5)]),
    "linear_3d": (lambda nn: nn.Linear(5, 3, bias=False), [(2, 4, 5)]),
    "bilinear": (lambda nn: nn.Bilinear(3, 4, 2), [(5, 3), (5, 4)]),
    "flatten": (lambda nn: nn.Flatten(), [(2, 3, 4)]),
    "unflatten": (lambda nn: nn.Unflatten(1, (2, 3)), [(4, 6)]),
    "identity": (lambda nn: nn.Identity(54, unused=1), [(3,)]),
    "dropout_eval": (lambda nn: nn.Dropout(0.3), [(4, 4)]),
    "mlp": (
        lambda nn: nn.Sequential(nn.Linear(4, 8), nn.GELU("tanh"), nn.Linear(8, 2), nn.Tanh()),
        [(6, 4)],
    ),
    "mha_weights": (lambda nn: nn.MultiheadAttention(8, 2), [(5, 3, 8)] * 3),
    "mha_batch_first": (
        lambda nn: nn.MultiheadAttention(8, 4, batch_first=True, kdim=6, vdim=5),
        [(2, 3, 8), (2, 4, 6), (2, 4, 5)],
    ),
}
ACTIVATIONS = {
    "ReLU": (), "GELU": (), "SiLU": (), "Tanh": (), "Sigmoid": (), "LeakyReLU": (0.2,),
    "ELU": (0.7,), "Softmax": (1,), "LogSoftmax": (-1,), "CELU": (), "SELU": (), "Mish": (),
    "Hardtanh": (-0.5, 0.5), "ReLU6": (), "Hardsigmoid": (), "Hardswish": (), "LogSigmoid": (),
    "Softplus": (2.0, 5.0), "Threshold": (0.1, -1.0),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TODAY))
def test_layer_forward_and_backward(session: gradd.Session, name: str) -> None:
    build, shapes = TODAY[name]
    _check(session, build, [_input(s) for s in shapes], train=not name.endswith("eval"))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_backward_and_repr(session: gradd.Session, name: str) -> None:
    args = ACTIVATIONS[name]
    _check(session, lambda nn: getattr(nn, name)(*args), [_input((3, 5))])
    assert repr(getattr(session.nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_inplace_activation_writes_its_input(session: gradd.Session) -> None:
    x = session.tensor([-1.0, 2.0])
    assert session.nn.ReLU(inplace=True)(x) is x and x.tolist() == [0.0, 2.0]
    assert repr(session.nn.ReLU(True)) == repr(torch.nn.ReLU(True))


LOSSES = {
    "MSELoss": ((), "float"),
    "L1Loss": ((), "float"),
    "SmoothL1Loss": ((), "float"),
    "HuberLoss": (("sum", 0.5), "float"),
    "CrossEntropyLoss": ((), "class"),
    "NLLLoss": ((), "class"),
    "BCELoss": ((), "prob"),
    "BCEWithLogitsLoss": ((), "binary"),
    "KLDivLoss": (({"reduction": "batchmean"}), "prob"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_modules(session: gradd.Session, name: str) -> None:
    args, target_kind = LOSSES[name]
    kwargs = args if isinstance(args, dict) else {}
    args = () if isinstance(args, dict) else args
    x = _input((4, 3), "prob" if name == "BCELoss" else "float")
    if name in ("NLLLoss", "KLDivLoss"):
        x = np.log(np.abs(x) + 0.1).astype(np.float32)
    target = {
        "float": _input((4, 3)),
        "class": np.array([0, 2, 1, 2]),
        "prob": _input((4, 3), "prob"),
        "binary": (_input((4, 3)) > 0).astype(np.float32),
    }[target_kind]
    ours, theirs = (
        getattr(session.nn, name)(*args, **kwargs),
        getattr(torch.nn, name)(*args, **kwargs),
    )
    assert repr(ours) == repr(theirs)
    xs, xr = session.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours(xs, session.tensor(target)), theirs(xr, torch.tensor(target))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.backward(), ref.backward()
    np.testing.assert_allclose(xs.grad.numpy(), xr.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_weighted_losses_keep_their_weight_as_a_buffer(session: gradd.Session) -> None:
    w = np.array([1.0, 2.0, 0.5], np.float32)
    for name in ("CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss"):
        ours = getattr(session.nn, name)(weight=session.tensor(w))
        assert list(ours.state_dict()) == list(
            getattr(torch.nn, name)(torch.tensor(w)).state_dict()
        )
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        assert session.nn.MSELoss(size_average=False).reduction == "sum"


def test_dropout_draws_torchs_mask_in_training(session: gradd.Session) -> None:
    session.manual_seed(5)
    out = session.nn.Dropout(0.4)(session.ones(6, 7))
    torch.manual_seed(5)
    ref = torch.nn.Dropout(0.4)(torch.ones(6, 7))
    if session.device.type == "cpu":
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        session.nn.Dropout(1.5)


def test_layer_reprs_are_torchs(session: gradd.Session) -> None:
    for build in (
        lambda nn: nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        lambda nn: nn.Conv2d(4, 8, (3, 5), dilation=2, groups=2, padding="same"),
        lambda nn: nn.Conv1d(2, 4, 5, padding_mode="circular"),
        lambda nn: nn.MaxPool2d(2),
        lambda nn: nn.MaxPool2d((3, 2), stride=1, padding=1, ceil_mode=True),
        lambda nn: nn.AvgPool2d(3, 2),
        lambda nn: nn.AdaptiveAvgPool2d((1, 1)),
        lambda nn: nn.BatchNorm1d(4, momentum=None, affine=False),
        lambda nn: nn.BatchNorm2d(4, bias=False),
        lambda nn: nn.LayerNorm([2, 3], elementwise_affine=False),
        lambda nn: nn.GroupNorm(2, 4, bias=False),
        lambda nn: nn.Embedding(10, 3, padding_idx=0, max_norm=1.0),
        lambda nn: nn.Bilinear(2, 3, 4),
        lambda nn: nn.Unflatten(1, (2, 2)),
        lambda nn: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, activation="gelu"),
        lambda nn: nn.MultiheadAttention(8, 2, kdim=3, vdim=4),
    ):
        ours, theirs = build(session.nn), build(torch.nn)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        shapes = [tuple(v.shape) for v in ours.state_dict().values()]
        assert shapes == [tuple(v.shape) for v in theirs.state_dict().values()]


def test_layer_constructor_errors_are_torchs(session: gradd.Session) -> None:
    nn = session.nn
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


# --- layers over ops other work adds: run once the op is in the table -----------------------
PENDING = {
    "conv1d": (lambda nn: nn.Conv1d(3, 4, 3, padding=1), [(2, 3, 9)], ("conv1d",)),
    "conv2d": (lambda nn: nn.Conv2d(3, 4, 3, stride=2, padding=1), [(2, 3, 8, 8)], ("conv2d",)),
    "conv2d_groups": (lambda nn: nn.Conv2d(4, 6, 3, groups=2), [(1, 4, 5, 5)], ("conv2d",)),
    "max_pool2d": (lambda nn: nn.MaxPool2d(2), [(2, 3, 6, 6)], ("max_pool2d",)),
    "avg_pool2d": (lambda nn: nn.AvgPool2d(3, 2, 1), [(2, 3, 7, 7)], ("avg_pool2d",)),
    "adaptive": (lambda nn: nn.AdaptiveAvgPool2d(2), [(2, 3, 6, 6)], ("adaptive_avg_pool2d",)),
    "batchnorm1d": (lambda nn: nn.BatchNorm1d(5), [(4, 5)], ("batch_norm",)),
    "batchnorm2d": (lambda nn: nn.BatchNorm2d(3), [(2, 3, 4, 4)], ("batch_norm",)),
    "layernorm": (lambda nn: nn.LayerNorm(6), [(3, 6)], ("layer_norm",)),
    "groupnorm": (lambda nn: nn.GroupNorm(2, 4), [(2, 4, 3)], ("group_norm",)),
    "mha_no_weights": (
        lambda nn: _NoWeights(nn.MultiheadAttention(8, 2)),
        [(5, 3, 8)],
        ("scaled_dot_product_attention",),
    ),
    "encoder_layer": (
        lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
        [(5, 3, 8)],
        ("layer_norm", "scaled_dot_product_attention"),
    ),
}


class _NoWeights:
    """Calls attention without weights (torch's sdpa path): ``need_weights=False``."""

    def __init__(self, mha: object) -> None:
        self.mha = mha

    def __getattr__(self, name: str) -> object:
        return getattr(self.mha, name)

    def __call__(self, x: object) -> object:
        return self.mha(x, x, x, need_weights=False)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs(*PENDING[n][2])) for n in sorted(PENDING)]
)
def test_layers_over_new_ops(session: gradd.Session, name: str) -> None:
    build, shapes, _ = PENDING[name]
    _check(session, build, [_input(s) for s in shapes])


@needs("batch_norm")
def test_batchnorm_running_stats_follow_torchs(session: gradd.Session) -> None:
    ours, theirs = session.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    for step in range(3):
        x = _input((4 + step, 3))
        ours(session.tensor(x)), theirs(torch.tensor(x))
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-5)
    ours.eval(), theirs.eval()
    x = _input((2, 3))
    np.testing.assert_allclose(
        ours(session.tensor(x)).detach().numpy(),
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
    )


@needs("embedding")
def test_embedding_lookup_and_padding_gradient(session: gradd.Session) -> None:
    _check(session, lambda nn: nn.Embedding(10, 4, padding_idx=2), [_input((3, 5), "index")])
