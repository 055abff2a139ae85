"""grpcurl against a real server: reflection, health, and the README's commands as written."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from server_harness import BIN, ROOT

DOC = ROOT / "README.md"


def _blocks(tag: str) -> list[str]:
    """The fenced blocks that follow `<!-- tested: TAG -->` in the README, in order."""
    pattern = rf"<!-- tested: {tag} -->\n```[a-z]*\n(.*?)```"
    return re.findall(pattern, DOC.read_text(), flags=re.DOTALL)


def _grpcurl(addr: str, *args: str) -> str:
    command = [str(BIN / "grpcurl"), "-plaintext", addr, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_reflection_lists_and_describes_the_service(server):
    services = _grpcurl(server.addr, "list").split()
    assert services == [
        "gradd.v1.AutogradService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    described = _grpcurl(server.addr, "describe", "gradd.v1.AutogradService")
    for rpc in ("CreateSession", "Execute", "ExecuteStream", "Fetch", "GetGraph", "Watch"):
        assert f"rpc {rpc} " in described
    assert '"status": "SERVING"' in _grpcurl(server.addr, "grpc.health.v1.Health/Check")


def test_describe_shows_the_proto_comments(server):
    described = _grpcurl(server.addr, "describe", "gradd.v1.AutogradService")
    assert "// Open a session: its id and secret token." in described
    command = _grpcurl(server.addr, "describe", "gradd.v1.SetGrad")
    assert "// `handle.grad = grad`: the tensor `grad` itself becomes" in command
    value = _grpcurl(server.addr, "describe", "gradd.v1.Value")  # a message of another file
    assert "Exactly one field must be set" in value


@pytest.mark.cpu_only("the documented transcript is a CPU session's")
def test_the_documented_grpcurl_session_runs_as_written(server):
    script = "\n".join(_blocks("grpcurl"))
    assert "CreateSession" in script and "backward" in script and "Fetch" in script
    env = {**os.environ, "ADDR": server.addr, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    expected = _blocks("output")
    assert len(expected) == 2
    for block in expected:
        assert block.strip() in output, f"documented output not printed:\n{block}"
    assert '"fillcolor": "darkolivegreen1"' in output and '"label": "b\\n (1)"' in output
    # The exit status the README gives for the failing update (64 + the gRPC status code).
    stated = re.search(r"grpcurl exits (\d+)", DOC.read_text()).group(1)
    assert f"grpcurl exit status: {stated}" in result.stdout
    items = re.findall(r'"handle": "w",\s+"info".*?"item": ([0-9.]+)', result.stdout, re.S)
    assert [round(float(i), 6) for i in items] == [6.0, 1.4]  # w.grad, then w = 2 - 0.1 * 6
