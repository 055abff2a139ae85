"""A session's byte limit bounds the server's memory: attacks measured on a real gradd-server.

Each attack runs against `gradd-server --workers 16 --max-session-bytes 64M` and measures the
server's peak resident memory (VmHWM in /proc/<pid>/status, reset just before the attack) over
its resident memory before it. The sizes are smaller than the attacker's, so that a server
without the limits would grow by hundreds of MB here, not by GB.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc
from server_harness import CHANNEL_OPTIONS, Client, Tensor, factory, op, status, tensor

MiB = 1 << 20
LIMIT = 64 * MiB
# What a session may add on top of its limit (README, "Limits and errors"): one op's working
# memory (NumPy temporaries, a random draw's), the request being parsed, allocator slack.
SLACK = 48 * MiB
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


class Memory:
    """The resident memory of a process, from /proc/<pid>/status."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.clear_refs = Path(f"/proc/{pid}/clear_refs")

    def _kib(self, field: str) -> int:
        for line in self.status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in {self.status}")

    def start(self) -> None:
        """Remember the resident memory now, and restart the peak from it."""
        self.clear_refs.write_text("5")  # resets VmHWM to VmRSS (Linux >= 4.0)
        self.before = self._kib("VmRSS")

    def growth(self) -> int:
        """How far the peak went above the memory at `start`."""
        return self._kib("VmHWM") - self.before


@pytest.fixture
def limited(start_server):
    """(server, session, memory) on a server whose sessions hold at most 64 MiB."""
    server = start_server("--workers", "16", "--max-session-bytes", "64M")
    client = Client(server.addr)
    session = client.session(seed=7)
    session.execute(tensor("warm", np.ones(4, np.float32)), op("add", Tensor("warm"), 1.0))
    memory = Memory(server.proc.pid)
    yield server, session, memory
    client.close()


def release(*handles: str) -> cpb.Command:
    return cpb.Command(release=cpb.Release(handles=handles))


def fetch(handle: str) -> cpb.Command:
    return cpb.Command(fetch=cpb.Fetch(handle=handle))


def handles(session) -> list[str]:
    return [h for h in ("a", "b", "big", "h", "v0", "v1", "m", "after", "y") if _bound(session, h)]


def _bound(session, handle: str) -> bool:
    try:
        session.fetch(handle, metadata_only=True)
        return True
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND
        return False


def test_a_broadcast_is_refused_before_it_allocates(limited):
    _, s, memory = limited
    s.execute(
        tensor("a", np.ones((12000, 1), np.float32)), tensor("b", np.ones((1, 12000), np.float32))
    )
    memory.start()
    for outs in (["y"], []):  # with outs, and without: every op is checked
        code, message = status(
            lambda o=outs: s.execute(op("add", Tensor("a"), Tensor("b"), outs=o))
        )
        assert code == EXHAUSTED
        assert "op 'add' needs 576000000 more" in message and f"limit of {LIMIT}" in message
    assert memory.growth() < SLACK  # the 576 MB result was never allocated
    assert handles(s) == ["a", "b"]


def test_views_keep_their_released_bases_counted(limited):
    _, s, memory = limited
    memory.start()
    big = [12_000_000]  # 48 MB of float32
    s.execute(factory("big", "full", big, 1.0), op("getitem", Tensor("big"), 0, outs=["v0"]))
    s.execute(release("big"))  # the one-element view keeps the 48 MB base alive, and counted
    code, message = status(lambda: s.execute(factory("big", "full", big, 2.0)))
    assert code == EXHAUSTED and "holding 480000" in message and "needs 48000000 more" in message
    assert handles(s) == ["v0"] and s.array("v0").tolist() == 1.0
    assert memory.growth() < LIMIT + SLACK
    s.execute(release("v0"), factory("big", "full", big, 2.0))  # the base went with its view


def test_saved_buffers_of_a_graph_are_counted(limited):
    _, s, memory = limited
    memory.start()
    s.execute(
        factory("h", "randn", [1_000_000]),
        cpb.Command(requires_grad=cpb.SetRequiresGrad(handle="h", requires_grad=True)),
    )
    # h = h * 1.0, 40 times: each mul saves its input, so the graph keeps every 4 MB step.
    steps = [op("mul", Tensor("h"), 1.0, outs=["h"]) for _ in range(40)]
    try:
        s.execute(*steps)
        raise AssertionError("40 steps of 4 MB fitted in 64 MiB")
    except grpc.RpcError as err:
        assert err.code() == EXHAUSTED
        trailing = dict(err.trailing_metadata())
        applied = int(trailing["gradd-applied"])
        assert "op 'mul' needs 4000000 more" in err.details()
    assert 10 <= applied < 16  # 64 MiB / 4 MB, with the leaf and its steps
    assert memory.growth() < LIMIT + SLACK
    # Backward needs room for the leaf's .grad; the graph's saved steps are freed by it.
    s.execute(op("sum", Tensor("h"), outs=["m"]))
    code, message = status(lambda: s.execute(cpb.Command(backward=cpb.Backward(handle="m"))))
    assert code == EXHAUSTED and "new .grad buffers needs 4000000 more" in message
    s.execute(release("m", "h"))  # the whole graph goes with its last handle
    s.execute(factory("big", "full", [15_000_000], 1.0))  # 60 MB fits again


@pytest.mark.cpu_only("the sizes are a CPU tensor's: a GPU tensor's answer needs a host copy too")
def test_fetches_are_sized_before_their_answer_is_built(limited):
    _, s, memory = limited
    s.execute(factory("big", "full", [6_000_000], 3.0))  # 24 MB
    memory.start()
    # Each answer needs its bytes too: the second 24 MB one would pass 64 MiB. The failing
    # fetch is the failing command; the commands before it stay applied, those after it not.
    code, message = status(
        lambda: s.execute(
            fetch("big"),
            op("sum", Tensor("big"), outs=["m"]),
            fetch("big"),
            op("add", Tensor("big"), 1.0, outs=["after"]),
        )
    )
    assert code == EXHAUSTED and message.startswith("command 2 (fetch): session memory limit")
    assert "the answer of fetch 'big' needs 24000000 more" in message
    assert handles(s) == ["big", "m"]
    assert memory.growth() < LIMIT + SLACK


def test_an_answer_past_the_message_limit_is_refused_before_it_is_built(limited):
    _, s, memory = limited
    s.execute(factory("a", "full", [1], 1.0))
    memory.start()
    # A 4-byte tensor expanded to 272 MB: no memory of its own, but a 272 MB answer.
    code, message = status(
        lambda: s.execute(
            op("expand", Tensor("a"), 68_000_000, outs=["b"]),
            fetch("b"),
            op("add", Tensor("a"), 1.0, outs=["after"]),
        )
    )
    assert code == EXHAUSTED and message.startswith("command 1 (fetch): answer limit")
    assert "adds 272000" in message and f"message limit of {256 * MiB}" in message
    assert handles(s) == ["a", "b"]
    assert memory.growth() < SLACK


def test_a_watcher_that_never_reads_holds_a_bounded_queue(limited):
    server, s, memory = limited
    # Its own connection, never read after `started`: the server queues its events.
    channel = grpc.insecure_channel(
        server.addr, options=[*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0)]
    )
    request = spb.WatchRequest(session_id=s.id, graph_every=1)
    watch = spb_grpc.AutogradServiceStub(channel).Watch(request, metadata=s.md, timeout=120)
    assert next(watch).HasField("started")
    # Labels come from the client (256 characters at most): 8,000 labelled leaves make every
    # step's graph snapshot several MB.
    n = 8000
    leaves = [Tensor(f"w{i}") for i in range(n)]
    s.execute(*(factory(f"w{i}", "full", [1], 1.0) for i in range(n)))
    s.execute(
        *(
            cpb.Command(requires_grad=cpb.SetRequiresGrad(handle=h, requires_grad=True))
            for h in leaves
        )
    )
    labels = {f"{'L' * 240}{i}": f"w{i}" for i in range(n)}
    s.execute(
        op("stack", leaves, outs=["y"]), cpb.Command(graph=cpb.Graph(handle="y", params=labels))
    )
    memory.start()
    step = [
        op("stack", leaves, outs=["t"]),
        op("sum", Tensor("t"), outs=["y"]),
        cpb.Command(backward=cpb.Backward(handle="y")),
    ]
    for _ in range(60):  # 60 snapshots of several MB: hundreds of MB if queued by count alone
        s.execute(*step)
    assert memory.growth() < LIMIT + SLACK  # its queue holds 8 MiB, not 60 snapshots
    watch.cancel()
    channel.close()


def test_a_refused_inplace_op_changes_nothing(client):
    s = client.session(limits=spb.SessionLimits(max_tensors=1))
    s.execute(tensor("x", np.arange(3, dtype=np.float32)))
    code, message = status(lambda: s.execute(op("add_", Tensor("x"), 100.0, outs=["y"])))
    assert code == EXHAUSTED and "1 handles bound" in message
    assert s.array("x").tolist() == [0.0, 1.0, 2.0]
    assert s.fetch("x", metadata_only=True).info.version == 0
    s.close()


def test_a_refused_random_op_leaves_the_random_stream_untouched(client):
    refused = client.session(seed=5, limits=spb.SessionLimits(max_tensors=1, max_bytes=1 << 16))
    fresh = client.session(seed=5)
    refused.execute(tensor("x", np.ones(8, np.float32)))
    code, _ = status(lambda: refused.execute(op("dropout", Tensor("x"), 0.5, outs=["y"])))
    assert code == EXHAUSTED  # the handle limit
    code, _ = status(lambda: refused.execute(factory("x", "randn", [1 << 20])))
    assert code == EXHAUSTED  # the byte limit
    for s in (refused, fresh):
        s.execute(factory("x", "randn", [8]))
    np.testing.assert_array_equal(refused.array("x"), fresh.array("x"))
    refused.close()
    fresh.close()


def test_a_long_chain_of_scalar_ops_is_counted_by_its_graph_nodes(limited):
    server, s, memory = limited
    s.execute(
        factory("x", "full", [1], 1.0),
        cpb.Command(requires_grad=cpb.SetRequiresGrad(handle="x", requires_grad=True)),
    )
    memory.start()
    step = [op("mul", Tensor("x"), 1.0001, outs=["x"])] * 16_000
    batches, code, message = 0, None, ""
    while batches < 40:  # 640,000 ops (about 700 MB of graph) if nothing counted them
        try:
            s.execute(*step)
        except grpc.RpcError as err:
            code, message = err.code(), err.details()
            break
        batches += 1
    assert code == EXHAUSTED and "op 'mul'" in message and "limit of 67108864" in message
    assert batches <= 5  # 64 MiB is about 65,000 nodes
    assert memory.growth() < LIMIT + SLACK
    s.execute(release("x"))  # the graph goes with its last tensor: the session goes on
    s.execute(factory("x", "full", [1], 1.0), op("mul", Tensor("x"), 2.0, outs=["y"]))
    assert s.array("y").tolist() == [2.0]
