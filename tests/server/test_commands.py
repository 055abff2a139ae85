"""Commands end to end: tensors on the wire, op arguments, batches, streams and fetches."""

from __future__ import annotations

import gradd.engine as ge
import grpc
import numpy as np
import pytest
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb
from server_harness import ADMIN_TOKEN, TENSOR_DEVICE, Tensor, op, status, tensor

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
b, w, x, y = Tensor("b"), Tensor("w"), Tensor("x"), Tensor("y")


def create(out: str, requires_grad: bool = False, **fields) -> cpb.Command:
    return cpb.Command(
        tensor=cpb.CreateTensor(out=out, data=tpb.TensorData(**fields), requires_grad=requires_grad)
    )


def test_typed_values_follow_the_documented_shape_rules(session):
    session.execute(
        create("scalar", float_values=[2.5]),
        create("vector", float_values=[1, 2, 3]),
        create("shaped", float_values=[1, 2, 3, 4, 5, 6], shape=[2, 3]),
        create("ints", int_values=[1, 2]),
        create("bools", bool_values=[True, False]),
        create("double", float_values=[0.1], shape=[1], dtype=tpb.FLOAT64),
        create("empty"),
    )
    expect = {
        "scalar": ((), tpb.FLOAT32),
        "vector": ((3,), tpb.FLOAT32),
        "shaped": ((2, 3), tpb.FLOAT32),
        "ints": ((2,), tpb.INT64),
        "bools": ((2,), tpb.BOOL),
        "double": ((1,), tpb.FLOAT64),
        "empty": ((0,), tpb.FLOAT32),
    }
    for handle, (shape, dtype) in expect.items():
        info = session.fetch(handle, metadata_only=True).info
        assert (tuple(info.shape), info.dtype) == (shape, dtype), handle
    assert session.array("double").tolist() == [0.1]
    assert session.fetch("scalar").item == 2.5


def test_raw_bytes_round_trip_every_dtype(session):
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.linspace(0, 1, 5),
        "i64": np.array([-(2**40), 0, 7]),
        "bool": np.array([[True], [False]]),
        "scalar": np.float32(3.0),
    }
    session.execute(*(tensor(k, v) for k, v in arrays.items()))
    for handle, array in arrays.items():
        got = session.array(handle)
        assert got.dtype == np.asarray(array).dtype and got.shape == np.shape(array)
        np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize(
    "fields, phrase",
    [
        ({"raw": b"\0\0\0\0"}, "needs a dtype"),
        ({"raw": b"\0\0\0", "dtype": tpb.FLOAT32, "shape": [1]}, "needs 4"),
        ({"float_values": [1.0], "int_values": [1]}, "give only one"),
        ({"float_values": [1.0, 2.0], "shape": [3]}, "3 elements"),
        ({"shape": [-1]}, "negative size"),
        ({"raw": b"\x02", "dtype": tpb.BOOL}, "0 or 1"),
    ],
)
def test_bad_tensor_data_is_invalid_argument(session, fields, phrase):
    code, message = status(lambda: session.execute(create("bad", **fields)))
    assert code == INVALID and phrase in message
    assert status(lambda: session.fetch("bad"))[0] == NOT_FOUND


def test_every_argument_kind_reaches_the_engine(session):
    t = np.arange(6, dtype=np.float32).reshape(2, 3)
    session.execute(
        tensor("t", t),
        tensor("mask", np.array([True, False])),
        tensor("target", np.array([0, 2])),
        op("getitem", Tensor("t"), (slice(1, None), None, ...), outs=["sliced"]),
        op("getitem", Tensor("t"), [1, 0], outs=["picked"]),
        op("getitem", Tensor("t"), (Tensor("mask"),), outs=["masked"]),
        cpb.Command(
            op=cpb.Op(
                op="sum",
                args=[cpb.Value(tensor="t")],
                kwargs={"dim": cpb.Value(ints=cpb.Ints(values=[0, 1]))},
                outs=["total"],
            )
        ),
        op("clamp", Tensor("t"), min=2.0, outs=["clamped"]),
        op("reshape", Tensor("t"), 3, -1, outs=["reshaped"]),
        op("cross_entropy", Tensor("t"), Tensor("target"), reduction="sum", outs=["ce"]),
        cpb.Command(
            op=cpb.Op(
                op="to_dtype",
                args=[cpb.Value(tensor="t"), cpb.Value(dtype=tpb.FLOAT64)],
                outs=["double"],
            )
        ),
        op("max", Tensor("t"), dim=1, outs=["values", "indices"]),
    )
    assert session.array("sliced").tolist() == [[[3.0, 4.0, 5.0]]]
    assert session.array("picked").tolist() == t[[1, 0]].tolist()
    assert session.array("masked").tolist() == [[0.0, 1.0, 2.0]]
    assert session.fetch("total").item == 15.0
    assert session.array("clamped").min() == 2.0
    assert session.array("reshaped").shape == (3, 2)
    logits = t - t.max(1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(log_softmax[0, 0] + log_softmax[1, 2])
    assert session.fetch("ce").item == pytest.approx(float(expected), rel=1e-6)
    assert session.array("double").dtype == np.float64
    assert session.array("values").tolist() == [2.0, 5.0]
    assert session.array("indices").tolist() == [2, 2]


def test_op_errors_map_to_status_codes(session):
    session.execute(tensor("a", np.ones((2, 3), np.float32)), tensor("c", np.ones(4, np.float32)))
    code, message = status(lambda: session.execute(op("launch_missiles", Tensor("a"))))
    assert code == INVALID and "unknown op 'launch_missiles'" in message and "ServerInfo" in message
    code, message = status(lambda: session.execute(op("ad", Tensor("a"))))
    assert code == INVALID and "unknown op 'ad'; did you mean " in message and "'add'" in message
    code, message = status(lambda: session.execute(op("add", Tensor("a"), Tensor("nope"))))
    assert code == NOT_FOUND and "'nope'" in message
    code, message = status(lambda: session.execute(op("matmul", Tensor("a"), Tensor("c"))))
    assert code == INVALID and "3" in message and "4" in message
    code, message = status(lambda: session.execute(op("add", Tensor("a"), 1.0, outs=["p", "q"])))
    assert code == INVALID and "2 outs" in message
    code, _ = status(lambda: session.execute(cpb.Command()))
    assert code == INVALID
    code, _ = status(lambda: session.execute(cpb.Command(op=cpb.Op(op="neg", args=[cpb.Value()]))))
    assert code == INVALID
    assert session.array("a").tolist() == np.ones((2, 3)).tolist()  # the session goes on


AUTOGRAD_ERRORS = [
    # (commands after b, w, x exist, PyTorch's key phrase)
    ([op("sub_", b, 0.1)], "a leaf Variable that requires grad is being used in an in-place"),
    (
        [
            op("mul", w, x, outs=["wx"]),
            op("sum", Tensor("wx"), outs=["loss"]),
            cpb.Command(backward=cpb.Backward(handle="loss")),
            cpb.Command(backward=cpb.Backward(handle="loss")),
        ],
        "Trying to backward through the graph a second time",
    ),
    (
        [op("mul", w, x, outs=["wx"]), cpb.Command(backward=cpb.Backward(handle="wx"))],
        "grad can be implicitly created only for scalar outputs",
    ),
    ([cpb.Command(backward=cpb.Backward(handle="x"))], "does not require grad"),
    (
        [
            op("mul", w, 2.0, outs=["w2"]),
            op("exp", Tensor("w2"), outs=["e"]),
            op("add_", Tensor("e"), 1.0),
            op("sum", Tensor("e"), outs=["s"]),
            cpb.Command(backward=cpb.Backward(handle="s")),
        ],
        "modified by an inplace operation",
    ),
]


@pytest.mark.parametrize("commands, phrase", AUTOGRAD_ERRORS)
def test_autograd_rule_violations_are_failed_precondition(session, commands, phrase):
    session.execute(
        tensor("b", np.array([0.5], np.float32), requires_grad=True),
        tensor("w", np.array([2.0], np.float32), requires_grad=True),
        tensor("x", np.array([1.0, 2.0, 3.0], np.float32)),
    )
    code, message = status(lambda: session.execute(*commands))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and phrase in message
    # Nothing lost: the parameters are untouched and the session still trains.
    assert session.array("b").tolist() == [0.5] and session.array("w").tolist() == [2.0]
    session.execute(
        op("mul", w, x, outs=["wx2"]),
        op("sum", Tensor("wx2"), outs=["loss2"]),
        cpb.Command(backward=cpb.Backward(handle="loss2")),
    )
    assert session.array("w", grad=True).sum() >= 6.0


def test_a_batch_stops_at_its_first_failure(session):
    commands = [
        tensor("one", np.array([1.0], np.float32)),
        op("add", Tensor("one"), 1.0, outs=["two"]),
        op("add", Tensor("missing"), 1.0, outs=["three"]),
        tensor("four", np.array([4.0], np.float32)),
    ]
    request = cpb.ExecuteRequest(session_id=session.id, commands=commands)
    with pytest.raises(grpc.RpcError) as caught:
        session.stub.Execute(request, metadata=session.md)
    err = caught.value
    assert err.code() == NOT_FOUND
    assert err.details().startswith("command 2 (op 'add'): ")
    trailing = dict(err.trailing_metadata())
    assert trailing["gradd-failed-index"] == "2" and trailing["gradd-applied"] == "2"
    assert session.array("two").tolist() == [2.0]  # earlier commands stay applied
    assert status(lambda: session.fetch("four"))[0] == NOT_FOUND  # later ones never ran


def test_execute_stream_pipelines_and_reports_errors_per_batch(session):
    def batches():
        yield cpb.ExecuteRequest(
            session_id=session.id,
            sequence=1,
            commands=[tensor("a", np.array([1.0, 2.0], np.float32))],
        )
        yield cpb.ExecuteRequest(
            session_id=session.id,
            sequence=2,
            commands=[
                op("mul", Tensor("a"), 3.0, outs=["a3"]),
                op("bogus"),
                op("neg", Tensor("a")),
            ],
        )
        yield cpb.ExecuteRequest(
            session_id=session.id,
            sequence=3,
            commands=[
                op("sum", Tensor("a3"), outs=["s"]),
                cpb.Command(fetch=cpb.Fetch(handle="s")),
                cpb.Command(fetch=cpb.Fetch(handle="a3", typed_values=True)),
            ],
        )

    responses = list(session.stub.ExecuteStream(batches(), metadata=session.md, timeout=60))
    assert [r.sequence for r in responses] == [1, 2, 3]
    assert responses[0].applied == 1 and not responses[0].HasField("error")
    failed = responses[1]
    assert failed.applied == 1 and failed.error.index == 1
    assert (
        failed.error.code == cpb.INVALID_ARGUMENT and "unknown op 'bogus'" in failed.error.message
    )
    done = responses[2]
    assert done.applied == 3 and [r.index for r in done.results] == [1, 2]
    assert done.results[0].tensor.item == 9.0
    assert list(done.results[1].tensor.data.float_values) == [3.0, 6.0]


def test_execute_stream_ends_with_the_status_of_a_session_error(session):
    # A session's token is valid for that session only: another id is UNAUTHENTICATED whether
    # it exists or not (its holder learns nothing); the admin token learns NOT_FOUND.
    requests = iter([cpb.ExecuteRequest(session_id="nope")])
    code, _ = status(lambda: list(session.stub.ExecuteStream(requests, metadata=session.md)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    requests = iter([cpb.ExecuteRequest(session_id="nope")])
    code, _ = status(lambda: list(session.stub.ExecuteStream(requests, metadata=admin)))
    assert code == NOT_FOUND


def test_grad_commands_follow_pytorch(session):
    session.execute(
        tensor("w", np.array([2.0], np.float32), requires_grad=True),
        tensor("x", np.array([1.0, 2.0, 3.0], np.float32)),
    )
    assert session.fetch("w", grad=True).is_none
    step = [
        op("mul", w, x, outs=["wx"]),
        cpb.Command(retain_grad=cpb.RetainGrad(handle="wx")),
        op("sum", Tensor("wx"), outs=["loss"]),
        cpb.Command(backward=cpb.Backward(handle="loss")),
    ]
    session.execute(*step)
    session.execute(*step)  # gradients accumulate
    assert session.array("w", grad=True).tolist() == [12.0]
    assert session.array("wx", grad=True).tolist() == [1.0, 1.0, 1.0]  # a new wx each step
    # grad_of binds the .grad itself: an in-place op on it changes w.grad.
    session.execute(
        cpb.Command(grad_of=cpb.GradOf(out="g", handle="w")), op("mul_", Tensor("g"), 0.5)
    )
    assert session.array("w", grad=True).tolist() == [6.0]
    # `with no_grad(): w -= 0.1 * w.grad`, then zero the grad in place (g sees it).
    session.execute(
        op("mul", Tensor("g"), 0.1, outs=["update"], no_grad=True),
        op("sub_", w, Tensor("update"), no_grad=True),
        cpb.Command(zero_grad=cpb.ZeroGrad(handles=["w"])),
    )
    assert session.array("w").tolist() == pytest.approx([1.4])
    assert session.array("g").tolist() == [0.0] == session.array("w", grad=True).tolist()
    session.execute(cpb.Command(zero_grad=cpb.ZeroGrad(handles=["w"], set_to_none=True)))
    assert session.fetch("w", grad=True).is_none
    code, message = status(
        lambda: session.execute(cpb.Command(grad_of=cpb.GradOf(out="g2", handle="w")))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "None" in message
    # detach and requires_grad_
    session.execute(
        cpb.Command(detach=cpb.Detach(out="wd", handle="w")),
        cpb.Command(requires_grad=cpb.SetRequiresGrad(handle="x", requires_grad=True)),
    )
    assert not session.fetch("wd", metadata_only=True).info.requires_grad
    assert session.fetch("x", metadata_only=True).info.requires_grad
    code, _ = status(
        lambda: session.execute(
            cpb.Command(requires_grad=cpb.SetRequiresGrad(handle="wx", requires_grad=False))
        )
    )
    assert code in (INVALID, grpc.StatusCode.FAILED_PRECONDITION)


def test_set_grad_and_backward_inputs(session):
    session.execute(
        tensor("w", np.array([2.0, 3.0], np.float32), requires_grad=True),
        tensor("g", np.array([10.0, 20.0], np.float32)),
        tensor("small", np.array([1.0], np.float32)),
        cpb.Command(set_grad=cpb.SetGrad(handle="w", grad="g")),
        op("mul", w, Tensor("w"), outs=["sq"]),
        op("sum", Tensor("sq"), outs=["s"]),
        cpb.Command(backward=cpb.Backward(handle="s", inputs=["sq"], retain_graph=True)),
    )
    assert session.array("sq", grad=True).tolist() == [1.0, 1.0]  # the non-leaf input
    assert session.array("w", grad=True).tolist() == [10.0, 20.0]  # not an input: untouched
    session.execute(cpb.Command(backward=cpb.Backward(handle="s", inputs=["w"])))
    assert session.array("g").tolist() == [14.0, 26.0]  # accumulated into the assigned tensor
    code, message = status(
        lambda: session.execute(cpb.Command(set_grad=cpb.SetGrad(handle="w", grad="small")))
    )
    assert code == INVALID and "size '[1]' to a tensor of size '[2]'" in message
    code, _ = status(
        lambda: session.execute(cpb.Command(set_grad=cpb.SetGrad(handle="w", grad="nope")))
    )
    assert code == NOT_FOUND
    assert session.array("w", grad=True).tolist() == [14.0, 26.0]  # nothing changed
    session.execute(cpb.Command(set_grad=cpb.SetGrad(handle="w")))
    assert session.fetch("w", grad=True).is_none


def test_set_data(session):
    session.execute(
        tensor("w", np.array([2.0, 3.0], np.float32), requires_grad=True),
        tensor("d", np.array([[1.0], [4.0], [5.0]], np.float64)),
        tensor("i", np.array([1, 2], np.int64)),
        cpb.Command(set_data=cpb.SetData(handle="w", data="d")),
    )
    info = session.fetch("w", metadata_only=True).info
    assert list(info.shape) == [3, 1] and info.requires_grad  # keeps its autograd state
    assert session.array("w").tolist() == [[1.0], [4.0], [5.0]]
    code, message = status(
        lambda: session.execute(cpb.Command(set_data=cpb.SetData(handle="w", data="i")))
    )
    assert code == INVALID and "must be floating point" in message
    code, _ = status(
        lambda: session.execute(cpb.Command(set_data=cpb.SetData(handle="w", data="nope")))
    )
    assert code == NOT_FOUND


def test_fetch_reports_metadata(session):
    session.execute(
        tensor("w", np.array([2.0], np.float32), requires_grad=True),
        op("mul", w, 3.0, outs=["y"]),
        op("sum", y, outs=["s"]),
        cpb.Command(backward=cpb.Backward(handle="s")),
    )
    leaf = session.fetch("w", metadata_only=True)
    assert not leaf.HasField("data") and leaf.item == 2.0
    info = leaf.info
    assert (info.requires_grad, info.is_leaf, info.grad_fn, info.has_grad) == (True, True, "", True)
    assert info.device == TENSOR_DEVICE and info.nbytes == 4 and info.version == 0
    made = session.fetch("y", metadata_only=True).info
    assert (made.requires_grad, made.is_leaf, made.grad_fn) == (True, False, "MulBackward0")
    session.execute(op("add_", y, 1.0))
    assert session.fetch("y", metadata_only=True).info.version == 1


def test_grad_mode_travels_with_each_op(session):
    session.execute(
        tensor("w", np.array([2.0], np.float32), requires_grad=True),
        op("mul", w, 2.0, outs=["off"], no_grad=True),
        op("mul", w, 2.0, outs=["on"]),
    )
    assert not session.fetch("off", metadata_only=True).info.requires_grad
    assert session.fetch("on", metadata_only=True).info.grad_fn == "MulBackward0"


def test_release_is_idempotent_and_rebinding_replaces(session):
    session.execute(
        tensor("a", np.array([1.0], np.float32)), tensor("a", np.array([5.0, 6.0], np.float32))
    )
    assert session.array("a").tolist() == [5.0, 6.0]
    release = cpb.Command(release=cpb.Release(handles=["a", "never-bound"]))
    session.execute(release, release)
    assert status(lambda: session.fetch("a"))[0] == NOT_FOUND


def test_factories(session):
    def factory(out, kind, shape=(), args=(), **kw):
        return cpb.Command(
            factory=cpb.Factory(
                out=out, kind=kind, shape=shape, args=[cpb.Value(**a) for a in args], **kw
            )
        )

    session.execute(
        factory("z", "zeros", [2, 2]),
        factory("o", "ones", [3], dtype=tpb.FLOAT64),
        factory("f", "full", [2], args=[{"f": 7.5}]),
        factory("r", "arange", args=[{"i": 1}, {"i": 7}, {"i": 2}]),
        factory("p", "randn", [1], requires_grad=True),
    )
    assert session.array("z").tolist() == [[0, 0], [0, 0]]
    assert session.array("o").dtype == np.float64
    assert session.array("f").tolist() == [7.5, 7.5]
    assert session.array("r").tolist() == [1, 3, 5] and session.array("r").dtype == np.int64
    assert session.fetch("p", metadata_only=True).info.requires_grad
    for bad in (factory("q", "eye", [2]), factory("q", "full", [2]), factory("q", "zeros", [-1])):
        assert status(lambda bad=bad: session.execute(bad))[0] == INVALID


def test_get_graph_draws_the_article_s_pictures(session):
    session.execute(
        tensor("b", np.array([0.5], np.float32), requires_grad=True),
        tensor("w", np.array([2.0], np.float32), requires_grad=True),
        tensor("x", np.ones((80, 1), np.float32)),
        op("mul", w, x, outs=["wx"]),
        op("add", b, Tensor("wx"), outs=["yhat"]),
    )
    from gradd.v1 import service_pb2 as spb

    request = spb.GetGraphRequest(session_id=session.id, handle="yhat")
    graph = session.stub.GetGraph(request, metadata=session.md)
    colours = {n.label: n.fillcolor for n in graph.nodes}
    assert colours["AddBackward0"] == "darkolivegreen1"
    assert colours["MulBackward0"] == "lightgray"
    assert sorted(n.fillcolor for n in graph.nodes if n.kind == "leaf") == ["lightblue"] * 2
    assert len(graph.edges) == 3 and "digraph" in graph.dot
    request.params["b"] = "b"
    named = session.stub.GetGraph(request, metadata=session.md)
    assert any(n.label.startswith("b") for n in named.nodes)
    # the same graph again has the same signature
    assert session.stub.GetGraph(request, metadata=session.md).signature == named.signature


def test_random_ops_draw_from_the_session_s_own_stream(client):
    def dropout_mask(s) -> list:
        s.execute(
            cpb.Command(factory=cpb.Factory(out="ones", kind="ones", shape=[64])),
            op("dropout", Tensor("ones"), 0.5, outs=["dropped"]),
        )
        return s.array("dropped").tolist()

    first, other = client.session(seed=3), client.session(seed=3)
    masks = [dropout_mask(first)]
    dropout_mask(other)  # another session's draws leave this one's stream alone
    masks.append(dropout_mask(first))
    generator = ge.Generator().manual_seed(3)
    with ge.use_generator(generator):
        ones = ge.ones(64)
        expected = [ge.functional.dropout(ones, 0.5).numpy().tolist() for _ in range(2)]
    assert masks == expected and masks[0] != masks[1]
    first.close()
    other.close()
