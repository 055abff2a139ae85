"""Fuzzing every RPC of a real gradd-server with hypothesis: random bytes, valid requests mutated,
and well-formed messages with random fields that reach the command path of a real session.

Every method of gradd.v1.AutogradService (from its descriptor, so new methods are covered) and
grpc.health.v1.Health/Check is called with raw bytes. No answer may be INTERNAL or UNKNOWN (a bug
of ours) or DEADLINE_EXCEEDED (a call that hangs), nothing in the server's log may be a
traceback, and the server answers ServerInfo afterwards.

`make test` runs few examples per test, the same each run; `make fuzz` runs many, new each run
(GRADD_FUZZ_EXAMPLES examples per test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
from fuzz_messages import Known, messages, mutated
from google.protobuf import message_factory, text_format
from google.protobuf.descriptor import Descriptor
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from server_harness import ADMIN_TOKEN, Client, ServerProcess, Tensor, op, tensor

FUZZING = "GRADD_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("GRADD_FUZZ_EXAMPLES", "12")),
    deadline=None,
    derandomize=not FUZZING,  # `make test` sees the same examples each run
    database=None,
    suppress_health_check=list(HealthCheck),
)
BUGS = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED)
SESSION_ID = "fuzz-session"  # each example opens it afresh (client-chosen ids are allowed)
CALL_TIMEOUT = 30  # seconds: generous; a call that takes it is reported as hanging


@dataclass(frozen=True)
class Method:
    """A gRPC method as the fuzzer calls it: path, request type and streaming sides."""

    path: str
    request: Descriptor
    client_streaming: bool = False
    server_streaming: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


_SERVICE = spb.DESCRIPTOR.services_by_name["AutogradService"]
METHODS = [
    Method(f"/{_SERVICE.full_name}/{m.name}", m.input_type, m.client_streaming, m.server_streaming)
    for m in _SERVICE.methods
]
METHODS.append(Method("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest.DESCRIPTOR))


class Target:
    """The fuzzed server, a channel to it and the session each example starts from."""

    def __init__(self, proc: ServerProcess) -> None:
        self.proc = proc
        self.client = Client(proc.addr)
        self.channel = self.client.channel
        info = self.client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=CALL_TIMEOUT)
        self.known = Known(SESSION_ID, tuple(info.ops), tuple(info.factories), tuple(info.devices))
        self.token = ""
        self._log_read = 0

    def fresh_session(self) -> None:
        """Open SESSION_ID anew with tensors bound to the handles the strategies name."""
        self._close(SESSION_ID, ADMIN_TOKEN)
        s = self.client.session(session_id=SESSION_ID, seed=0)
        s.execute(
            tensor("a", np.ones((2, 3), np.float32), requires_grad=True),
            tensor("b", np.arange(3.0)),
            tensor("i", np.arange(6).reshape(2, 3)),
            tensor("m", np.array([[True, False, True]] * 2)),
            tensor("s", np.float32(2.0)),
            op("mul", Tensor("a"), Tensor("a"), outs=["y"]),
        )
        self.token = s.created.token

    def metadata(self, who: str) -> tuple:
        token = {"session": self.token, "admin": ADMIN_TOKEN}.get(who)
        return (("authorization", f"Bearer {token}"),) if token else ()

    def call(self, method: Method, bodies: list[bytes], who: str) -> tuple[Any, str]:
        """Send raw request bytes; the status code and details of the answer."""
        md, path = self.metadata(who), method.path
        raw = {"request_serializer": None, "response_deserializer": None}
        try:
            if method.client_streaming:
                answers = self.channel.stream_stream(path, **raw)(
                    iter(bodies), metadata=md, timeout=CALL_TIMEOUT
                )
                for _ in answers:
                    pass
            elif method.server_streaming:  # Watch: its first event, then hang up
                answers = self.channel.unary_stream(path, **raw)(
                    bodies[0], metadata=md, timeout=CALL_TIMEOUT
                )
                try:
                    next(answers, None)
                finally:
                    answers.cancel()
            else:
                answer = self.channel.unary_unary(path, **raw)(
                    bodies[0], metadata=md, timeout=CALL_TIMEOUT
                )
                if method.name == "CreateSession":  # random sessions must not pile up
                    created = spb.CreateSessionResponse.FromString(answer)
                    self._close(created.session_id, created.token)
        except grpc.RpcError as err:
            return err.code(), err.details() or ""
        return grpc.StatusCode.OK, ""

    def check(self, method: Method, bodies: list[bytes], who: str) -> None:
        """One example: a fresh session, the call, and no sign of a bug."""
        self.fresh_session()
        code, details = self.call(method, bodies, who)
        log = self.new_log()  # read before asserting: the next example starts after it
        event(f"{code.name}: {details[:40]}")  # `pytest --hypothesis-show-statistics` counts
        what = f"{method.name} of {_readable(method, bodies)}"
        assert code not in BUGS, f"{what} answered {code.name}: {details}"
        assert "Traceback" not in log, f"{what} logged:\n{log[-4000:]}"

    def new_log(self) -> str:
        text = self.proc.log()
        new, self._log_read = text[self._log_read :], len(text)
        return new

    def assert_alive(self) -> None:
        info = self.client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=CALL_TIMEOUT)
        assert info.ops
        assert "Traceback" not in self.new_log()

    def _close(self, session_id: str, token: str) -> None:
        request = spb.CloseSessionRequest(session_id=session_id)
        md = (("authorization", f"Bearer {token}"),)
        try:
            self.client.stub.CloseSession(request, metadata=md, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND, err


def _readable(method: Method, bodies: list[bytes]) -> str:
    """The requests as protobuf text where they parse (a reproducer to read), else bytes."""
    cls = message_factory.GetMessageClass(method.request)
    shown = []
    for body in bodies:
        try:
            shown.append(
                f"{{{text_format.MessageToString(cls.FromString(body), as_one_line=True)}}}"
            )
        except Exception:  # not a message: the bytes are the reproducer
            shown.append(repr(body[:200]) + (f" ({len(body)} bytes)" if len(body) > 200 else ""))
    return ", ".join(shown)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    log = tmp_path_factory.mktemp("fuzz") / "gradd-server.log"
    args = ("--max-session-bytes", "8M", "--max-session-tensors", "1000")
    proc = ServerProcess(log, *args, env={"GRADD_ADMIN_TOKEN": ADMIN_TOKEN})
    t = Target(proc)
    yield t
    t.client.close()
    proc.stop()


WHO = st.sampled_from(["session", "session", "session", "admin", "none"])


def _bodies(method: Method, one: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    return st.lists(one, min_size=1, max_size=3 if method.client_streaming else 1)


# Random bytes, small and (for the large-request reader) past 64 KiB: a head, then a filler.
RANDOM_BYTES = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda head, filler, n: head + filler * n,
        st.binary(max_size=64),
        st.binary(min_size=1, max_size=4),
        st.integers(0, 40_000),
    ),
)


def seed_requests(method: Method) -> list[bytes]:
    """Valid requests of a method, to be mutated: the fuzz session's, and for Execute a large
    one (its raw tensor read in place) as well as a small one."""
    if method.request is cpb.ExecuteRequest.DESCRIPTOR:
        small = [
            tensor("t", np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True),
            op("mul", Tensor("t"), Tensor("a"), outs=["u"]),
            op("sum", Tensor("u"), dim=(0, 1), outs=["l"]),
            cpb.Command(backward=cpb.Backward(handle="l")),
            cpb.Command(fetch=cpb.Fetch(handle="t", grad=True)),
            cpb.Command(graph=cpb.Graph(handle="l", params={"t": "t"})),
        ]
        large = [tensor("big", np.zeros(20_000, np.float32)), op("neg", Tensor("big"))]
        requests = [cpb.ExecuteRequest(session_id=SESSION_ID, commands=c) for c in (small, large)]
        return [r.SerializeToString() for r in requests]
    request = message_factory.GetMessageClass(method.request)()
    fields = request.DESCRIPTOR.fields_by_name
    for name, value in (("session_id", SESSION_ID), ("handle", "y"), ("label", "fuzz")):
        if name in fields:
            setattr(request, name, value)
    if "graph_every" in fields:
        request.graph_every = 1
    return [request.SerializeToString()]


def _fuzz(target: Target, method: Method, one: st.SearchStrategy[bytes]) -> None:
    """Send bodies drawn from `one` to `method`; the server must answer each well, and live."""
    target.new_log()  # each test answers for its own calls' log

    @FUZZ
    @given(bodies=_bodies(method, one), who=WHO)
    def run(bodies: list[bytes], who: str) -> None:
        target.check(method, bodies, who)

    run()
    target.assert_alive()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_random_bytes(target: Target, method: Method) -> None:
    _fuzz(target, method, RANDOM_BYTES)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_mutated_requests(target: Target, method: Method) -> None:
    _fuzz(target, method, st.sampled_from(seed_requests(method)).flatmap(mutated))


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_well_formed_messages(target: Target, method: Method) -> None:
    _fuzz(
        target, method, messages(method.request, target.known).map(lambda m: m.SerializeToString())
    )
