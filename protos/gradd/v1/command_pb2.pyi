from gradd.v1 import graph_pb2 as _graph_pb2
from gradd.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[Code]
    CANCELLED: _ClassVar[Code]
    UNKNOWN: _ClassVar[Code]
    INVALID_ARGUMENT: _ClassVar[Code]
    DEADLINE_EXCEEDED: _ClassVar[Code]
    NOT_FOUND: _ClassVar[Code]
    ALREADY_EXISTS: _ClassVar[Code]
    PERMISSION_DENIED: _ClassVar[Code]
    RESOURCE_EXHAUSTED: _ClassVar[Code]
    FAILED_PRECONDITION: _ClassVar[Code]
    ABORTED: _ClassVar[Code]
    OUT_OF_RANGE: _ClassVar[Code]
    UNIMPLEMENTED: _ClassVar[Code]
    INTERNAL: _ClassVar[Code]
    UNAVAILABLE: _ClassVar[Code]
    DATA_LOSS: _ClassVar[Code]
    UNAUTHENTICATED: _ClassVar[Code]
OK: Code
CANCELLED: Code
UNKNOWN: Code
INVALID_ARGUMENT: Code
DEADLINE_EXCEEDED: Code
NOT_FOUND: Code
ALREADY_EXISTS: Code
PERMISSION_DENIED: Code
RESOURCE_EXHAUSTED: Code
FAILED_PRECONDITION: Code
ABORTED: Code
OUT_OF_RANGE: Code
UNIMPLEMENTED: Code
INTERNAL: Code
UNAVAILABLE: Code
DATA_LOSS: Code
UNAUTHENTICATED: Code

class Value(_message.Message):
    __slots__ = ("tensor", "f", "i", "b", "s", "dtype", "ints", "slice", "none", "ellipsis", "tuple", "list")
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    F_FIELD_NUMBER: _ClassVar[int]
    I_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    INTS_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    NONE_FIELD_NUMBER: _ClassVar[int]
    ELLIPSIS_FIELD_NUMBER: _ClassVar[int]
    TUPLE_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    tensor: str
    f: float
    i: int
    b: bool
    s: str
    dtype: _tensor_pb2.DType
    ints: Ints
    slice: Slice
    none: NoneValue
    ellipsis: EllipsisValue
    tuple: ValueTuple
    list: ValueList
    def __init__(self, tensor: _Optional[str] = ..., f: _Optional[float] = ..., i: _Optional[int] = ..., b: _Optional[bool] = ..., s: _Optional[str] = ..., dtype: _Optional[_Union[_tensor_pb2.DType, str]] = ..., ints: _Optional[_Union[Ints, _Mapping]] = ..., slice: _Optional[_Union[Slice, _Mapping]] = ..., none: _Optional[_Union[NoneValue, _Mapping]] = ..., ellipsis: _Optional[_Union[EllipsisValue, _Mapping]] = ..., tuple: _Optional[_Union[ValueTuple, _Mapping]] = ..., list: _Optional[_Union[ValueList, _Mapping]] = ...) -> None: ...

class Ints(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[int]] = ...) -> None: ...

class Slice(_message.Message):
    __slots__ = ("start", "stop", "step")
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    start: int
    stop: int
    step: int
    def __init__(self, start: _Optional[int] = ..., stop: _Optional[int] = ..., step: _Optional[int] = ...) -> None: ...

class NoneValue(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EllipsisValue(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValueTuple(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, items: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, items: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class CreateTensor(_message.Message):
    __slots__ = ("out", "data", "requires_grad")
    OUT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_GRAD_FIELD_NUMBER: _ClassVar[int]
    out: str
    data: _tensor_pb2.TensorData
    requires_grad: bool
    def __init__(self, out: _Optional[str] = ..., data: _Optional[_Union[_tensor_pb2.TensorData, _Mapping]] = ..., requires_grad: _Optional[bool] = ...) -> None: ...

class Factory(_message.Message):
    __slots__ = ("out", "kind", "shape", "args", "dtype", "requires_grad")
    OUT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_GRAD_FIELD_NUMBER: _ClassVar[int]
    out: str
    kind: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    args: _containers.RepeatedCompositeFieldContainer[Value]
    dtype: _tensor_pb2.DType
    requires_grad: bool
    def __init__(self, out: _Optional[str] = ..., kind: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., args: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., dtype: _Optional[_Union[_tensor_pb2.DType, str]] = ..., requires_grad: _Optional[bool] = ...) -> None: ...

class ManualSeed(_message.Message):
    __slots__ = ("seed",)
    SEED_FIELD_NUMBER: _ClassVar[int]
    seed: int
    def __init__(self, seed: _Optional[int] = ...) -> None: ...

class Op(_message.Message):
    __slots__ = ("op", "args", "kwargs", "outs", "no_grad")
    class KwargsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    OP_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    OUTS_FIELD_NUMBER: _ClassVar[int]
    NO_GRAD_FIELD_NUMBER: _ClassVar[int]
    op: str
    args: _containers.RepeatedCompositeFieldContainer[Value]
    kwargs: _containers.MessageMap[str, Value]
    outs: _containers.RepeatedScalarFieldContainer[str]
    no_grad: bool
    def __init__(self, op: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., kwargs: _Optional[_Mapping[str, Value]] = ..., outs: _Optional[_Iterable[str]] = ..., no_grad: _Optional[bool] = ...) -> None: ...

class Backward(_message.Message):
    __slots__ = ("handle", "gradient", "retain_graph", "create_graph", "inputs")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_FIELD_NUMBER: _ClassVar[int]
    RETAIN_GRAPH_FIELD_NUMBER: _ClassVar[int]
    CREATE_GRAPH_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    handle: str
    gradient: str
    retain_graph: bool
    create_graph: bool
    inputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, handle: _Optional[str] = ..., gradient: _Optional[str] = ..., retain_graph: _Optional[bool] = ..., create_graph: _Optional[bool] = ..., inputs: _Optional[_Iterable[str]] = ...) -> None: ...

class GradOf(_message.Message):
    __slots__ = ("out", "handle")
    OUT_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    out: str
    handle: str
    def __init__(self, out: _Optional[str] = ..., handle: _Optional[str] = ...) -> None: ...

class SetGrad(_message.Message):
    __slots__ = ("handle", "grad")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    GRAD_FIELD_NUMBER: _ClassVar[int]
    handle: str
    grad: str
    def __init__(self, handle: _Optional[str] = ..., grad: _Optional[str] = ...) -> None: ...

class SetData(_message.Message):
    __slots__ = ("handle", "data")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    handle: str
    data: str
    def __init__(self, handle: _Optional[str] = ..., data: _Optional[str] = ...) -> None: ...

class ZeroGrad(_message.Message):
    __slots__ = ("handles", "set_to_none")
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    SET_TO_NONE_FIELD_NUMBER: _ClassVar[int]
    handles: _containers.RepeatedScalarFieldContainer[str]
    set_to_none: bool
    def __init__(self, handles: _Optional[_Iterable[str]] = ..., set_to_none: _Optional[bool] = ...) -> None: ...

class OptimizerStep(_message.Message):
    __slots__ = ("kind", "groups")
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    groups: _containers.RepeatedCompositeFieldContainer[OptimizerGroup]
    def __init__(self, kind: _Optional[str] = ..., groups: _Optional[_Iterable[_Union[OptimizerGroup, _Mapping]]] = ...) -> None: ...

class OptimizerGroup(_message.Message):
    __slots__ = ("options", "params")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    options: _containers.ScalarMap[str, float]
    params: _containers.RepeatedCompositeFieldContainer[OptimizerParam]
    def __init__(self, options: _Optional[_Mapping[str, float]] = ..., params: _Optional[_Iterable[_Union[OptimizerParam, _Mapping]]] = ...) -> None: ...

class OptimizerParam(_message.Message):
    __slots__ = ("param", "state", "init", "step")
    PARAM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    param: str
    state: _containers.RepeatedScalarFieldContainer[str]
    init: bool
    step: float
    def __init__(self, param: _Optional[str] = ..., state: _Optional[_Iterable[str]] = ..., init: _Optional[bool] = ..., step: _Optional[float] = ...) -> None: ...

class RetainGrad(_message.Message):
    __slots__ = ("handle",)
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class SetRequiresGrad(_message.Message):
    __slots__ = ("handle", "requires_grad")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_GRAD_FIELD_NUMBER: _ClassVar[int]
    handle: str
    requires_grad: bool
    def __init__(self, handle: _Optional[str] = ..., requires_grad: _Optional[bool] = ...) -> None: ...

class Detach(_message.Message):
    __slots__ = ("out", "handle")
    OUT_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    out: str
    handle: str
    def __init__(self, out: _Optional[str] = ..., handle: _Optional[str] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("handles",)
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    handles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, handles: _Optional[_Iterable[str]] = ...) -> None: ...

class Fetch(_message.Message):
    __slots__ = ("handle", "grad", "metadata_only", "typed_values")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    GRAD_FIELD_NUMBER: _ClassVar[int]
    METADATA_ONLY_FIELD_NUMBER: _ClassVar[int]
    TYPED_VALUES_FIELD_NUMBER: _ClassVar[int]
    handle: str
    grad: bool
    metadata_only: bool
    typed_values: bool
    def __init__(self, handle: _Optional[str] = ..., grad: _Optional[bool] = ..., metadata_only: _Optional[bool] = ..., typed_values: _Optional[bool] = ...) -> None: ...

class Graph(_message.Message):
    __slots__ = ("handle", "params", "publish")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    handle: str
    params: _containers.ScalarMap[str, str]
    publish: bool
    def __init__(self, handle: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., publish: _Optional[bool] = ...) -> None: ...

class CustomFunction(_message.Message):
    __slots__ = ("name", "inputs", "outputs", "outs", "differentiable", "dirty", "grad_outputs", "backward", "grad_inputs", "once_differentiable")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTS_FIELD_NUMBER: _ClassVar[int]
    DIFFERENTIABLE_FIELD_NUMBER: _ClassVar[int]
    DIRTY_FIELD_NUMBER: _ClassVar[int]
    GRAD_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    GRAD_INPUTS_FIELD_NUMBER: _ClassVar[int]
    ONCE_DIFFERENTIABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    outs: _containers.RepeatedScalarFieldContainer[str]
    differentiable: _containers.RepeatedScalarFieldContainer[bool]
    dirty: _containers.RepeatedScalarFieldContainer[bool]
    grad_outputs: _containers.RepeatedScalarFieldContainer[str]
    backward: _containers.RepeatedCompositeFieldContainer[Command]
    grad_inputs: _containers.RepeatedScalarFieldContainer[str]
    once_differentiable: bool
    def __init__(self, name: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., outputs: _Optional[_Iterable[str]] = ..., outs: _Optional[_Iterable[str]] = ..., differentiable: _Optional[_Iterable[bool]] = ..., dirty: _Optional[_Iterable[bool]] = ..., grad_outputs: _Optional[_Iterable[str]] = ..., backward: _Optional[_Iterable[_Union[Command, _Mapping]]] = ..., grad_inputs: _Optional[_Iterable[str]] = ..., once_differentiable: _Optional[bool] = ...) -> None: ...

class CompileProgram(_message.Message):
    __slots__ = ("program", "commands", "inputs", "outputs", "numbers")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    program: str
    commands: _containers.RepeatedCompositeFieldContainer[Command]
    inputs: _containers.RepeatedScalarFieldContainer[str]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    numbers: _containers.RepeatedCompositeFieldContainer[ProgramNumber]
    def __init__(self, program: _Optional[str] = ..., commands: _Optional[_Iterable[_Union[Command, _Mapping]]] = ..., inputs: _Optional[_Iterable[str]] = ..., outputs: _Optional[_Iterable[str]] = ..., numbers: _Optional[_Iterable[_Union[ProgramNumber, _Mapping]]] = ...) -> None: ...

class ProgramNumber(_message.Message):
    __slots__ = ("command", "position")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    command: int
    position: int
    def __init__(self, command: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class RunProgram(_message.Message):
    __slots__ = ("program", "inputs", "numbers", "outs")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    OUTS_FIELD_NUMBER: _ClassVar[int]
    program: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    numbers: _containers.RepeatedScalarFieldContainer[float]
    outs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, program: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., numbers: _Optional[_Iterable[float]] = ..., outs: _Optional[_Iterable[str]] = ...) -> None: ...

class FreeProgram(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("tensor", "factory", "manual_seed", "op", "backward", "grad_of", "zero_grad", "retain_grad", "requires_grad", "detach", "release", "fetch", "graph", "set_grad", "set_data", "custom_function", "optimizer_step", "tape", "compile_program", "run_program", "free_program")
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    FACTORY_FIELD_NUMBER: _ClassVar[int]
    MANUAL_SEED_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    GRAD_OF_FIELD_NUMBER: _ClassVar[int]
    ZERO_GRAD_FIELD_NUMBER: _ClassVar[int]
    RETAIN_GRAD_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_GRAD_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    FETCH_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    SET_GRAD_FIELD_NUMBER: _ClassVar[int]
    SET_DATA_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_STEP_FIELD_NUMBER: _ClassVar[int]
    TAPE_FIELD_NUMBER: _ClassVar[int]
    COMPILE_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    RUN_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FREE_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    tensor: CreateTensor
    factory: Factory
    manual_seed: ManualSeed
    op: Op
    backward: Backward
    grad_of: GradOf
    zero_grad: ZeroGrad
    retain_grad: RetainGrad
    requires_grad: SetRequiresGrad
    detach: Detach
    release: Release
    fetch: Fetch
    graph: Graph
    set_grad: SetGrad
    set_data: SetData
    custom_function: CustomFunction
    optimizer_step: OptimizerStep
    tape: bytes
    compile_program: CompileProgram
    run_program: RunProgram
    free_program: FreeProgram
    def __init__(self, tensor: _Optional[_Union[CreateTensor, _Mapping]] = ..., factory: _Optional[_Union[Factory, _Mapping]] = ..., manual_seed: _Optional[_Union[ManualSeed, _Mapping]] = ..., op: _Optional[_Union[Op, _Mapping]] = ..., backward: _Optional[_Union[Backward, _Mapping]] = ..., grad_of: _Optional[_Union[GradOf, _Mapping]] = ..., zero_grad: _Optional[_Union[ZeroGrad, _Mapping]] = ..., retain_grad: _Optional[_Union[RetainGrad, _Mapping]] = ..., requires_grad: _Optional[_Union[SetRequiresGrad, _Mapping]] = ..., detach: _Optional[_Union[Detach, _Mapping]] = ..., release: _Optional[_Union[Release, _Mapping]] = ..., fetch: _Optional[_Union[Fetch, _Mapping]] = ..., graph: _Optional[_Union[Graph, _Mapping]] = ..., set_grad: _Optional[_Union[SetGrad, _Mapping]] = ..., set_data: _Optional[_Union[SetData, _Mapping]] = ..., custom_function: _Optional[_Union[CustomFunction, _Mapping]] = ..., optimizer_step: _Optional[_Union[OptimizerStep, _Mapping]] = ..., tape: _Optional[bytes] = ..., compile_program: _Optional[_Union[CompileProgram, _Mapping]] = ..., run_program: _Optional[_Union[RunProgram, _Mapping]] = ..., free_program: _Optional[_Union[FreeProgram, _Mapping]] = ...) -> None: ...

class CommandError(_message.Message):
    __slots__ = ("index", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    code: Code
    message: str
    def __init__(self, index: _Optional[int] = ..., code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("index", "tensor", "graph")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    index: int
    tensor: _tensor_pb2.TensorValue
    graph: _graph_pb2.GraphSnapshot
    def __init__(self, index: _Optional[int] = ..., tensor: _Optional[_Union[_tensor_pb2.TensorValue, _Mapping]] = ..., graph: _Optional[_Union[_graph_pb2.GraphSnapshot, _Mapping]] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("session_id", "commands", "sequence")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    commands: _containers.RepeatedCompositeFieldContainer[Command]
    sequence: int
    def __init__(self, session_id: _Optional[str] = ..., commands: _Optional[_Iterable[_Union[Command, _Mapping]]] = ..., sequence: _Optional[int] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("sequence", "applied", "error", "results", "durable_sequence")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    DURABLE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    applied: int
    error: CommandError
    results: _containers.RepeatedCompositeFieldContainer[CommandResult]
    durable_sequence: int
    def __init__(self, sequence: _Optional[int] = ..., applied: _Optional[int] = ..., error: _Optional[_Union[CommandError, _Mapping]] = ..., results: _Optional[_Iterable[_Union[CommandResult, _Mapping]]] = ..., durable_sequence: _Optional[int] = ...) -> None: ...
