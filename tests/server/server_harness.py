"""Test harness: a real `gradd-server` process on loopback, and a small client for it.

Commands are built the way any client builds them, from gradd.v1 messages. Waits are bounded
polls on the server's log; nothing asserts on timing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc
from gradd.v1 import tensor_pb2 as tpb

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BIG = 1 << 30
ADMIN_TOKEN = "admin-secret-for-tests"  # the shared test server's (see conftest.py)
# The device of the test servers' sessions (GRADD_DEVICE, as the server reads it; `make
# test-cuda-standin` sets cuda), and how their tensors name it, as PyTorch: cpu or cuda:0.
DEVICE = os.environ.get("GRADD_DEVICE", "cpu")
TENSOR_DEVICE = "cpu" if DEVICE == "cpu" else "cuda:0"
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", BIG),
    ("grpc.max_receive_message_length", BIG),
]


class ServerProcess:
    """`gradd-server --port 0 ARGS` in a subprocess, its log in a file."""

    def __init__(self, log_path: Path, *args: str, env: dict | None = None) -> None:
        self.log_path = log_path
        command = [str(BIN / "gradd-server"), "--port", "0", *args]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        line = self.wait_log(r"listening on \S+:(\d+)")
        self.port = int(re.search(r"listening on \S+:(\d+)", line).group(1))
        self.addr = f"127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait for a log line matching `pattern` and return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None:
                raise AssertionError(f"gradd-server exited {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r} in {timeout}s:\n{self.log()}")

    def warm_up(self) -> None:
        """One session's command and answer, then its close: tests of short timeouts call it
        first, since a GPU server's first command also starts CUDA and compiles kernels."""
        client = Client(self.addr)
        s = client.session()
        s.execute(tensor("x", np.ones(3, np.float32)), op("mul", Tensor("x"), 2.0, outs=["y"]))
        s.array("y")
        s.close()
        client.close()

    def terminate(self) -> int:
        """SIGTERM, then the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and close the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Tensor(str):
    """A handle, as an op argument (plain str arguments are Python strings)."""


def value(x: Any) -> cpb.Value:
    """A Python value as a gradd.v1 Value."""
    if isinstance(x, Tensor):
        return cpb.Value(tensor=x)
    if isinstance(x, bool):
        return cpb.Value(b=x)
    if isinstance(x, int):
        return cpb.Value(i=x)
    if isinstance(x, float):
        return cpb.Value(f=x)
    if isinstance(x, str):
        return cpb.Value(s=x)
    if x is None:
        return cpb.Value(none=cpb.NoneValue())
    if x is Ellipsis:
        return cpb.Value(ellipsis=cpb.EllipsisValue())
    if isinstance(x, slice):
        return cpb.Value(slice=cpb.Slice(start=x.start, stop=x.stop, step=x.step))
    if isinstance(x, tuple):
        return cpb.Value(tuple=cpb.ValueTuple(items=[value(v) for v in x]))
    if isinstance(x, list):
        return cpb.Value(list=cpb.ValueList(items=[value(v) for v in x]))
    raise TypeError(type(x))


def data(array: Any, dtype: int | None = None) -> tpb.TensorData:
    """Raw little-endian TensorData of an array."""
    array = np.asarray(array)
    wire = (
        dtype
        or {"f": tpb.FLOAT32, "d": tpb.FLOAT64, "l": tpb.INT64, "?": tpb.BOOL}[array.dtype.char]
    )
    return tpb.TensorData(dtype=wire, shape=array.shape, raw=array.astype(array.dtype).tobytes())


def tensor(out: str, array: Any, requires_grad: bool = False) -> cpb.Command:
    """Create `out` from a NumPy array (raw bytes)."""
    return cpb.Command(
        tensor=cpb.CreateTensor(out=out, data=data(np.asarray(array)), requires_grad=requires_grad)
    )


def factory(out: str, kind: str, shape: list[int], *args: float) -> cpb.Command:
    """A Factory command (zeros, full, randn...) with `args` after the shape."""
    values = [cpb.Value(f=a) for a in args]
    return cpb.Command(factory=cpb.Factory(out=out, kind=kind, shape=shape, args=values))


def op(name: str, *args: Any, outs: Iterable[str] = (), no_grad: bool = False, **kw: Any):
    """An Op command; Tensor("h") arguments are handles."""
    return cpb.Command(
        op=cpb.Op(
            op=name,
            args=[value(a) for a in args],
            kwargs={k: value(v) for k, v in kw.items()},
            outs=list(outs),
            no_grad=no_grad,
        )
    )


def decode(v: tpb.TensorValue) -> np.ndarray | None:
    """The array in a TensorValue (None for a None grad)."""
    if v.is_none:
        return None
    dtype = {tpb.FLOAT32: "<f4", tpb.FLOAT64: "<f8", tpb.INT64: "<i8", tpb.BOOL: "?"}
    return np.frombuffer(v.data.raw, dtype=dtype[v.data.dtype]).reshape(tuple(v.data.shape))


class Client:
    """A channel to a server and its AutogradService stub."""

    def __init__(self, addr: str) -> None:
        self.channel = grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)
        self.stub = spb_grpc.AutogradServiceStub(self.channel)

    def session(self, **request: Any) -> Session:
        """Open a session (CreateSessionRequest fields as keywords)."""
        response = self.stub.CreateSession(spb.CreateSessionRequest(**request), timeout=30)
        return Session(self, response)

    def close(self) -> None:
        self.channel.close()


class Session:
    """One session: its id, token metadata and helpers for each RPC."""

    def __init__(self, client: Client, created: spb.CreateSessionResponse) -> None:
        self.client = client
        self.stub = client.stub
        self.created = created
        self.id = created.session_id
        self.md = (("authorization", f"Bearer {created.token}"),)

    def execute(self, *commands: cpb.Command) -> cpb.ExecuteResponse:
        """Execute a batch (raises grpc.RpcError on a failing command)."""
        request = cpb.ExecuteRequest(session_id=self.id, commands=commands)
        return self.stub.Execute(request, metadata=self.md, timeout=60)

    def fetch(self, handle: str, **kw: Any) -> tpb.TensorValue:
        """The Fetch RPC."""
        request = spb.FetchRequest(session_id=self.id, handle=handle, **kw)
        return self.stub.Fetch(request, metadata=self.md, timeout=60)

    def array(self, handle: str, grad: bool = False) -> np.ndarray | None:
        """A tensor's (or its grad's) elements."""
        return decode(self.fetch(handle, grad=grad))

    def close(self) -> None:
        request = spb.CloseSessionRequest(session_id=self.id)
        self.stub.CloseSession(request, metadata=self.md, timeout=30)


def status(call: Any) -> tuple[grpc.StatusCode, str]:
    """Run a call expected to fail; its status code and message."""
    try:
        call()
    except grpc.RpcError as err:
        return err.code(), err.details()
    raise AssertionError("the call succeeded")


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DurableServer:
    """`gradd-server --state-dir DIR` on one fixed port, to be killed and started again there
    (a client reconnects to the same address)."""

    def __init__(self, folder: Path, *args: str, env: dict | None = None) -> None:
        self.folder = folder
        self.state_dir = folder / "state"
        self.args = args
        self.env = env
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.runs: list[ServerProcess] = []
        self.start()

    @property
    def proc(self) -> ServerProcess:
        """The server running now (the last one started)."""
        return self.runs[-1]

    def start(self, *extra: str) -> ServerProcess:
        """Start it (again) on the same port and state directory."""
        log = self.folder / f"server{len(self.runs)}.log"
        flags = ("--port", str(self.port), "--state-dir", str(self.state_dir))
        self.runs.append(ServerProcess(log, *flags, *self.args, *extra, env=self.env))
        return self.proc

    def kill(self) -> None:
        """SIGKILL: no final snapshot, nothing flushed."""
        self.proc.proc.kill()
        self.proc.proc.wait()

    def terminate(self) -> int:
        """SIGTERM (a rolling restart): the exit status."""
        return self.proc.terminate()

    def stop(self) -> None:
        for run in self.runs:
            run.stop()
