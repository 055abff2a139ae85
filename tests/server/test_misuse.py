"""Misuse of the protocol, as measured against a real gradd-server: malformed bodies, huge names,
tensors whose data contradicts them and nested Values. Each is INVALID_ARGUMENT (or NOT_FOUND
for an unknown name) with a short message, and the server goes on."""

from __future__ import annotations

from pathlib import Path

import grpc
from gradd.server import errors, op_args, request_views, session_store, wire_tensor
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import tensor_pb2 as tpb
from server_harness import ADMIN_TOKEN, Client, Tensor, op, status, tensor, value

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SHORT = 1000  # characters: a status message fits any client's metadata limit with room


def _raw_execute(client: Client, session, body: bytes):
    call = client.channel.unary_unary(
        "/gradd.v1.AutogradService/Execute", request_serializer=None, response_deserializer=None
    )
    return call(body, metadata=session.md, timeout=30)


def test_an_endless_varint_is_a_malformed_request_answered_at_once(client, session):
    # 0x18 is `sequence` as a varint; 600 KB of continuation bytes took 12.7 s and froze the
    # server. The deadline is generous: it only catches a return of the quadratic parse.
    code, message = status(lambda: _raw_execute(client, session, b"\x18" + b"\xff" * 600_000))
    assert code == INVALID and "malformed request" in message and "varint" in message
    code, message = status(lambda: _raw_execute(client, session, b"\x12\x00" * 40_000))
    assert code == INVALID and "more than 16384 commands" in message
    assert client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=30).version


def test_long_names_are_refused_or_cut(server, client, session):
    label = "l" * 5_000_000
    code, message = status(lambda: client.session(label=label))
    assert code == INVALID and "label has at most 256 characters" in message
    assert "(5000000 characters)" in message and len(message) < SHORT
    client.session(label="x" * 256).close()  # the maximum itself is fine
    # Unknown names are echoed cut, so the status fits the client's 8 KiB metadata limit.
    name = "o" * 100_000
    code, message = status(lambda: session.execute(op(name, Tensor("a"))))
    assert code == INVALID and "unknown op 'oooo" in message and len(message) < SHORT
    assert "(100000 characters)" in message
    code, message = status(lambda: session.fetch("h" * 100_000))
    assert code == grpc.StatusCode.NOT_FOUND and len(message) < SHORT
    code, message = status(lambda: session.execute(op("neg", Tensor("h" * 100_000))))
    assert code == grpc.StatusCode.NOT_FOUND and "(100000 characters)" in message
    kind = cpb.Command(factory=cpb.Factory(out="z", kind="k" * 100_000))
    code, message = status(lambda: session.execute(kind))
    assert code == INVALID and "unknown factory" in message and len(message) < SHORT
    request = spb.FetchRequest(session_id="s" * 100_000, handle="a")
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)  # only it learns NOT_FOUND
    code, message = status(lambda: client.stub.Fetch(request, metadata=admin, timeout=30))
    assert code == grpc.StatusCode.NOT_FOUND and len(message) < SHORT
    session.execute(tensor("a", [1.0, -1.0]))
    code, message = status(
        lambda: session.execute(op("mse_loss", Tensor("a"), Tensor("a"), reduction="r" * 300))
    )
    assert code == INVALID and "a string Value has at most 256 characters" in message
    code, message = status(lambda: session.execute(op("sum", Tensor("a"), **{"k" * 300: 1})))
    assert code == INVALID and "a kwarg name has at most 256 characters" in message
    graph = cpb.Command(graph=cpb.Graph(handle="a", params={"g" * 300: "a"}))
    code, message = status(lambda: session.execute(graph))
    assert code == INVALID and "a graph label has at most 256 characters" in message
    # Nothing long reached the log either.
    assert max(len(line) for line in server.log().splitlines()) < 2 * SHORT


def test_messages_that_quote_whole_values_are_cut(session):
    # PyTorch's reshape message quotes the whole shape: 200,000 dims would be 600 KB of status.
    session.execute(tensor("a", [1.0, 2.0]))
    shape = cpb.Value(ints=cpb.Ints(values=[1] * 200_000))
    reshape = cpb.Command(op=cpb.Op(op="reshape", args=[value(Tensor("a")), shape]))
    code, message = status(lambda: session.execute(reshape))
    assert code == INVALID and "shape '[1, 1, 1" in message
    assert len(message) < 3 * SHORT and message.endswith("characters)")


def test_tensor_data_that_contradicts_its_shape_or_dtype(session):
    huge = tpb.TensorData(dtype=tpb.INT64, shape=[2**40, 2**40], raw=b"\x00" * 8)
    code, message = status(lambda: session.execute(_create("h", huge)))
    assert code == INVALID and "raw holds 8 bytes but shape" in message  # not a memory limit
    long = tpb.TensorData(dtype=tpb.BOOL, shape=[1] * 1_000_000, raw=b"\x00")
    code, message = status(lambda: session.execute(_create("h", long)))
    assert code == INVALID and "a shape has at most 64 dimensions, got 1000000" in message
    typed = tpb.TensorData(dtype=tpb.FLOAT32, shape=[2**40, 2**40], float_values=[1.0])
    code, message = status(lambda: session.execute(_create("h", typed)))
    assert code == INVALID and "1 values given for shape" in message
    # PyTorch: torch.tensor([2.0**70], dtype=torch.int64) raises this RuntimeError.
    for bad in (2.0**70, -(2.0**64), 2.0**63, float("nan"), float("inf")):
        data = tpb.TensorData(dtype=tpb.INT64, float_values=[1.0, bad])
        code, message = status(lambda d=data: session.execute(_create("h", d)))
        assert code == INVALID, bad
        assert message.endswith("value cannot be converted to type int64 without overflow")
    fits = tpb.TensorData(dtype=tpb.INT64, float_values=[-(2.0**63), 2.0**62, 3.7])
    # Floats too large for FLOAT32 become inf, as in PyTorch.
    wide = tpb.TensorData(dtype=tpb.FLOAT32, float_values=[1e300, -1e300])
    session.execute(_create("i", fits), _create("f", wide))
    assert session.array("i").tolist() == [-(2**63), 2**62, 3]
    assert session.array("f").tolist() == [float("inf"), float("-inf")]


def test_nested_values_are_bounded_in_depth_and_number(session):
    session.execute(tensor("a", [1.0, 2.0, 3.0]))
    deep: object = [0]
    for _ in range(32):  # 33 lists deep
        deep = [deep]
    code, message = status(lambda: session.execute(op("getitem", Tensor("a"), deep)))
    assert code == INVALID and "nest at most 32 tuples or lists deep" in message
    many = cpb.Value(ints=cpb.Ints(values=[0] * (1 << 20)))  # the Value itself is one more
    index = cpb.Command(op=cpb.Op(op="getitem", args=[value(Tensor("a")), many]))
    code, message = status(lambda: session.execute(index))
    assert code == INVALID and "at most 1048576 argument Values" in message
    # The bound is per request: two commands of 600,000 indices each pass it at the second.
    indices = [0] * 600_000
    first = op("getitem", Tensor("a"), indices, outs=["x"])
    second = op("getitem", Tensor("a"), indices, outs=["y"])
    code, message = status(lambda: session.execute(first, second))
    assert code == INVALID and message.startswith("command 1 (op 'getitem'): a request carries")
    assert session.fetch("x", metadata_only=True).info.shape == [600_000]
    session.execute(op("getitem", Tensor("a"), indices, outs=["y"]))  # a new request: room


def _create(out: str, data: tpb.TensorData) -> cpb.Command:
    return cpb.Command(tensor=cpb.CreateTensor(out=out, data=data))


def test_the_readme_states_the_limits_in_force():
    text = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    stated = [
        f"at most {request_views.MAX_COMMANDS:,} commands",
        f"{op_args.MAX_VALUES:,} argument `Value`s",
        f"nested at most {op_args.MAX_VALUE_DEPTH} tuples or lists deep",
        f"at most {wire_tensor.MAX_DIMS} dimensions",
        f"over {request_views.MAX_FIELDS:,} fields in a request of {request_views.LARGE >> 10} KiB",
        f"varint over {request_views.MAX_VARINT} bytes",
        f"a `graph` label at most {op_args.MAX_STRING}",
        f"cut after {errors.SHOWN_CHARACTERS} characters",
        f"after {errors.MAX_MESSAGE_BYTES:,} bytes of UTF-8",
    ]
    assert session_store.MAX_LABEL == op_args.MAX_STRING  # the README gives them as one
    assert [s for s in stated if s not in text] == []
