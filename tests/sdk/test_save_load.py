"""``s.save`` / ``s.load``: safetensors that PyTorch reads and writes, non-tensor structure as
JSON in the file's metadata, never pickle; embedded and from a server."""

from __future__ import annotations

import json
from pathlib import Path

import gradd
import numpy as np
import pytest

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")


def _model(nn: object) -> object:
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))


def test_torch_loads_what_gradd_saves(session: gradd.Session, tmp_path: Path) -> None:
    ours = _model(session.nn)
    path = tmp_path / "m.safetensors"
    assert session.save(ours.state_dict(), path) is None
    theirs = _model(torch.nn)
    loaded = st_torch.load_file(path)
    assert sorted(loaded) == sorted(ours.state_dict())  # safetensors orders keys its own way
    assert repr(theirs.load_state_dict(loaded)) == "<All keys matched successfully>"
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(theirs.state_dict()[key].numpy(), value.numpy())
    assert loaded["1.num_batches_tracked"].dtype == torch.int64
    with open(path, "rb") as f:  # a plain state_dict carries no gradd structure
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert "gradd.structure" not in header.get("__metadata__", {})


def test_gradd_loads_what_torch_saves(session: gradd.Session, tmp_path: Path) -> None:
    theirs = _model(torch.nn)
    path = tmp_path / "t.safetensors"
    st_torch.save_file(theirs.state_dict(), path)
    state = session.load(path)
    assert all(isinstance(v, gradd.Tensor) for v in state.values())
    ours = _model(session.nn)
    assert repr(ours.load_state_dict(state)) == "<All keys matched successfully>"
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours[0](session.tensor(x)).detach().numpy(),
        theirs[0](torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy())


def test_nested_structure_round_trips(session: gradd.Session, tmp_path: Path) -> None:
    state = {
        "state": {0: {"step": 3, "exp_avg": session.ones(2, 2)}, 1: {"step": 3.5}},
        "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0, 1], "name": None}],
        "flag": True,
    }
    path = tmp_path / "opt.safetensors"
    session.save(state, path, metadata={"epoch": "4"})
    back = session.load(path)
    assert back["param_groups"] == state["param_groups"] and back["flag"] is True
    assert back["state"][1] == {"step": 3.5} and back["state"][0]["step"] == 3
    assert back["state"][0]["exp_avg"].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    tensors = st_torch.load_file(path)  # torch sees the tensors under their dotted paths
    assert list(tensors) == ["state.0.exp_avg"]
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert header["__metadata__"]["epoch"] == "4"


def test_dtypes_survive_both_ways(session: gradd.Session, tmp_path: Path) -> None:
    values = {
        "f16": session.tensor([1.5, -2.0], dtype=session.float16),
        "f64": session.tensor([1e-300], dtype=session.float64),
        "i32": session.tensor([7], dtype=session.int32),
        "u8": session.tensor([255], dtype=session.uint8),
        "b": session.tensor([True, False]),
        "scalar": session.tensor(3.0),
    }
    path = tmp_path / "d.safetensors"
    session.save(values, path)
    loaded = st_torch.load_file(path)
    for key, t in values.items():
        assert loaded[key].tolist() == t.tolist() and str(loaded[key].dtype) == str(t.dtype)
    back = session.load(path)
    assert {k: (v.dtype, v.tolist()) for k, v in back.items()} == {
        k: (v.dtype, v.tolist()) for k, v in values.items()
    }


def test_what_cannot_be_saved_is_refused(session: gradd.Session, tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="not object"):
        session.save({"a": object()}, path)
    with pytest.raises(TypeError, match="dict keys that are str or int"):
        session.save({(1, 2): session.ones(1)}, path)
    with pytest.raises(ValueError, match="two tensors would be saved under the key 'a.b'"):
        session.save({"a.b": session.ones(1), "a": {"b": session.ones(1)}}, path)
    assert not path.exists()


def test_a_tampered_structure_is_an_error_not_code(session: gradd.Session, tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    st_torch.save_file(
        {"w": torch.ones(1)}, path, metadata={"gradd.structure": '{"eval": "__import__"}'}
    )
    with pytest.raises(ValueError, match="gradd does not know"):
        session.load(path)


def test_remote_save_fetches_all_tensors_in_one_round_trip(
    remote: gradd.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(remote.nn)
    remote.synchronize()
    stream = remote._stream
    batches: list[int] = []
    real = stream.wait_for

    def counting(seq: int) -> object:
        batches.append(seq)
        return real(seq)

    monkeypatch.setattr(stream, "wait_for", counting)
    remote.save(model.state_dict(), tmp_path / "r.safetensors")
    assert len(batches) == 1  # nine tensors, one wait
    assert len(st_torch.load_file(tmp_path / "r.safetensors")) == 9


def test_an_optimizer_state_round_trips_and_training_resumes(
    session: gradd.Session, tmp_path: Path
) -> None:
    """Adam's state_dict (its ``step`` a 0-d CPU float32 tensor, also beside a server's
    tensors) saved, loaded into a fresh optimizer: the next steps are the uninterrupted ones."""
    session.manual_seed(0)
    model = _model(session.nn)
    opt = session.optim.Adam(model.parameters(), lr=0.01)
    x = session.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))

    def train(opt: object, steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()

    train(opt, 3)
    path = tmp_path / "adam.safetensors"
    session.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
    tensors = st_torch.load_file(path)  # PyTorch reads the tensors, step counts included
    assert tensors["opt.state.0.step"].dtype == torch.float32
    assert tensors["opt.state.0.step"].shape == () and float(tensors["opt.state.0.step"]) == 3.0
    train(opt, 2)
    want = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    back = session.load(path)
    assert repr(model.load_state_dict(back["model"])) == "<All keys matched successfully>"
    resumed = session.optim.Adam(model.parameters(), lr=0.5)
    resumed.load_state_dict(back["opt"])
    assert resumed.param_groups[0]["lr"] == 0.01
    assert float(resumed.state_dict()["state"][0]["step"]) == 3.0
    train(resumed, 2)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), want[key], err_msg=key)
