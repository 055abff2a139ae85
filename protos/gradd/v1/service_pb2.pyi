from gradd.v1 import command_pb2 as _command_pb2
from gradd.v1 import graph_pb2 as _graph_pb2
from gradd.v1 import tensor_pb2 as _tensor_pb2
from gradd.v1 import watch_pb2 as _watch_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerLimits(_message.Message):
    __slots__ = ("max_sessions", "max_session_bytes", "max_session_tensors", "idle_ttl_seconds", "max_message_bytes", "max_watchers_per_session", "watch_queue_size")
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_TENSORS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_WATCHERS_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    WATCH_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    max_sessions: int
    max_session_bytes: int
    max_session_tensors: int
    idle_ttl_seconds: float
    max_message_bytes: int
    max_watchers_per_session: int
    watch_queue_size: int
    def __init__(self, max_sessions: _Optional[int] = ..., max_session_bytes: _Optional[int] = ..., max_session_tensors: _Optional[int] = ..., idle_ttl_seconds: _Optional[float] = ..., max_message_bytes: _Optional[int] = ..., max_watchers_per_session: _Optional[int] = ..., watch_queue_size: _Optional[int] = ...) -> None: ...

class ServerInfoResponse(_message.Message):
    __slots__ = ("version", "devices", "default_device", "limits", "ops", "factories", "sessions", "durable")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DEVICE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    FACTORIES_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    DURABLE_FIELD_NUMBER: _ClassVar[int]
    version: str
    devices: _containers.RepeatedScalarFieldContainer[str]
    default_device: str
    limits: ServerLimits
    ops: _containers.RepeatedScalarFieldContainer[str]
    factories: _containers.RepeatedScalarFieldContainer[str]
    sessions: int
    durable: bool
    def __init__(self, version: _Optional[str] = ..., devices: _Optional[_Iterable[str]] = ..., default_device: _Optional[str] = ..., limits: _Optional[_Union[ServerLimits, _Mapping]] = ..., ops: _Optional[_Iterable[str]] = ..., factories: _Optional[_Iterable[str]] = ..., sessions: _Optional[int] = ..., durable: _Optional[bool] = ...) -> None: ...

class SessionLimits(_message.Message):
    __slots__ = ("max_bytes", "max_tensors")
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_TENSORS_FIELD_NUMBER: _ClassVar[int]
    max_bytes: int
    max_tensors: int
    def __init__(self, max_bytes: _Optional[int] = ..., max_tensors: _Optional[int] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("device", "seed", "limits", "idle_ttl_seconds", "label", "session_id")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    device: str
    seed: int
    limits: SessionLimits
    idle_ttl_seconds: float
    label: str
    session_id: str
    def __init__(self, device: _Optional[str] = ..., seed: _Optional[int] = ..., limits: _Optional[_Union[SessionLimits, _Mapping]] = ..., idle_ttl_seconds: _Optional[float] = ..., label: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session_id", "token", "device", "limits", "idle_ttl_seconds", "seed", "durable")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DURABLE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    token: str
    device: str
    limits: SessionLimits
    idle_ttl_seconds: float
    seed: int
    durable: bool
    def __init__(self, session_id: _Optional[str] = ..., token: _Optional[str] = ..., device: _Optional[str] = ..., limits: _Optional[_Union[SessionLimits, _Mapping]] = ..., idle_ttl_seconds: _Optional[float] = ..., seed: _Optional[int] = ..., durable: _Optional[bool] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("session_id", "handle", "grad", "metadata_only", "typed_values")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    GRAD_FIELD_NUMBER: _ClassVar[int]
    METADATA_ONLY_FIELD_NUMBER: _ClassVar[int]
    TYPED_VALUES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    handle: str
    grad: bool
    metadata_only: bool
    typed_values: bool
    def __init__(self, session_id: _Optional[str] = ..., handle: _Optional[str] = ..., grad: _Optional[bool] = ..., metadata_only: _Optional[bool] = ..., typed_values: _Optional[bool] = ...) -> None: ...

class GetGraphRequest(_message.Message):
    __slots__ = ("session_id", "handle", "params", "publish")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    handle: str
    params: _containers.ScalarMap[str, str]
    publish: bool
    def __init__(self, session_id: _Optional[str] = ..., handle: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., publish: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("session_id", "graph_every", "steps_only", "queue_size")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GRAPH_EVERY_FIELD_NUMBER: _ClassVar[int]
    STEPS_ONLY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    graph_every: int
    steps_only: bool
    queue_size: int
    def __init__(self, session_id: _Optional[str] = ..., graph_every: _Optional[int] = ..., steps_only: _Optional[bool] = ..., queue_size: _Optional[int] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SessionSummary(_message.Message):
    __slots__ = ("session_id", "label", "device", "age_seconds", "idle_seconds", "tensors", "bytes", "steps", "watchers", "limits")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    WATCHERS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    label: str
    device: str
    age_seconds: float
    idle_seconds: float
    tensors: int
    bytes: int
    steps: int
    watchers: int
    limits: SessionLimits
    def __init__(self, session_id: _Optional[str] = ..., label: _Optional[str] = ..., device: _Optional[str] = ..., age_seconds: _Optional[float] = ..., idle_seconds: _Optional[float] = ..., tensors: _Optional[int] = ..., bytes: _Optional[int] = ..., steps: _Optional[int] = ..., watchers: _Optional[int] = ..., limits: _Optional[_Union[SessionLimits, _Mapping]] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionSummary]
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionSummary, _Mapping]]] = ...) -> None: ...
