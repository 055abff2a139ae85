"""Errors are raised where PyTorch raises them: rule and shape errors at the line that broke
the rule (before anything is sent); errors only the server can find at the next wait, naming
the op and the line that queued it. The session goes on after each; a lost server is a clear
UNAVAILABLE error, never a hang."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import traceback

import gradd
import pytest
from server_harness import ServerProcess


def line_of(exc: BaseException) -> int:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == __file__]
    return frames[-1].lineno


def here() -> int:
    """The caller's line."""
    return sys._getframe(1).f_lineno


def leaf(s: gradd.Session, *values: float) -> gradd.Tensor:
    return s.tensor(list(values), requires_grad=True)


def test_shape_error_at_its_line(session: gradd.Session) -> None:
    a, b = session.ones(2, 3), session.ones(4, 3)
    with pytest.raises(RuntimeError, match=r"size of tensor a \(2\) must match .* \(4\)") as info:
        a + b
    assert line_of(info.value) == here() - 1
    with pytest.raises(RuntimeError, match="inconsistent tensor size|mat1 and mat2|size mismatch"):
        session.ones(3) @ session.ones(4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        a.sum(dim=5)
    assert (a + 1).sum().item() == 12.0  # the session goes on


def test_backward_twice(session: gradd.Session) -> None:
    w = leaf(session, 1.0, 2.0)
    loss = (w * w).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time") as info:
        loss.backward()
    assert line_of(info.value) == here() - 1
    assert isinstance(info.value, gradd.AutogradError)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    loss.backward()  # retained once: fine
    assert w.grad.tolist() == [6.0, 12.0]


def test_backward_roots(session: gradd.Session) -> None:
    w = leaf(session, 1.0, 2.0)
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar"
    ) as info:
        (w * 2).backward()
    assert line_of(info.value) == here() - 1
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        session.ones(1).sum().backward()
    (w * 2).backward(session.tensor([1.0, 1.0]))
    assert w.grad.tolist() == [2.0, 2.0]


def test_modified_saved_tensor(session: gradd.Session) -> None:
    w = leaf(session, 1.0, 2.0)
    a = w * 2
    c = a * a  # MulBackward0 saves a
    a.add_(1)
    assert a._version == 1 and a.grad_fn.name() == "AddBackward0"
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
        c.sum().backward()
    assert line_of(info.value) == here() - 1
    assert "is at version 1; expected version 0 instead" in str(info.value)
    (a * 3).sum().backward()
    assert w.grad.tolist() == [6.0, 6.0]


def test_leaf_inplace_and_requires_grad_rules(session: gradd.Session) -> None:
    w = leaf(session, 1.0)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        w.mul_(2)
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype"):
        session.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        (w * 2).requires_grad_(False)
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        assert (w * 2).grad is None
    y = w * 2
    y.retain_grad()
    y.backward()
    assert y.grad.tolist() == [1.0] and w.grad.tolist() == [2.0]


@pytest.mark.cpu_only(
    "a GPU does not check targets synchronously (PyTorch's CUDA kernel asserts later; gradd's "
    "loss is NaN)"
)
def test_server_found_error_names_op_and_line(remote: gradd.Session) -> None:
    F = remote.functional
    logits = remote.ones(2, 3, requires_grad=True)
    loss = F.cross_entropy(logits, remote.tensor([0, 7]))  # class 7 of 3: only data says so
    queued = here() - 1
    with pytest.raises(gradd.GraddError, match="out of bounds") as info:
        loss.item()
    err = info.value
    assert isinstance(err, IndexError) and err.code.name == "INVALID_ARGUMENT"
    assert err.site == ("cross_entropy", __file__, queued)
    assert f"{__file__}:{queued}" in str(err)
    assert (logits * 2).sum().item() == 12.0  # the session goes on


def test_limit_reported_at_next_wait(start_small_server: ServerProcess) -> None:
    with gradd.connect(start_small_server.addr) as s:
        x = s.ones(3)
        keep = [x * i for i in range(40)]  # past --max-session-tensors 20
        with pytest.raises(gradd.ResourceExhaustedError, match="limit") as info:
            s.synchronize()
        assert info.value.code.name == "RESOURCE_EXHAUSTED" and info.value.site[0] == "mul"
        del keep
        s.synchronize()  # the released handles free room: the session goes on
        assert (x + 1).sum().item() == 6.0


def test_lost_server_is_unavailable_not_a_hang(start_small_server: ServerProcess) -> None:
    s = gradd.connect(start_small_server.addr)
    x = s.ones(3, requires_grad=True)
    assert (x * 2).sum().item() == 6.0
    start_small_server.proc.send_signal(signal.SIGKILL)
    start_small_server.proc.wait()
    t0 = time.monotonic()
    y = (x * 3).sum()  # queued: nothing waits yet
    with pytest.raises(gradd.UnavailableError, match="unreachable|lost") as info:
        y.item()
    assert time.monotonic() - t0 < 20
    assert isinstance(info.value, ConnectionError) and info.value.code.name == "UNAVAILABLE"
    with pytest.raises(gradd.UnavailableError):
        (x * 4).sum().item()
    s.close()


def test_server_that_stops_answering_times_out(start_small_server: ServerProcess) -> None:
    start_small_server.warm_up()
    s = gradd.connect(start_small_server.addr, timeout=1.0)
    x = s.ones(3)
    assert x.sum().item() == 3.0
    start_small_server.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(gradd.DeadlineExceededError, match="did not answer within 1.0 s"):
            (x * 2).sum().item()
        assert time.monotonic() - t0 < 10
    finally:
        start_small_server.proc.send_signal(signal.SIGCONT)
    s.close()


def test_unreachable_server() -> None:
    with pytest.raises(gradd.UnavailableError):
        gradd.connect("127.0.0.1:1", timeout=5)


def test_closed_session(remote: gradd.Session) -> None:
    x = remote.ones(2)
    remote.close()
    with pytest.raises(gradd.GraddError, match="closed"):
        x + 1


@pytest.fixture
def start_small_server(tmp_path: object) -> ServerProcess:
    proc = ServerProcess(tmp_path / "small.log", "--max-session-tensors", "20")
    yield proc
    proc.stop()


def test_sessions_left_open_are_closed_at_interpreter_exit(gradd_server: ServerProcess) -> None:
    script = (
        "import gradd\n"
        f"s = gradd.connect({gradd_server.addr!r})\n"
        "(s.tensor([1.0], requires_grad=True) * 2).sum().backward()\n"
        "print(s.id)\n"  # and exit without close()
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    session_id = done.stdout.strip()
    gradd_server.wait_log(rf"session {session_id} closed \(closed, 1 steps\)")


def test_a_stream_reset_under_the_sdk_is_a_lost_connection_not_our_bug() -> None:
    # What gRPC reports when a proxy (nginx) resets the streams of a replica that died.
    from gradd.errors import from_rpc_error

    class Reset:
        def code(self):
            import grpc

            return grpc.StatusCode.INTERNAL

        def details(self):
            return "Stream removed (RST_STREAM (Received RST_STREAM with error code 2))"

    err = from_rpc_error(Reset(), "waiting for the server")
    assert isinstance(err, gradd.UnavailableError) and err.code_name == "UNAVAILABLE"
    assert "connection was lost" in str(err)
