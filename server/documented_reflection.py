"""Server reflection that serves gradd.v1 with its .proto comments.

grpc_reflection serializes each file with ``FileDescriptor.CopyToProto``, which has no comments:
``grpcurl describe`` would show bare messages. ``make protos`` writes the descriptors with their
source info (``protos/gradd/v1/gradd_v1.binpb``); this pool hands those to reflection instead.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool


def _documented_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    data = resources.files("gradd.v1").joinpath("gradd_v1.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    for f in files:
        for message in f.message_type:
            _drop_json_names(message)
    return {f.name: f for f in files}


def _drop_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    # protoc records each field's camelCase JSON name; the pool's own descriptors do not, and
    # without them grpcurl keeps printing the .proto's field names (session_id), as documented.
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _drop_json_names(nested)


class _DocumentedFile:
    """A file descriptor whose ``CopyToProto`` includes the comments, when we have them."""

    def __init__(self, descriptor: Any, documented: dict) -> None:
        self._descriptor = descriptor
        self._documented = documented
        self.name = descriptor.name

    @property
    def dependencies(self) -> list[_DocumentedFile]:
        return [_DocumentedFile(d, self._documented) for d in self._descriptor.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:  # noqa: N802
        documented = self._documented.get(self.name)
        if documented is None:
            self._descriptor.CopyToProto(proto)
        else:
            proto.CopyFrom(documented)


class DocumentedPool:
    """The default descriptor pool, answering file lookups with documented files."""

    def __init__(self) -> None:
        self._pool = descriptor_pool.Default()
        self._documented = _documented_files()

    def FindFileByName(self, name: str) -> _DocumentedFile:  # noqa: N802 - the pool's API
        return _DocumentedFile(self._pool.FindFileByName(name), self._documented)

    def FindFileContainingSymbol(self, symbol: str) -> _DocumentedFile:  # noqa: N802
        return _DocumentedFile(self._pool.FindFileContainingSymbol(symbol), self._documented)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)
