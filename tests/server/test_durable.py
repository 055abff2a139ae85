"""Durable sessions (`gradd-server --state-dir`): every kind of state survives a restart,
corrupt snapshots are reported and skipped, limits hold for restored sessions, tokens are
stored only as salted hashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradd
import grpc
import numpy as np
import pytest
from gradd.server.config import parse_config
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import Client, DurableServer, status, tensor

ADMIN = "durable-admin"


def scenario(s: gradd.Session, pause) -> dict[str, Any]:
    """Every kind of session state, then `pause()` (a restart), then its use."""
    s.manual_seed(7)
    w = s.randn(4, 3, requires_grad=True)
    base = s.arange(12.0).reshape(3, 4)
    view = base[1:]  # shares base's memory
    with s.no_grad():
        wt = w.t()  # a view of a parameter, without a graph
    wv = w.view(12)  # a view with a graph, freed by the backward below
    idx = s.tensor([1, 2, 3])
    mask = s.tensor([True, False, True])
    wide = s.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=s.float64).t().contiguous().t()
    x = s.randn(5, 4)
    h = x @ w
    h.retain_grad()
    loss = (h**2).mean() + wv.sum()
    loss.backward()
    g = w.grad  # a handle bound to w.grad itself
    d = w.detach()  # shares w's memory and version counter
    opt = s.optim.Adam([w], lr=0.01)
    opt.step()
    pause()
    with s.no_grad():
        g.add_(1.0)  # w.grad changes with it
        view.mul_(10.0)  # writes into base
    drawn = s.randn(3)  # the generator goes on where it was
    opt.step()  # Adam's state, and the changed w.grad
    out = {
        "w": w,
        "w.grad": w.grad,
        "base": base,
        "wt": wt,
        "wv": wv,
        "d": d,
        "drawn": drawn,
        "h.grad": h.grad,
        "idx": idx,
        "mask": mask,
        "wide": wide * 2,
        "state": opt.state_dict()["state"][0]["exp_avg"],
    }
    values = {k: v.detach().numpy() for k, v in out.items()}
    values["flags"] = (w.is_leaf, h.is_leaf, h.requires_grad, wv.grad_fn.name(), idx.dtype)
    return values


@pytest.mark.cpu_only("the embedded reference draws PyTorch's CPU numbers")
def test_every_kind_of_state_survives_a_restart(tmp_path: Path) -> None:
    with gradd.connect() as s:
        expected = scenario(s, lambda: None)
    server = DurableServer(tmp_path, "--checkpoint-every", "1000")
    try:
        s = gradd.connect(server.addr)
        sent: list[int] = []

        def restart() -> None:
            s.synchronize()
            sent.append(s._stream._seq)
            assert server.terminate() == 0  # the final snapshot holds everything
            server.start()

        got = scenario(s, restart)
        line = server.proc.wait_log("session [0-9a-f]+ restored")
        assert f"(sequence {sent[0]}," in line  # restored from the snapshot, nothing replayed
        s.close()
    finally:
        server.stop()
    assert got.pop("flags") == expected.pop("flags")
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        assert got[name].tobytes() == value.tobytes(), name


def snapshot_files(server: DurableServer, session_id: str) -> tuple[Path, Path]:
    folder = server.state_dir / "sessions" / f"s-{session_id}"
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder / "manifest.json", folder / manifest["tensors_file"]


def test_corrupt_snapshots_are_reported_and_skipped(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "1000")
    try:
        sessions = [gradd.connect(server.addr) for _ in range(3)]
        ones = [s.ones(1000) for s in sessions]
        assert [t.sum().item() for t in ones] == [1000.0] * 3
        assert server.terminate() == 0
        flipped, truncated, intact = sessions
        _, data = snapshot_files(server, flipped.id)
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
        manifest, _ = snapshot_files(server, truncated.id)
        manifest.write_bytes(manifest.read_bytes()[:40])
        server.start()
        log = server.proc.log()
        assert f"s-{flipped.id} not restored: corrupt or partial snapshot" in log
        assert "does not match the manifest's SHA-256" in log
        assert f"s-{truncated.id} not restored: corrupt or partial snapshot" in log
        assert "restored 1 sessions" in log
        assert len(list((server.state_dir / "skipped").iterdir())) == 2  # kept for inspection
        assert (ones[2] * 2).sum().item() == 2000.0  # the intact one goes on
        for t in ones[:2]:
            with pytest.raises(gradd.GraddError, match="cannot resume session"):
                (t * 2).sum().item()
    finally:
        server.stop()


def test_restored_sessions_obey_their_limits(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "1000", env={"GRADD_ADMIN_TOKEN": ADMIN})
    try:
        client = Client(server.addr)
        limits = spb.SessionLimits(max_bytes=1 << 20, max_tensors=4)
        s = client.session(limits=limits, label="limited", session_id="limited-1", seed=5)
        s.md = (*s.md, ("x-gradd-session", s.id))  # how a restored session is claimed
        s.execute(tensor("x", np.ones(150_000, np.float32)))  # 600 KB of 1 MiB
        client.close()
        assert server.terminate() == 0
        server.start()
        client = Client(server.addr)
        s.stub = client.stub
        assert s.fetch("x", metadata_only=True).info.shape == [150_000]
        code, message = status(lambda: s.execute(tensor("y", np.ones(150_000, np.float32))))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "session memory limit" in message
        admin = (("authorization", f"Bearer {ADMIN}"),)
        (listed,) = client.stub.ListSessions(spb.ListSessionsRequest(), metadata=admin).sessions
        assert (listed.label, listed.limits.max_bytes, listed.limits.max_tensors) == (
            "limited",
            1 << 20,
            4,
        )
        client.close()
        assert server.terminate() == 0
        # A server whose limit is now below what the session holds does not take it.
        server.start("--max-session-bytes", "512K")
        assert "limited-1 not restored: SessionMemoryError" in server.proc.log()
    finally:
        server.stop()


def test_tokens_are_stored_only_as_salted_hashes(tmp_path: Path) -> None:
    server = DurableServer(tmp_path)
    try:
        client = Client(server.addr)
        s = client.session()
        # Durable from creation: on disk before CreateSession answered.
        folder = server.state_dir / "sessions" / f"s-{s.id}"
        written = json.loads((folder / "manifest.json").read_text())
        assert written["durable_sequence"] == 0 and "tensors_file" not in written
        assert set(written["token"]) == {"salt", "iterations", "pbkdf2_sha256"}
        token = s.created.token.encode()
        for path in server.state_dir.rglob("*"):
            if path.is_file():
                assert token not in path.read_bytes(), path
        assert s.created.durable
        info = client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=10)
        assert info.durable
    finally:
        server.stop()


def test_the_answer_says_what_is_durable(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "1000")
    try:
        client = Client(server.addr)
        s = client.session()
        request = cpb.ExecuteRequest(
            session_id=s.id, commands=[tensor("x", np.ones(3, np.float32))], sequence=7
        )
        answer = client.stub.Execute(request, metadata=s.md, timeout=30)
        assert answer.durable_sequence == 0  # nothing snapshotted yet
        probe = client.stub.Execute(cpb.ExecuteRequest(session_id=s.id), metadata=s.md, timeout=30)
        assert probe.durable_sequence == 7 and probe.applied == 0  # what the session holds
    finally:
        server.stop()


def test_checkpoint_every_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        parse_config(["--checkpoint-every", "0"], env={})
    config = parse_config([], env={"GRADD_STATE_DIR": "/var/lib/gradd/state"})
    assert config.state_dir == "/var/lib/gradd/state" and config.checkpoint_every == 30.0
