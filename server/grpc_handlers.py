"""Registering the servicer: the generated registration, except that some requests have their
own deserializers (see request_views) and answers may be bytes already framed (see
answer_bytes), bare or with the message they were framed from (`Framed`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from gradd.v1 import service_pb2 as spb

SERVICE = spb.DESCRIPTOR.services_by_name["AutogradService"]


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


def add_autograd_service(
    servicer: Any, server: grpc.Server, deserializers: dict[str, Callable[[bytes], Any]]
) -> None:
    """Serve every RPC of gradd.v1.AutogradService from `servicer`'s methods of the same name;
    `deserializers` replace the generated parsing of some methods' requests."""
    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
    }
    handlers = {}
    for method in SERVICE.methods:
        parse = message_factory.GetMessageClass(method.input_type).FromString
        parse = deserializers.get(method.name, parse)
        make = kinds[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=parse,
            response_serializer=_serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
