"""Watch: events for every backward, graph snapshots, several watchers, a slow one."""

from __future__ import annotations

import threading

import article_commands as article
import grpc
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc
from server_harness import CHANNEL_OPTIONS

STEPS = 600


def _watch(stub, session, **options):
    request = spb.WatchRequest(session_id=session.id, **options)
    return stub.Watch(request, metadata=session.md, timeout=120)


def test_two_watchers_and_a_slow_one(client, server):
    s = client.session(seed=42)
    fast = _watch(s.stub, s)
    # The slow watcher has its own connection and never reads until training is over.
    slow_channel = grpc.insecure_channel(
        server.addr, options=[*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0)]
    )
    slow = _watch(spb_grpc.AutogradServiceStub(slow_channel), s, graph_every=1, queue_size=4)
    assert next(fast).started.step == 0 and next(slow).HasField("started")  # both registered

    fast_events = []
    reader = threading.Thread(target=lambda: fast_events.extend(fast), daemon=True)
    reader.start()

    def batches():
        yield cpb.ExecuteRequest(session_id=s.id, commands=article.setup(*article.data()))
        for i in range(STEPS):
            yield cpb.ExecuteRequest(session_id=s.id, sequence=i, commands=article.epoch())

    responses = list(s.stub.ExecuteStream(batches(), metadata=s.md, timeout=120))
    # Training finished while the slow watcher had not read a single event.
    assert all(not r.HasField("error") for r in responses) and len(responses) == STEPS + 1
    s.close()
    reader.join(timeout=60)
    slow_events = list(slow)
    slow_channel.close()

    # The fast watcher saw every step, in order, with its loss; one graph (it never changed).
    steps = [e.step for e in fast_events if e.HasField("step")]
    assert [st.step for st in steps] == list(range(1, STEPS + 1))
    assert all(st.HasField("loss") and st.handle == "loss" for st in steps)
    assert steps[-1].loss < steps[0].loss
    graphs = [e.graph for e in fast_events if e.HasField("graph")]
    assert [(g.step, g.reason) for g in graphs] == [(1, "changed")]
    assert {n.label for n in graphs[0].graph.nodes} >= {"MeanBackward0", "PowBackward0"}
    assert fast_events[-1].ended.reason == "closed"
    assert all(e.missed == 0 for e in fast_events)
    seqs = [e.seq for e in fast_events]
    assert seqs == list(range(2, len(fast_events) + 2))  # seq 1 was the started event

    # The slow watcher was told what it missed, and still got the newest events and the end.
    assert slow_events[-1].ended.reason == "closed"
    assert sum(e.missed for e in slow_events) == slow_events[-1].missed_total > 0
    delivered = [e.seq for e in slow_events]
    assert delivered == sorted(delivered)
    assert len(slow_events) + slow_events[-1].missed_total == slow_events[-1].seq - 1
    assert any(e.HasField("step") and e.step.step == STEPS for e in slow_events)
    every_n = [e.graph for e in slow_events if e.HasField("graph") and e.graph.reason == "every_n"]
    assert every_n and every_n[-1].step == STEPS


def test_a_late_watcher_gets_the_latest_graph_and_requested_snapshots(session):
    session.execute(*article.setup(*article.data()), *article.epoch())
    events = _watch(session.stub, session)
    assert next(events).started.step == 1
    first = next(events).graph
    assert (first.reason, first.step, first.handle) == ("initial", 1, "loss")
    published = cpb.Command(
        graph=cpb.Graph(handle="yhat", params={"b": "b", "w": "w"}, publish=True)
    )
    answer = session.execute(published).results[0].graph
    requested = next(events).graph
    assert requested.reason == "requested" and requested.graph.signature == answer.signature
    assert any(n.label.startswith("w") for n in requested.graph.nodes)
    session.close()
    assert next(events).ended.reason == "closed"
    assert list(events) == []


def test_watcher_limit(start_server):
    from server_harness import Client, status

    server = start_server("--max-watchers", "1")
    client = Client(server.addr)
    s = client.session()
    first = _watch(s.stub, s)
    assert next(first).HasField("started")
    code, message = status(lambda: next(_watch(s.stub, s)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit is 1" in message
    s.close()
    assert [e.ended.reason for e in first] == ["closed"]
    client.close()
