from gradd.v1 import graph_pb2 as _graph_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StepEvent(_message.Message):
    __slots__ = ("step", "loss", "handle")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    handle: str
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., handle: _Optional[str] = ...) -> None: ...

class GraphEvent(_message.Message):
    __slots__ = ("step", "reason", "handle", "graph")
    STEP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    step: int
    reason: str
    handle: str
    graph: _graph_pb2.GraphSnapshot
    def __init__(self, step: _Optional[int] = ..., reason: _Optional[str] = ..., handle: _Optional[str] = ..., graph: _Optional[_Union[_graph_pb2.GraphSnapshot, _Mapping]] = ...) -> None: ...

class WatchStartedEvent(_message.Message):
    __slots__ = ("step",)
    STEP_FIELD_NUMBER: _ClassVar[int]
    step: int
    def __init__(self, step: _Optional[int] = ...) -> None: ...

class SessionEndedEvent(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("seq", "timestamp", "missed", "missed_total", "step", "graph", "ended", "started")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    MISSED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    timestamp: float
    missed: int
    missed_total: int
    step: StepEvent
    graph: GraphEvent
    ended: SessionEndedEvent
    started: WatchStartedEvent
    def __init__(self, seq: _Optional[int] = ..., timestamp: _Optional[float] = ..., missed: _Optional[int] = ..., missed_total: _Optional[int] = ..., step: _Optional[_Union[StepEvent, _Mapping]] = ..., graph: _Optional[_Union[GraphEvent, _Mapping]] = ..., ended: _Optional[_Union[SessionEndedEvent, _Mapping]] = ..., started: _Optional[_Union[WatchStartedEvent, _Mapping]] = ...) -> None: ...
