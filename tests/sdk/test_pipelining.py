"""The pipeline: the article's loop never waits for the server, commands go out in a few large
batches, handles of collected tensors are released in bulk, grad mode travels with each op,
and watchers see the training steps."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import gradd
import grpc
import pytest
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc

from .conftest import ADMIN_TOKEN
from .test_article import train


def summary(server: object, session_id: str) -> spb.SessionSummary:
    """What the server says of a session (ListSessions, admin token)."""
    with grpc.insecure_channel(server.addr) as channel:
        stub = spb_grpc.AutogradServiceStub(channel)
        md = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
        listing = stub.ListSessions(spb.ListSessionsRequest(), metadata=md, timeout=30)
    (found,) = [s for s in listing.sessions if s.session_id == session_id]
    return found


def watching(server: object, session: gradd.Session, **options: object) -> tuple:
    """A watch stream read by a thread into a list, once the server has registered it."""
    events: list = []
    stream = session.watch(**options)
    reader = threading.Thread(target=lambda: events.extend(e for e in stream))
    reader.start()
    deadline = time.monotonic() + 30
    while summary(server, session.id).watchers < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    return events, reader


def test_article_loop_never_waits(remote: gradd.Session, article_data: tuple, monkeypatch) -> None:
    stream = remote._stream
    waits = []
    read_one = stream._read_one
    monkeypatch.setattr(stream, "_read_one", lambda: (waits.append(1), read_one())[1])
    sent = []
    flush = stream.flush
    monkeypatch.setattr(stream, "flush", lambda: (sent.append(1), flush())[1])
    b, w = train(remote, article_data)
    assert waits == []  # 200 epochs, ~2,400 commands: not one wait
    assert len(sent) <= 2400 // stream.batch_size + 2
    # What the engine gives in this process, on the server's device (B200 and W200 on a CPU).
    b_here, w_here = train(gradd.connect(device=str(remote.device)), article_data)
    assert (b.item(), w.item()) == (b_here.item(), w_here.item())


def test_collected_tensors_are_released(remote: gradd.Session, gradd_server, article_data) -> None:
    b, w = train(remote, article_data)
    remote.synchronize()
    remote.synchronize()  # the releases of the last batch's garbage go with this one
    # x, y, b, w, their grads and the last epoch's few tensors: not 200 epochs' worth.
    assert summary(gradd_server, remote.id).tensors < 16


def test_grad_mode_travels_with_each_op(remote: gradd.Session) -> None:
    x = remote.ones(2, requires_grad=True)
    with remote.no_grad():
        y = x * 2
    z = x * 2
    assert not y.requires_grad and z.requires_grad
    # The server agrees: y has no graph, so backward through it fails there too.
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    z.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_watchers_see_each_step(remote: gradd.Session, gradd_server, article_data) -> None:
    events, reader = watching(gradd_server, remote, steps_only=True)
    losses = []
    x, y = (remote.tensor(a).float() for a in article_data)
    b, w = remote.zeros(1, requires_grad=True), remote.zeros(1, requires_grad=True)
    for _ in range(5):
        loss = ((y - (b + w * x)) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        with remote.no_grad():
            b -= 0.1 * b.grad
            w -= 0.1 * w.grad
        b.grad.zero_(), w.grad.zero_()
    remote.close()  # ends the watch stream with a SessionEnded event
    reader.join(timeout=30)
    steps = [e for e in events if isinstance(e, gradd.StepEvent)]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5]
    assert [e.loss for e in steps] == pytest.approx(losses, rel=1e-6)
    assert isinstance(events[0], gradd.WatchStarted) and events[0].step == 0
    assert isinstance(events[-1], gradd.SessionEnded) and events[-1].reason == "closed"


def test_watchers_get_graph_snapshots(remote: gradd.Session, gradd_server) -> None:
    events, reader = watching(gradd_server, remote)
    b, w = remote.zeros(1, requires_grad=True), remote.ones(1, requires_grad=True)
    x = remote.ones(4, 1)
    gradd.make_dot(b + w * x, params={"b": b, "w": w})  # labels for the watchers' pictures
    ((b + w * x) ** 2).mean().backward()
    remote.close()
    reader.join(timeout=30)
    graphs = [e for e in events if isinstance(e, gradd.GraphEvent)]
    assert graphs and graphs[0].reason == "changed" and graphs[0].step == 1
    labels = sorted(n.label for n in graphs[0].picture.nodes)
    assert labels == sorted(
        ["MeanBackward0", "PowBackward0", "AddBackward0", "MulBackward0", "b\n (1)", "w\n (1)"]
    )
    assert "digraph" in graphs[0].picture.source


def test_import_gradd_is_light() -> None:
    code = (
        "import sys, gradd; "
        "print(sorted(m for m in ('numpy', 'grpc', 'gradd.engine') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_large_tensors_round_trip(remote: gradd.Session) -> None:
    import numpy as np

    big = np.random.default_rng(0).standard_normal((600, 700))  # 3.4 MB of float64
    strided = big[::2, ::3].astype(np.float32)  # converted, then sent from its own memory
    mask = big > 0
    for array in (big, big[::2, ::3], strided, mask):
        t = remote.tensor(array)
        assert t.shape == array.shape and t.dtype.np == array.dtype
        np.testing.assert_array_equal(t.numpy(), array)
    t = remote.tensor(big, requires_grad=True)
    (t * 2).sum().backward()
    assert t.grad.numpy().shape == big.shape and float(t.grad.numpy().max()) == 2.0


def test_closing_a_session_logs_no_error(gradd_server) -> None:
    before = gradd_server.log().count("ExecuteStream failed")
    ids = []
    for _ in range(3):
        with gradd.connect(gradd_server.addr, timeout=60) as s:
            (s.ones(2, requires_grad=True) * 2).sum().backward()
        ids.append(s.id)
        s = gradd.connect(gradd_server.addr, timeout=60)
        assert (s.ones(3) * 2).sum().item() == 6.0
        s.close()  # ends and cancels the stream: the client's choice, not a server error
        ids.append(s.id)
    for session_id in ids:
        gradd_server.wait_log(rf"session {session_id} closed")
    time.sleep(0.5)  # the streams' handlers end just after the closes are logged
    assert gradd_server.log().count("ExecuteStream failed") == before
