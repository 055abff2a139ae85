"""``import gradd.torch as torch``: PyTorch programs with only the import changed.

The article's program and a torch-style MLP (the examples are written against the session API,
so their torch-module variants are here) run in subprocesses, embedded and with GRADD_TARGET
pointing at the test server, and print what PyTorch prints. Then the module's own behaviour:
``use()``, isinstance, its AttributeErrors, ``torch.cuda``, names that follow the session.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import gradd
import gradd.engine as ge
import gradd.torch as torch
import gradd.torch.nn.functional as F
import numpy as np
import pytest
from gradd.embedded_session import EmbeddedSession
from gradd.torch import _state

from .conftest import open_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_harness import DEVICE  # noqa: E402

# The article ("Automatic Differentiation in PyTorch", named in the README) as one program: its
# data, Steps 0-4 once (with
# the failing "Attempt at Step 4"), the 200-epoch loop, and the control-flow example.
ARTICLE = """\
import numpy as np
import torch

np.random.seed(42)
x = np.random.rand(100, 1)
y = 1 + 2 * x + .1 * np.random.randn(100, 1)
idx = np.arange(100)
np.random.shuffle(idx)
train_idx = idx[:80]
x_train, y_train = x[train_idx], y[train_idx]

device = 'cuda' if torch.cuda.is_available() else 'cpu'
x_train_tensor = torch.from_numpy(x_train).float().to(device)
y_train_tensor = torch.from_numpy(y_train).float().to(device)
print(device, isinstance(x_train_tensor, torch.Tensor), x_train_tensor.dtype == torch.float32)

# Step 0 - Initializes parameters "b" and "w" randomly
torch.manual_seed(42)
b = torch.randn(1, requires_grad=True, dtype=torch.float, device=device)
w = torch.randn(1, requires_grad=True, dtype=torch.float, device=device)
print(b, w)

yhat = b + w * x_train_tensor
error = (y_train_tensor - yhat)
loss = (error ** 2).mean()
loss.backward()
print(loss)
print(b.grad, w.grad)

lr = 0.1
# Attempt at Step 4
try:
    b -= lr * b.grad
except RuntimeError as exc:
    print("RuntimeError:", exc)
b.grad.zero_(), w.grad.zero_()

torch.manual_seed(42)
b = torch.randn(1, requires_grad=True, dtype=torch.float, device=device)
w = torch.randn(1, requires_grad=True, dtype=torch.float, device=device)

for epoch in range(200):
    # Step 1 - Computes our model's predicted output - forward pass
    yhat = b + w * x_train_tensor

    # Step 2 - Computes the loss
    error = (y_train_tensor - yhat)
    loss = (error ** 2).mean()

    # Step 3 - Computes gradients for both "b" and "w" parameters
    loss.backward()

    # Step 4, for real
    with torch.no_grad():
        b -= lr * b.grad
        w -= lr * w.grad

    b.grad.zero_(), w.grad.zero_()

print(b, w)
print(repr(b.item()), repr(w.item()), repr(loss.item()))

b = torch.randn(1, requires_grad=True, dtype=torch.float, device=device)
w = torch.randn(1, requires_grad=True,dtype=torch.float, device=device)

yhat = b + w * x_train_tensor
error = y_train_tensor - yhat
loss = (error ** 2).mean()

# this makes no sense!!
if loss > 0:
    yhat2 = w * x_train_tensor
    error2 = y_train_tensor - yhat2

# neither does this :-)
loss += error2.mean()
loss.backward()
print(loss.grad_fn.name(), b.grad, w.grad)
"""

# What torch 2.13.0 (CPU) prints for ARTICLE (test_transcripts_are_pytorchs re-checks it).
ARTICLE_OUT = """\
cpu True True
tensor([0.3367], requires_grad=True) tensor([0.1288], requires_grad=True)
tensor(2.7475, grad_fn=<MeanBackward0>)
tensor([-3.1125]) tensor([-1.8156])
RuntimeError: a leaf Variable that requires grad is being used in an in-place operation.
tensor([1.0523], requires_grad=True) tensor([1.9127], requires_grad=True)
1.0522773265838623 1.9127354621887207 0.008355163969099522
AddBackward0 tensor([-3.2210]) tensor([-2.3203])
"""

# examples/digits_mlp.py's model, torch-style (torch.randn init, F.relu, F.cross_entropy), on
# the digits data the test saves to DATA (so the subprocess needs no scikit-learn).
MLP = """\
import sys

import numpy as np
import torch
import torch.nn.functional as F

data = np.load(sys.argv[1])
x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))

torch.manual_seed(0)
w1 = (torch.randn(64, 128) * (2.0 / 64) ** 0.5).requires_grad_()
b1 = torch.zeros(128, requires_grad=True)
w2 = (torch.randn(128, 10) * (2.0 / 128) ** 0.5).requires_grad_()
b2 = torch.zeros(10, requires_grad=True)
params = [w1, b1, w2, b2]


def forward(x):
    return F.relu(x @ w1 + b1) @ w2 + b2


xs, ys = torch.from_numpy(x_train), torch.from_numpy(y_train)
rng = np.random.default_rng(0)
for epoch in range(2):
    order = rng.permutation(len(x_train))
    for i in range(0, len(order) - 63, 64):
        batch = torch.tensor(order[i : i + 64])
        loss = F.cross_entropy(forward(xs[batch]), ys[batch])
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad.zero_()
    print(f"epoch {epoch} loss {loss.item()!r}")

with torch.no_grad():
    logits = forward(torch.tensor(x_test))
    correct = int((logits.argmax(dim=1) == torch.tensor(y_test)).sum().item())
print(f"accuracy {correct}/{len(y_test)}")
"""

# What torch 2.13.0 (CPU) prints for MLP.
MLP_OUT = """\
epoch 0 loss 0.6749971508979797
epoch 1 loss 0.4738083481788635
accuracy 405/450
"""

GRADD_IMPORTS = {
    "import torch\n": "import gradd.torch as torch\n",
    "import torch.nn.functional as F\n": "import gradd.torch.nn.functional as F\n",
}


def gradd_variant(program: str) -> str:
    """The program with only its imports changed."""
    for old, new in GRADD_IMPORTS.items():
        assert old in program or "functional" in old
        program = program.replace(old, new)
    return program


def run_script(path: Path, *args: str, target: str | None = None) -> str:
    """Run a script in a fresh interpreter, with GRADD_TARGET set (remote) or unset."""
    env = {k: v for k, v in os.environ.items() if k != _state.TARGET_ENV}
    if target is not None:
        env[_state.TARGET_ENV] = target
    # After the program: which session gradd.torch made (the program itself is untouched).
    runner = (
        "import runpy, sys, gradd.torch; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__'); "
        "print('SESSION', repr(gradd.torch.session()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", runner, str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def target_for(mode: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("gradd_server").addr if mode == "remote" else None


def check_session_line(out: str, mode: str, target: str | None) -> str:
    """The program's output, after checking the SESSION line the runner printed."""
    program_out, _, session = out.rpartition("SESSION ")
    if mode == "remote":
        assert f"on {target} (" in session, session
    else:
        assert "embedded" in session, session
    return program_out


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/digits_mlp.py's data (its split and standardization), saved for the scripts."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        pytest.importorskip("sklearn")
        from digits_mlp import load_data
    finally:
        sys.path.pop(0)
    x_train, x_test, y_train, y_test = load_data(0)
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def mlp_numbers(out: str) -> tuple[list[float], str]:
    losses = [float(v) for v in re.findall(r"loss (\S+)", out)]
    return losses, re.search(r"accuracy \S+", out).group(0)


# --- programs with only the import changed ----------------------------------------------------


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_article_program(mode: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    script = tmp_path / "article.py"
    script.write_text(gradd_variant(ARTICLE))
    target = target_for(mode, request)
    assert check_session_line(run_script(script, target=target), mode, target) == ARTICLE_OUT


@pytest.mark.skipif(DEVICE == "cpu", reason="needs a cuda server (make test-cuda-standin)")
@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_article_program_on_a_gpu(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Where the server (or, embedded, this machine) has a GPU, the article's own
    ``device = 'cuda' if torch.cuda.is_available() else 'cpu'`` picks it and trains there (a
    GPU draws other random numbers than PyTorch's CPU: the fit is checked, not the digits)."""
    script = tmp_path / "article.py"
    script.write_text(gradd_variant(ARTICLE))
    target = target_for(mode, request)
    lines = check_session_line(run_script(script, target=target), mode, target).splitlines()
    assert lines[0] == "cuda True True"
    b, w, loss = (float(v) for v in lines[6].split())
    assert abs(b - 1) < 0.25 and abs(w - 2) < 0.25 and loss < 0.02  # noise: 0.1 ** 2


@pytest.mark.cpu_only("PyTorch's CPU random numbers for the initial weights")
@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_mlp_program(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path, digits_file: Path
) -> None:
    script = tmp_path / "mlp.py"
    script.write_text(gradd_variant(MLP))
    target = target_for(mode, request)
    out = check_session_line(run_script(script, str(digits_file), target=target), mode, target)
    losses, accuracy = mlp_numbers(out)
    expected_losses, expected_accuracy = mlp_numbers(MLP_OUT)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-4)
    assert accuracy == expected_accuracy


@pytest.mark.parametrize("program", ["article", "mlp"])
def test_transcripts_are_pytorchs(
    program: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture
) -> None:
    """The recorded outputs are what PyTorch itself prints for the unchanged programs."""
    pytest.importorskip("torch")
    source, expected = (ARTICLE, ARTICLE_OUT) if program == "article" else (MLP, MLP_OUT)
    argv = sys.argv
    if program == "mlp":
        sys.argv = ["mlp.py", str(request.getfixturevalue("digits_file"))]
    try:
        exec(compile(source, f"{program}.py", "exec"), {"__name__": "__main__"})
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    if program == "article":
        assert out == expected
    else:
        losses, accuracy = mlp_numbers(out)
        np.testing.assert_allclose(losses, mlp_numbers(expected)[0], rtol=1e-6)
        assert accuracy == mlp_numbers(expected)[1]


# --- the module itself, in this process -------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No GRADD_TARGET and no current session: each test starts as a fresh program would."""
    monkeypatch.delenv(_state.TARGET_ENV, raising=False)
    saved, _state._current = _state._current, None
    yield
    _state._current = saved


def test_default_session_is_embedded_and_made_once() -> None:
    assert _state._current is None
    s = torch.session()
    assert isinstance(s, EmbeddedSession) and torch.session() is s
    x = torch.ones(2)
    assert isinstance(x, ge.Tensor) and x.tolist() == [1.0, 1.0]


def test_threads_racing_to_first_use_share_one_default() -> None:
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(torch.session())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(s is seen[0] for s in seen)


@pytest.mark.cpu_only("PyTorch's CPU random numbers")
def test_use_switches_and_restores() -> None:
    default = torch.session()
    a, b = gradd.connect(), gradd.connect()
    with torch.use(a) as got:
        assert got is a and torch.session() is a
        torch.manual_seed(42)  # seeds a's stream, not b's or the default's
        with torch.use(b):
            assert torch.session() is b
            b_first = torch.randn(1).item()
        assert torch.session() is a
        assert torch.randn(1).item() == 0.33669036626815796  # a's first draw after seed 42
    assert torch.session() is default
    assert b_first != 0.33669036626815796
    torch.use(b)  # without `with`: from now on
    assert torch.session() is b
    torch.use(None)  # back to the default, made afresh from GRADD_TARGET
    assert isinstance(torch.session(), EmbeddedSession) and torch.session() is not b
    with pytest.raises(TypeError, match="takes a gradd session"):
        torch.use("127.0.0.1:50051")


def test_use_a_remote_session(remote: gradd.Session) -> None:
    with torch.use(remote):
        x = torch.randn(3, requires_grad=True)
        y = F.relu(torch.cat([x, x])).sum()
        assert isinstance(x, gradd.RemoteTensor) and y.grad_fn.name() == "SumBackward0"
        y.backward()
        assert x.grad.shape == (3,)
    assert isinstance(torch.randn(1), ge.Tensor)  # the default (embedded) again


def test_isinstance_tensor_embedded_and_remote(remote: gradd.Session) -> None:
    embedded = gradd.connect()
    for s in (embedded, remote):
        t = s.tensor([1.0, 2.0])
        assert isinstance(t, torch.Tensor) and torch.is_tensor(t)
        assert isinstance(t.device, torch.device)
        assert isinstance(t.dtype, torch.dtype)
    assert torch.Tensor is gradd.Tensor
    assert not isinstance(np.ones(2), torch.Tensor) and not torch.is_tensor([1.0])


def test_missing_names_say_gradd_does_not_implement_them() -> None:
    cases = [
        (lambda: torch.xyz, "gradd.torch", "xyz", "torch.xyz"),
        (lambda: torch.nn.Xyz, "gradd.torch.nn", "Xyz", "torch.nn.Xyz"),
        (lambda: F.xyz, "gradd.torch.nn.functional", "xyz", "torch.nn.functional.xyz"),
        (lambda: torch.autograd.xyz, "gradd.torch.autograd", "xyz", "torch.autograd.xyz"),
        (lambda: torch.cuda.xyz, "gradd.torch.cuda", "xyz", "torch.cuda.xyz"),
        (lambda: torch.close, "gradd.torch", "close", "torch.close"),  # a session's, not torch's
    ]
    for get, module, name, torch_name in cases:
        with pytest.raises(AttributeError) as info:
            get()
        assert str(info.value) == (
            f"module '{module}' has no attribute '{name}' "
            f"(gradd does not implement {torch_name} yet)"
        )
    assert not hasattr(torch, "xyz")
    with pytest.raises(ModuleNotFoundError):
        import gradd.torch.xyz  # noqa: F401


def test_introspection_makes_no_session() -> None:
    for name in ("__wrapped__", "__path__x", "_private"):
        assert not hasattr(torch, name)
    assert _state._current is None


def test_names_follow_the_session() -> None:
    s = torch.session()
    for name in {d.function for d in ge.OPS.values() if d.function}:
        # ``==``: a name that is also a session method (normal) is a new bound method each time
        assert getattr(torch, name) == getattr(s, name), name
    for name in ge.functional.NAMES:
        assert getattr(F, name) is getattr(s.functional, name)
        assert getattr(torch.nn.functional, name) is getattr(s.functional, name)
    for name in ("float32", "float", "float64", "double", "int64", "long", "bool"):
        assert getattr(torch, name) is getattr(s, name)
    assert torch.float is ge.float32 and torch.long is ge.int64 and torch.bool is ge.bool_
    assert torch.no_grad is ge.no_grad and torch.enable_grad is ge.enable_grad
    assert torch.set_grad_enabled is ge.set_grad_enabled
    with torch.no_grad():
        assert not torch.is_grad_enabled()
    assert torch.autograd.no_grad is ge.no_grad
    for name in ("tensor", "zeros", "ones", "randn", "rand", "arange", "full", "from_numpy"):
        assert getattr(torch, name).__self__ is s
    assert torch.from_numpy(np.arange(3)).tolist() == [0, 1, 2]
    names = dir(torch)
    assert {"cat", "randn", "float", "no_grad", "Tensor", "device", "nn", "use"} <= set(names)
    assert "close" not in names and "functional" not in names
    assert {"relu", "cross_entropy"} <= set(dir(F))


class GrownSession(EmbeddedSession):
    """A session with the namespaces sessions do not have yet (nn, optim, compile, autograd)."""

    def __init__(self) -> None:
        super().__init__()
        self.nn = types.SimpleNamespace(
            Linear="Linear", functional=types.SimpleNamespace(relu="nn.functional.relu")
        )
        self.optim = types.SimpleNamespace(SGD="SGD", lr_scheduler=types.SimpleNamespace(X="X"))
        self.autograd = types.SimpleNamespace(grad="autograd.grad")

    def compile(self, fn: object) -> object:
        return fn


def test_namespaces_appear_when_the_session_grows_them() -> None:
    grown = GrownSession()
    with torch.use(grown):
        assert torch.nn.Linear == "Linear" and F.relu == "nn.functional.relu"
        assert torch.optim.SGD == "SGD" and torch.compile(len) is len
        assert torch.autograd.grad == "autograd.grad"
        import gradd.torch.optim as optim
        import gradd.torch.optim.lr_scheduler as lr_scheduler

        assert optim.SGD == "SGD" and lr_scheduler.X == "X"
        with pytest.raises(ModuleNotFoundError):
            import gradd.torch.compile  # noqa: F401  (a function, not a namespace)
    try:
        assert optim.SGD is EmbeddedSession.optim.SGD  # the default session's, again
        with pytest.raises(AttributeError, match=r"does not implement torch\.optim\.LBFGS yet"):
            optim.LBFGS  # noqa: B018  (not one of gradd's optimizers)
    finally:
        for name in ("gradd.torch.optim", "gradd.torch.optim.lr_scheduler"):
            sys.modules.pop(name, None)


def test_device() -> None:
    cpu = torch.device("cpu")
    assert cpu == "cpu" and isinstance(cpu, torch.device) and torch.device(cpu) is cpu
    assert torch.ones(1, device=cpu).device == "cpu"
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        torch.device("tpu")
    with pytest.raises(RuntimeError, match="must not include an index"):
        torch.device("cuda:0", 1)


def test_device_names_a_remote_servers_cuda(remote: gradd.Session) -> None:
    with torch.use(remote):
        d = torch.device("cuda", 1)  # a name: this machine need not have a GPU
        assert str(d) == "cuda:1" and isinstance(d, torch.device)


def test_cuda_is_available_asks_the_server(remote: gradd.Session) -> None:
    """False on a CPU server (whatever this machine has); true on a cuda one."""
    with torch.use(remote):
        assert torch.cuda.is_available() is (DEVICE != "cpu")
        assert (torch.cuda.device_count() > 0) is (DEVICE != "cpu")
    assert remote.available_devices()[0] == "cpu"
    if DEVICE == "cpu":
        assert remote.available_devices() == ["cpu"]


def test_cuda_is_available_embedded_is_this_process() -> None:
    assert torch.cuda.is_available() == ge.cuda_is_available()
    assert torch.session().available_devices() == ge.available_devices()


def test_sessions_of_both_kinds_list_devices(request: pytest.FixtureRequest) -> None:
    for mode in ("embedded", "remote"):
        s = open_session(mode, request)
        try:
            assert "cpu" in s.available_devices()
        finally:
            s.close()


def test_import_is_light_and_embedded_never_loads_grpc() -> None:
    code = (
        "import sys\n"
        "import gradd.torch as torch\n"
        "import gradd.torch.nn.functional as F\n"
        "light = not any(m in sys.modules for m in ('numpy', 'grpc', 'gradd.engine'))\n"
        "F.relu(torch.randn(2)).sum().item()\n"
        "print(light, 'grpc' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != _state.TARGET_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
