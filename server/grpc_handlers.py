"""Registering the servicer: the generated registration, except that requests may keep their
wire bytes (`WithWire`) and answers may be bytes already framed (see answer_bytes), bare or with
the message they were framed from (`Framed`)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from gradd.v1 import service_pb2 as spb

SERVICE = spb.DESCRIPTOR.services_by_name["AutogradService"]


class WithWire:
    """A parsed request that keeps the wire bytes it came from, so that large fields can be
    read in place. Attribute reads go to the message: it reads like one (to interceptors too)."""

    __slots__ = ("message", "wire")

    def __init__(self, message: Any, wire: bytes) -> None:
        self.message = message
        self.wire = wire

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)


class Framed:
    """An answer framed as wire bytes, with the message it was framed from (without its bulky
    fields) for whoever reads the answer before it is sent, such as interceptors."""

    __slots__ = ("message", "wire")

    def __init__(self, message: Any, wire: bytes) -> None:
        self.message = message
        self.wire = wire

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)


def _serialize(answer: Any) -> bytes:
    if isinstance(answer, bytes):
        return answer
    if isinstance(answer, Framed):
        return answer.wire
    return answer.SerializeToString()


def _keeping_wire(parse: Any) -> Any:
    def deserialize(wire: bytes) -> WithWire:
        return WithWire(parse(wire), wire)

    return deserialize


def add_autograd_service(
    servicer: Any, server: grpc.Server, raw_requests: frozenset[str] = frozenset()
) -> None:
    """Serve every RPC of gradd.v1.AutogradService from `servicer`'s methods of the same name.

    Methods named in `raw_requests` get their requests as `WithWire`: message and bytes.
    """
    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
    }
    handlers = {}
    for method in SERVICE.methods:
        parse = message_factory.GetMessageClass(method.input_type).FromString
        if method.name in raw_requests:
            parse = _keeping_wire(parse)
        make = kinds[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=parse,
            response_serializer=_serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
