"""Compiled programs are durable: a compiled article step goes on after its server restarts from
a snapshot that holds the program (SIGTERM or SIGKILL), bit-identical to an uninterrupted run;
a program a manifest holds that CompileProgram would refuse makes the session skipped."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import gradd
import pytest
from gradd.v1 import command_pb2 as cpb
from server_harness import DurableServer

from .test_article import data, params
from .test_compile import article_step

BEFORE, AFTER = 20, 30  # steps before and after the restart


def manifest(server: DurableServer, session_id: str) -> Path:
    return server.state_dir / "sessions" / f"s-{session_id}" / "manifest.json"


def compiled_article(s: gradd.Session, article_data: tuple, pause) -> tuple:
    """The article step compiled, run BEFORE steps, `pause()`, AFTER more; (losses, b, w)."""
    x, y = data(s, article_data)
    b, w = params(s)
    step = s.compile(lambda x, y, lr: article_step(s, x, y, b, w, lr))
    losses = [step(x, y, 0.1).item() for _ in range(BEFORE)]
    pause()
    losses += [step(x, y, 0.1).item() for _ in range(AFTER)]
    return losses, b.detach().numpy(), w.detach().numpy()


def wait_for_snapshot_with_program(server: DurableServer, s: gradd.Session) -> None:
    """Until a periodic snapshot covers everything sent, the program included."""
    s.synchronize()
    sent = s._stream._seq
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            m = json.loads(manifest(server, s.id).read_text())
        except (OSError, ValueError):
            m = {}
        if m.get("durable_sequence", -1) >= sent and m.get("extras", {}).get("programs"):
            return
        time.sleep(0.05)
    raise AssertionError("no snapshot holding the program")


@pytest.mark.cpu_only("compared with an embedded CPU run: a GPU draws its own numbers")
@pytest.mark.parametrize("signal", ["sigterm", "sigkill"])
def test_a_compiled_step_survives_a_restart(
    tmp_path: Path, article_data: tuple, signal: str
) -> None:
    with gradd.connect() as s:
        expected = compiled_article(s, article_data, lambda: None)
    server = DurableServer(tmp_path, "--checkpoint-every", "0.2")
    try:
        s = gradd.connect(server.addr)
        durable: list[int] = []

        def restart() -> None:
            if signal == "sigterm":
                s.synchronize()
                assert server.terminate() == 0  # the final snapshot holds the program
            else:
                wait_for_snapshot_with_program(server, s)
                server.kill()
            durable.append(json.loads(manifest(server, s.id).read_text())["durable_sequence"])
            assert json.loads(manifest(server, s.id).read_text())["extras"]["programs"]
            server.start()

        got = compiled_article(s, article_data, restart)
        line = server.proc.wait_log("session [0-9a-f]+ restored")
        assert f"(sequence {durable[0]}," in line  # the CompileProgram came before it
        server.proc.wait_log("session [0-9a-f]+ resumed by its client")
        s.close()
    finally:
        server.stop()
    assert got[0] == expected[0]
    assert got[1].tobytes() == expected[1].tobytes()
    assert got[2].tobytes() == expected[2].tobytes()


def test_a_program_compile_program_would_refuse_is_not_restored(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "1000")
    try:
        s = gradd.connect(server.addr, reconnect_timeout=5)
        x = s.ones(3)  # no graph: a live one would hold the snapshot back
        double = s.compile(lambda t: (t * 2).sum())
        assert [double(x).item() for _ in range(3)] == [6.0] * 3
        assert server.terminate() == 0
        path = manifest(server, s.id)
        m = json.loads(path.read_text())
        ((name, stored),) = m["extras"]["programs"]
        program = cpb.CompileProgram.FromString(base64.b64decode(stored))
        ops = [c for c in program.commands if c.WhichOneof("kind") == "op"]
        ops[0].op.op = "no_such_op"  # a tampered manifest (its SHA-256 covers only the tensors)
        m["extras"]["programs"] = [[name, base64.b64encode(program.SerializeToString()).decode()]]
        path.write_text(json.dumps(m))
        server.start()
        log = server.proc.log()
        assert f"s-{s.id} not restored: ServiceError: unknown op 'no_such_op'" in log
        assert "restored 0 sessions" in log
        with pytest.raises(gradd.GraddError, match="cannot resume session"):
            double(x).item()
    finally:
        server.stop()


def test_a_freed_program_is_not_restored(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "1000")
    try:
        s = gradd.connect(server.addr)
        x = s.ones(3)  # no graph: a live one would hold the snapshot back
        kept = s.compile(lambda t: (t * 2).sum())
        freed = s.compile(lambda t: (t * 3).sum())
        assert (kept(x).item(), kept(x).item(), freed(x).item(), freed(x).item()) == (6, 6, 9, 9)
        del freed
        assert (x * 1).sum().item() == 3.0  # the FreeProgram rides this batch
        assert server.terminate() == 0
        stored = json.loads(manifest(server, s.id).read_text())["extras"]["programs"]
        assert [name for name, _ in stored] == [kept._programs[0].name]
        server.start()
        assert kept(x).item() == 6.0
        s.close()
    finally:
        server.stop()


def test_restored_programs_are_counted_in_the_session_limits(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "1000")
    try:
        s = gradd.connect(server.addr)
        x = s.ones(3)
        double = s.compile(lambda t: (t * 2).sum())
        assert [double(x).item() for _ in range(2)] == [6.0] * 2
        assert server.terminate() == 0
        path = manifest(server, s.id)
        m = json.loads(path.read_text())
        ((_, stored),) = m["extras"]["programs"]
        program = cpb.CompileProgram.FromString(base64.b64decode(stored))
        copies = []
        for i in range(257):  # one past the session's program limit
            program.program = f"copy-{i}"
            copies.append([program.program, base64.b64encode(program.SerializeToString()).decode()])
        m["extras"]["programs"] = copies
        path.write_text(json.dumps(m))
        server.start()
        assert f"s-{s.id} not restored: ServiceError: session program limit" in server.proc.log()
    finally:
        server.stop()
