"""A session on a gradd server: tensors live there, ops are queued here and streamed.

``RemoteSession`` opens the session (CreateSession), owns the pipeline (``CommandStream``) and
hands out ``RemoteTensor``s. Factories, ``tensor()`` and every op return at once; values are
fetched when the user reads them.
"""

from __future__ import annotations

import atexit
import itertools
import shlex
import types
import uuid
import weakref
from typing import Any

import gradd.engine as ge
import grpc
import numpy as np
from gradd.engine import dtypes as dt
from gradd.engine import functional as engine_functional
from gradd.engine import linalg as engine_linalg
from gradd.engine.device import CPU, Device
from gradd.engine.errors import NOT_FLOAT_GRAD
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc
from gradd.wire.dtypes import NP_DTYPES, WIRE_DTYPES

from . import command_encoding as enc
from . import remote_autograd
from .autograd_namespace import autograd_namespace
from .call_site import user_site
from .command_stream import CommandStream
from .endpoint import Endpoint, Pem
from .errors import GraddError, UnimplementedError, from_rpc_error
from .graph_pictures import picture_of
from .mirror_graph import OpaqueNode
from .op_recording import OPS, remote_function, tape_codes
from .remote_tensor import RemoteTensor, new_tensor
from .session_base import Session
from .watch_events import WatchStream

MAX_MESSAGE = (1 << 31) - 1  # the server enforces its own (ServerInfo.limits.max_message_bytes)
CALL_TIMEOUT = 60.0  # unary calls, when connect() got no timeout
_FUNCTIONS = {d.function: remote_function(d) for d in OPS.values() if d.function}
_FUNCTIONAL = {n: remote_function(OPS[n]) for n in engine_functional.NAMES}
_LINALG = {n: remote_function(OPS[op]) for n, op in engine_linalg.NAMES.items()}
_WIRE_NATIVE = {d.np for d in dt.ALL}
LARGE_TENSOR_BYTES = 1 << 20  # tensors this large are sent from their array's own memory
_OPEN: weakref.WeakSet = weakref.WeakSet()  # sessions to close at interpreter exit


@atexit.register
def _close_open_sessions() -> None:
    """A script that ends without close() still frees its sessions on the server."""
    for session in list(_OPEN):
        try:
            session.close()
        except Exception:  # the server is gone: nothing left to free
            pass


def _factory_method(fdef: Any) -> Any:
    """``s.<factory>``: the factory's plan checks the arguments and gives the result's
    metadata here; the server runs the same declaration (a tensor overload is its op)."""
    takes = ("generator", "device") if fdef.draws else ("device",)

    def method(self: RemoteSession, *args: Any, **kw: Any) -> RemoteTensor:
        op = fdef.op_for(args, kw)
        if op is not None:
            if kw.pop("generator", None) is not None:
                raise UnimplementedError("remote sessions draw from the session's own generator")
            return _FUNCTIONS.get(op, remote_function(OPS[op]))(*args, **kw)
        own = {k: kw.pop(k) for k in takes if k in kw}
        return self._send_factory(fdef.name, fdef.plan(*args, **kw), own)

    method.__name__ = method.__qualname__ = fdef.name
    method.__doc__ = fdef.fn.__doc__
    return method


class RemoteSession(Session):
    """A session on a gradd server (``gradd.connect("host:port")``)."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        timeout: float | None = None,
        device: str | None = None,
        seed: int | None = None,
        label: str = "",
        tls: bool | None = None,
        root_certificates: Pem = None,
        client_certificate: Pem = None,
        client_key: Pem = None,
        reconnect_timeout: float = 60.0,
    ) -> None:
        self.target = target
        self._endpoint = Endpoint.of(
            target,
            tls=tls,
            root_certificates=root_certificates,
            client_certificate=client_certificate,
            client_key=client_key,
        )
        self._closed = False
        self._devices: list[str] | None = None  # ServerInfo's, asked for once
        self._tracing = 0
        self._compile_trace: Any = None  # the compiled function being traced (s.compile)
        self._leaves: weakref.WeakSet = weakref.WeakSet()  # leaves that require grad
        self._slots = itertools.count()  # slot numbers never used yet (freed ones are reused)
        self._call_timeout = timeout or CALL_TIMEOUT
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            # A restarted server is found again within a second, not gRPC's default of minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        self._options = options
        self._channel = self._endpoint.channel(options)
        self._stub = spb_grpc.AutogradServiceStub(self._channel)
        # The client picks the session id and sends it with every call (x-gradd-session), so a
        # proxy in front of several servers routes all of a session's calls to one of them.
        session_id = uuid.uuid4().hex
        route = (("x-gradd-session", session_id),)
        request = spb.CreateSessionRequest(
            device=str(device or ""), label=label, session_id=session_id
        )
        if seed is not None:
            request.seed = seed
        auth = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            created = self._stub.CreateSession(
                request, timeout=self._call_timeout, metadata=auth + route
            )
        except grpc.RpcError as err:
            self._channel.close()
            raise from_rpc_error(err, f"opening a session on {target}", self._endpoint) from None
        self.id = created.session_id
        self.token = created.token  # the session's secret: whoever holds it may use the session
        self.seed = created.seed
        self._md = (("authorization", f"Bearer {created.token}"), *route)
        self.device = CPU if created.device == "cpu" else Device(created.device, np)
        self._host_device = self.device  # engine tensors built from fetched values print like it
        # A durable session (the server has --state-dir) survives a restart of the server: the
        # stream keeps what is not yet durable and replays it (command_stream).
        self.durable = created.durable
        self._stream = CommandStream(
            self._channel,
            self.id,
            self._md,
            timeout=timeout,
            reconnect_timeout=float(reconnect_timeout) if created.durable else 0.0,
        )
        self._push = self._stream.push
        # Ops go as tape records (Command.tape) with the op codes the server announces in
        # ServerInfo.ops; without them (a server that does not answer it), as readable Ops.
        self._codes: dict[Any, bytes] = {}
        self._push_record: Any = None
        try:
            info = self._stub.ServerInfo(
                spb.ServerInfoRequest(), timeout=self._call_timeout, metadata=self._md
            )
        except grpc.RpcError:
            pass
        else:
            self._devices = list(info.devices)
            self._codes = tape_codes(info.ops)
            self._push_record = self._stream.push_record
        self.functional = types.SimpleNamespace(**_FUNCTIONAL)
        self.autograd = autograd_namespace(remote_autograd.backward, remote_autograd.grad)
        self.linalg = types.SimpleNamespace(**_LINALG)
        _OPEN.add(self)

    def _functions(self) -> dict[str, Any]:
        return _FUNCTIONS

    def _check_device(self, device: Any) -> None:
        if device is not None and str(device).split(":")[0] != self.device.type:
            raise UnimplementedError(
                f"this session's tensors live on {self.device.type}; moving them to {device} "
                "is not supported (open a session with device=...)"
            )

    # --- making tensors ------------------------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        """Seed the session's random stream on the server (``torch.manual_seed``)."""
        self._push(enc.manual_seed(int(seed)), ("manual_seed", *user_site()))

    def tensor(
        self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> RemoteTensor:
        """A new leaf tensor copied from ``data`` (lists, scalars, NumPy arrays, tensors)."""
        self._check_device(device)
        if type(data) is RemoteTensor:
            t = data.detach().clone()
            t = t if dtype is None else t.to(dtype)
            return t.requires_grad_() if requires_grad else t
        if dtype is None and isinstance(data, np.ndarray) and data.dtype in _WIRE_NATIVE:
            array, d = data, dt.from_numpy(data.dtype)  # sent from its own memory: no copy
            if requires_grad and not d.is_floating_point:
                raise RuntimeError(NOT_FLOAT_GRAD)
        else:
            # The engine's rules, on the host: the values go to the server from there.
            local = ge.tensor(data, dtype=dtype, device=CPU, requires_grad=requires_grad)
            array, d = local._data, local.dtype
        # Little-endian and C order for the wire; not ascontiguousarray, which makes 0-d 1-d.
        array = np.asarray(array, dtype=array.dtype.newbyteorder("<"))
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        t = new_tensor(self, tuple(array.shape), d, bool(requires_grad), None)
        raw = memoryview(array.reshape(-1)).cast("B") if array.size else b""
        wire = WIRE_DTYPES[d.name]
        parts = enc.create_tensor_parts(t._h, wire, array.shape, raw, bool(requires_grad))
        site = ("tensor", *user_site())
        if len(raw) >= LARGE_TENSOR_BYTES:
            self._stream.send_alone(parts, site)  # joined once, around the array's memory
        else:
            self._push(b"".join(parts), site)
        return t

    def _send_factory(self, kind: str, plan: Any, kw: dict) -> RemoteTensor:
        """Queue one Factory command for a planned call (metadata from the plan, no wait)."""
        if kw.get("generator") is not None:
            raise UnimplementedError("remote sessions draw from the session's own generator")
        self._check_device(kw.get("device"))
        t = new_tensor(self, plan.shape, plan.dtype, plan.requires_grad, None)
        wire = WIRE_DTYPES[plan.dtype.name] if plan.given is not None else 0
        cmd = enc.factory(t._h, kind, plan.shape, plan.args, wire, plan.requires_grad)
        self._push(cmd, (kind, *user_site(3)))
        return t

    def as_tensor(self, data: Any, dtype: Any = None, device: Any = None) -> RemoteTensor:
        """``data`` itself when already this session's tensor of that dtype, else a new one."""
        self._check_device(device)
        if type(data) is RemoteTensor and data._s is self:
            return data if dtype is None else data.to(dtype)
        return self.tensor(data, dtype=dtype)

    def compile(self, fn: Any = None, *, fullgraph: bool = False, **options: Any) -> Any:
        """``torch.compile``: ``fn`` traced on its first call and run as one command by later
        calls whose guards hold (see gradd.compiled_function); a decorator without ``fn``.
        ``options`` (backend, mode, dynamic, ...) are accepted and change nothing."""
        from .compiled_function import compile_for

        return compile_for(self, fn, fullgraph=fullgraph)

    # --- reading back (these wait) -------------------------------------------------------
    def _fetch_array(self, t: RemoteTensor, grad: bool = False) -> np.ndarray:
        result = self._stream.request(enc.fetch(t._h, grad), ("fetch", *user_site(3)))
        return _array_of(result.tensor.data)

    def _fetch_arrays(self, tensors: list[RemoteTensor]) -> list[np.ndarray]:
        """Several tensors' values in one round trip (one batch of fetches)."""
        if not tensors:
            return []
        cmds = [enc.fetch(t._h) for t in tensors]
        results = self._stream.request_all(cmds, ("fetch", *user_site(3)))
        return [_array_of(r.tensor.data) for r in results]

    def _host_arrays(self, tensors: list) -> list:
        """This session's tensors in one round trip; any other tensor read as it reads."""
        own = [t for t in tensors if type(t) is RemoteTensor and t._s is self]
        fetched = dict(zip(map(id, own), self._fetch_arrays(own), strict=True))
        return [fetched.get(id(t)) if id(t) in fetched else t.detach().numpy() for t in tensors]

    def _adopt_metadata(self, t: RemoteTensor) -> None:
        """Take a tensor's autograd metadata from the server (a wait): for grads made with
        create_graph, whose graph the client does not mirror."""
        result = self._stream.request(enc.fetch(t._h, metadata_only=True), ("fetch", *user_site(3)))
        info = result.tensor.info
        t._rg = info.requires_grad
        if info.grad_fn:
            t.grad_fn = OpaqueNode(None, info.grad_fn, (), ())

    def _graph(self, t: RemoteTensor, params: dict[str, Any]) -> Any:
        handles = {}
        for label, p in params.items():
            if type(p) is not RemoteTensor or p._s is not self:
                raise TypeError(f"make_dot params[{label!r}] is not a tensor of this session")
            handles[label] = p._h
        result = self._stream.request(enc.graph(t._h, handles), ("make_dot", *user_site(3)))
        return picture_of(result.graph)

    def available_devices(self) -> list[str]:
        """The devices the server lists in its ServerInfo ("cpu", "cuda", "cuda:0", ...)."""
        if self._devices is None:
            try:
                info = self._stub.ServerInfo(
                    spb.ServerInfoRequest(), timeout=self._call_timeout, metadata=self._md
                )
            except grpc.RpcError as err:
                raise from_rpc_error(
                    err, f"asking {self.target} for its devices", self._endpoint
                ) from None
            self._devices = list(info.devices)
        return list(self._devices)

    def synchronize(self) -> None:
        """Wait until the server has applied everything queued; raise its first error."""
        if not self._closed:
            self._stream.synchronize()

    def flush(self) -> None:
        """Send what is queued now, without waiting (e.g. so that watchers see it)."""
        self._stream.flush()

    def watch(self, graph_every: int = 0, steps_only: bool = False) -> WatchStream:
        """An iterator of this session's events: WatchStarted once the watcher is registered,
        a StepEvent per backward (with the loss), GraphEvents (graph snapshots), and
        SessionEnded last. Iterate it on another thread."""
        request = spb.WatchRequest(
            session_id=self.id, graph_every=graph_every, steps_only=steps_only
        )
        # A channel of its own, so that closing the session lets the watcher read SessionEnded.
        channel = self._endpoint.channel(self._options)
        call = spb_grpc.AutogradServiceStub(channel).Watch(request, metadata=self._md)
        return WatchStream(call, channel)

    def watch_command(self) -> str:
        """The shell lines that watch this session from another terminal: `gradd watch` and
        `gradd dashboard`, with its token in GRADD_TOKEN (so it is not on their command line,
        which `ps` shows). They hold the session's secret token: show them only to whoever may
        use the session."""
        head = f"GRADD_TOKEN={shlex.quote(self.token)}"
        target, sid = shlex.quote(self.target), shlex.quote(self.id)
        return (
            f"{head} gradd watch {target} {sid}\n"
            f"{head} gradd dashboard {target} {sid}   # then open http://127.0.0.1:8080/"
        )

    def close(self) -> None:
        """Close the session on the server (its tensors are freed) and the connection."""
        if self._closed:
            return
        try:  # what was queued still happens (its watchers see its steps) before the end
            self._stream.synchronize()
        except GraddError:
            pass  # reported at a wait, or the server is gone: nothing more to do here
        self._closed = True
        _OPEN.discard(self)
        self._push = _closed_push
        self._push_record = None
        self._stream.close()
        try:
            self._stub.CloseSession(
                spb.CloseSessionRequest(session_id=self.id), metadata=self._md, timeout=5
            )
        except grpc.RpcError:
            pass  # already gone (expired, server stopped): nothing left to free
        finally:
            self._channel.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<gradd session {self.id} on {self.target} ({self.device.type}, {state})>"


def _array_of(data: Any) -> np.ndarray:
    """A fetched tensor's values: a writable, native-order copy of the wire bytes."""
    array = np.frombuffer(data.raw, dtype=NP_DTYPES[data.dtype]).reshape(tuple(data.shape))
    return array.astype(array.dtype.newbyteorder("="))


def _closed_push(cmd: bytes, site: tuple) -> None:
    raise GraddError("this gradd session is closed", code_name="FAILED_PRECONDITION")


for _fdef in ge.FACTORIES.values():
    setattr(RemoteSession, _fdef.name, _factory_method(_fdef))
del _fdef
