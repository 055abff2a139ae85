"""``s.nn.Module`` against ``torch.nn.Module``: registration, traversal, state_dicts and their
errors, modes, bulk changes, containers and reprs, embedded and on a server."""

from __future__ import annotations

from collections import OrderedDict

import gradd
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _net(nn: object) -> object:
    """One architecture in either library: nested containers, a buffer, an unused None."""

    class Net(nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25))
            self.heads = nn.ModuleDict({"a": nn.Linear(8, 2), "b": nn.Linear(8, 3, bias=False)})
            self.norms = nn.ModuleList([nn.LayerNorm(8), nn.BatchNorm1d(8)])
            self.scale = nn.Parameter(nn.Linear(1, 1).weight.detach().reshape(()) * 0 + 2)
            self.register_buffer("steps", torch_or(nn).zeros(3))
            self.register_buffer("scratch", torch_or(nn).ones(2), persistent=False)
            self.register_parameter("unused", None)

        def forward(self, x: object) -> object:
            h = self.features(x)  # the norms' forward: tests/sdk/test_nn_layers.py
            return self.heads["a"](h) * self.scale, self.heads["b"](h)

    return Net()


_SESSIONS: dict[int, object] = {}


def torch_or(nn: object) -> object:
    """The library that owns ``nn``: torch, or the gradd session registered for it."""
    return _SESSIONS.get(id(nn), torch)


@pytest.fixture
def nets(session: gradd.Session) -> tuple[object, object]:
    _SESSIONS[id(session.nn)] = session
    return _net(session.nn), _net(torch.nn)


def test_names_and_order_are_torchs(nets: tuple) -> None:
    ours, theirs = nets
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        mine = [name for name, _ in getattr(ours, method)()]
        assert mine == [name for name, _ in getattr(theirs, method)()], method
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict(prefix="model.")) == list(theirs.state_dict(prefix="model."))
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert len(list(ours.children())) == len(list(theirs.children()))
    assert len(list(ours.buffers())) == len(list(theirs.buffers()))
    assert repr(ours) == repr(theirs)


def test_state_dict_values_and_keep_vars(session: gradd.Session, nets: tuple) -> None:
    ours, _ = nets
    detached = ours.state_dict()
    kept = ours.state_dict(keep_vars=True)
    assert kept["scale"] is ours.scale and isinstance(kept["scale"], session.nn.Parameter)
    assert not detached["scale"].requires_grad
    assert not isinstance(detached["scale"], session.nn.Parameter)
    assert detached._metadata[""] == {"version": 1}
    assert detached._metadata["norms.1"] == {"version": 2}


def _as_session(session: gradd.Session, state: dict) -> dict:
    return {k: session.tensor(v.numpy()) for k, v in state.items()}


def test_load_state_dict_from_torch_and_forward_agree(session: gradd.Session, nets: tuple) -> None:
    ours, theirs = nets
    result = ours.load_state_dict(_as_session(session, theirs.state_dict()))
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours.eval(), theirs.eval()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    mine, ref = ours(session.tensor(x)), theirs(torch.tensor(x))
    for a, b in zip(mine, ref, strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_load_state_dict_errors_are_torchs(session: gradd.Session, nets: tuple) -> None:
    ours, theirs = nets
    state = _as_session(session, theirs.state_dict())
    del state["heads.a.bias"]
    state["heads.c.weight"] = session.zeros(1)
    state["extra"] = session.zeros(1)
    reference = theirs.state_dict()
    del reference["heads.a.bias"]
    reference["heads.c.weight"] = torch.zeros(1)
    reference["extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as mine:
        ours.load_state_dict(state)
    with pytest.raises(RuntimeError) as ref:
        theirs.load_state_dict(reference)
    assert str(mine.value) == str(ref.value)
    result = ours.load_state_dict(state, strict=False)
    assert repr(result) == repr(theirs.load_state_dict(reference, strict=False))
    state = _as_session(session, theirs.state_dict())
    state["features.0.weight"] = session.zeros(2, 2)
    reference = theirs.state_dict()
    reference["features.0.weight"] = torch.zeros(2, 2)
    with pytest.raises(RuntimeError) as mine:
        ours.load_state_dict(state)
    with pytest.raises(RuntimeError) as ref:
        theirs.load_state_dict(reference)
    assert str(mine.value) == str(ref.value)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        ours.load_state_dict([1, 2])


def test_registration_rules_and_errors(session: gradd.Session) -> None:
    nn = session.nn
    m = nn.Module()
    p = nn.Parameter(session.zeros(2))
    m.w = p
    assert dict(m.named_parameters()) == {"w": p}
    with pytest.raises(
        TypeError, match=r"cannot assign 'torch(.cuda)?.FloatTensor' as parameter 'w'"
    ):
        m.w = session.zeros(2)
    m.w = None
    assert list(m.parameters()) == [] and list(m.state_dict()) == []
    m.register_buffer("b", session.zeros(1))
    with pytest.raises(KeyError, match="attribute 'b' already exists"):
        m.register_parameter("b", None)
    with pytest.raises(KeyError, match='contain "."'):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="cannot assign 'int' object to buffer 'c'"):
        m.register_buffer("c", 3)
    with pytest.raises(TypeError, match="cannot assign 'float' as buffer 'b'"):
        m.b = 1.5
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        m.add_module("child", 3)
    with pytest.raises(
        TypeError, match="cannot assign 'torch.*FloatTensor' object to parameter 'n'"
    ):
        m.register_parameter("n", nn.Parameter(session.zeros(1)) * 2)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing  # noqa: B018
    del m.b
    assert list(m.buffers()) == []
    with pytest.raises(AttributeError, match="cannot assign parameters before Module.__init__"):

        class Early(nn.Module):
            def __init__(self) -> None:
                self.w = nn.Parameter(session.zeros(1))

        Early()
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        m(session.zeros(1))


def test_parameter_is_a_leaf_tensor_with_torchs_repr(session: gradd.Session) -> None:
    t = session.tensor([1.0, 2.0])
    p = session.nn.Parameter(t)
    assert isinstance(p, session.nn.Parameter) and isinstance(p, gradd.Tensor)
    assert not isinstance(t, session.nn.Parameter)
    assert p.requires_grad and p.is_leaf and not t.requires_grad
    frozen = session.nn.Parameter(t, requires_grad=False)
    if session.device.type == "cpu":  # a GPU tensor's repr names its device
        assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
        assert repr(frozen) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0]), False))
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    with pytest.raises(RuntimeError, match="floating point"):
        session.nn.Parameter(session.tensor([1, 2]))


def test_train_eval_zero_grad_requires_grad_apply(session: gradd.Session) -> None:
    nn = session.nn
    m = nn.Sequential(nn.Linear(3, 2), nn.Dropout(), nn.Linear(2, 1))
    assert m.training and m[1].training
    assert m.eval() is m and not m[1].training
    m.train()
    assert m[1].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train("yes")
    m(session.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad.tolist() == np.zeros(tuple(p.shape)).tolist() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    seen: list[str] = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Dropout", "Linear", "Sequential"]


def test_to_dtype_converts_floating_parameters(session: gradd.Session) -> None:
    nn = session.nn
    m = nn.BatchNorm1d(3).to(session.float64)
    assert m.weight.dtype == session.float64 and isinstance(m.weight, nn.Parameter)
    assert m.running_mean.dtype == session.float64
    assert m.num_batches_tracked.dtype == session.int64
    assert m.double().float().weight.dtype == session.float32
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        m.to(session.int64)


def test_forward_hooks(session: gradd.Session) -> None:
    m = session.nn.Linear(2, 2)
    calls: list[str] = []
    pre = m.register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    m.register_forward_hook(lambda mod, args, out: out * 0)
    assert m(session.ones(1, 2)).tolist() == [[0.0, 0.0]]
    pre.remove()
    m(session.ones(1, 2))
    assert calls == ["pre"]


def test_containers_behave_as_torchs(session: gradd.Session) -> None:
    nn = session.nn
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    ref = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert repr(seq[1:]) == repr(ref[1:]) and isinstance(seq[1:], nn.Sequential)
    seq.append(nn.Sigmoid()), ref.append(torch.nn.Sigmoid())
    del seq[0], ref[0]
    assert repr(seq) == repr(ref)
    with pytest.raises(IndexError, match="index 7 is out of range"):
        seq[7]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(1, 1)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    ref_layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    assert repr(layers) == repr(ref_layers)
    layers.append(nn.Tanh())
    assert len(layers) == 5 and isinstance(layers[-1], nn.Tanh)
    d = nn.ModuleDict({"x": nn.Linear(1, 2)})
    d["y"] = nn.Identity()
    assert list(d) == ["x", "y"] and "y" in d and len(d) == 2
    assert list(d.state_dict()) == ["x.weight", "x.bias"]


def test_session_classes_are_one_class_to_isinstance(session: gradd.Session) -> None:
    other = gradd.connect()
    try:
        lin = other.nn.Linear(2, 2)
        assert isinstance(lin, session.nn.Linear) and isinstance(lin, session.nn.Module)
        assert not isinstance(lin, session.nn.ReLU)
        assert issubclass(other.nn.Linear, session.nn.Module)
    finally:
        other.close()


def test_gradd_torch_nn_is_the_session_nn() -> None:
    import gradd.torch as gt

    s = gradd.connect()
    with gt.use(s):
        assert gt.nn.Linear is s.nn.Linear and gt.nn.functional.relu is s.functional.relu
        from gradd.torch.nn import init

        assert init.zeros_ is s.nn.init.zeros_
    s.close()


def test_load_state_dict_takes_torch_tensors_and_other_sessions(session: gradd.Session) -> None:
    theirs = torch.nn.Linear(3, 2)
    ours = session.nn.Linear(3, 2)
    assert repr(ours.load_state_dict(theirs.state_dict())) == "<All keys matched successfully>"
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())
    other = gradd.connect()
    try:
        donor = other.nn.Linear(3, 2)
        ours.load_state_dict(donor.state_dict())
        np.testing.assert_array_equal(ours.bias.detach().numpy(), donor.bias.detach().numpy())
    finally:
        other.close()
    with pytest.raises(RuntimeError, match="expected torch.Tensor or Tensor-like object"):
        ours.load_state_dict({"weight": [[1.0] * 3] * 2, "bias": ours.bias})


def test_deepcopy_clones_parameters_and_keeps_ties(session: gradd.Session) -> None:
    import copy

    nn = session.nn
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3))
    model[2].weight = model[0].weight  # tied
    twin = copy.deepcopy(model)
    assert repr(twin) == repr(model) and type(twin) is type(model)
    assert isinstance(twin[0].weight, nn.Parameter) and twin[0].weight.requires_grad
    assert twin[2].weight is twin[0].weight and twin[0].weight is not model[0].weight
    before = twin.state_dict()["0.weight"].numpy().copy()
    with session.no_grad():
        model[0].weight.add_(1.0)
    np.testing.assert_array_equal(twin.state_dict()["0.weight"].numpy(), before)
    norm = copy.deepcopy(nn.BatchNorm1d(3))
    assert norm.running_var.tolist() == [1.0, 1.0, 1.0] and list(norm.state_dict())[-1] == (
        "num_batches_tracked"
    )
    twin(session.randn(4, 3)).sum().backward()
    assert twin[0].weight.grad is not None and model[0].weight.grad is None
