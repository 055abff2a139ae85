"""Registering the servicer: the generated registration, except that a handler may answer with
bytes it already framed (see answer_bytes) as well as with a message."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from gradd.v1 import service_pb2 as spb

SERVICE = spb.DESCRIPTOR.services_by_name["AutogradService"]


def _serialize(answer: Any) -> bytes:
    return answer if isinstance(answer, bytes) else answer.SerializeToString()


def add_autograd_service(
    servicer: Any, server: grpc.Server, raw_requests: frozenset[str] = frozenset()
) -> None:
    """Serve every RPC of gradd.v1.AutogradService from `servicer`'s methods of the same name.

    Methods named in `raw_requests` get their requests as wire bytes, to parse themselves.
    """
    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
    }
    handlers = {}
    for method in SERVICE.methods:
        request = message_factory.GetMessageClass(method.input_type)
        make = kinds[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=None if method.name in raw_requests else request.FromString,
            response_serializer=_serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
