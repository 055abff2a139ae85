"""Session lifecycle, isolation, auth, ServerInfo, ListSessions, limits on sessions, idle TTL."""

from __future__ import annotations

import gradd.engine as ge
import grpc
import numpy as np
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import ADMIN_TOKEN, DEVICE, Client, Tensor, op, status, tensor

NOT_FOUND = grpc.StatusCode.NOT_FOUND
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def test_server_info_lists_devices_limits_and_ops(client):
    info = client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=30)
    assert "cpu" in info.devices and info.default_device == DEVICE
    assert list(info.ops) == sorted(ge.OPS) and "add" in info.ops
    assert list(info.factories) == sorted(ge.FACTORIES)  # the engine's declared factories
    assert {"randn", "rand", "zeros", "ones", "full", "arange", "linspace", "eye"} <= set(
        info.factories
    )
    assert info.limits.watch_queue_size == 4096 and info.limits.max_message_bytes >= 64 << 20
    assert info.version


def test_create_use_close(client):
    s = client.session(label="lifecycle")
    assert s.created.token and s.created.device == DEVICE
    s.execute(tensor("a", [1.0, 2.0]))
    assert s.array("a").tolist() == [1.0, 2.0]
    s.close()
    code, message = status(lambda: s.execute(tensor("b", [1.0])))
    assert code == NOT_FOUND and s.id in message
    assert status(s.close)[0] == NOT_FOUND


def test_sessions_are_isolated_namespaces(client):
    a, b = client.session(), client.session()
    a.execute(tensor("x", [1.0]))
    b.execute(tensor("x", [2.0]))
    a.execute(tensor("only_a", [3.0]))
    assert a.array("x").tolist() == [1.0] and b.array("x").tolist() == [2.0]
    code, message = status(lambda: b.fetch("only_a"))
    assert code == NOT_FOUND and "only_a" in message
    # One session's token does not open another.
    code, _ = status(
        lambda: b.stub.Fetch(spb.FetchRequest(session_id=b.id, handle="x"), metadata=a.md)
    )
    assert code == UNAUTHENTICATED
    a.close()
    b.close()


def test_missing_or_wrong_token_is_unauthenticated(session):
    request = spb.FetchRequest(session_id=session.id, handle="x")
    for md in [(), (("authorization", "Bearer nope"),), (("authorization", "Basic x"),)]:
        code, message = status(lambda md=md: session.stub.Fetch(request, metadata=md))
        assert code == UNAUTHENTICATED and "Bearer" in message


def test_create_session_refuses_a_wrong_token_it_did_not_need(client, session):
    request = spb.CreateSessionRequest()
    for md in [(("authorization", "Bearer nope"),), (("authorization", "Bearer "),)]:
        code, message = status(lambda md=md: client.stub.CreateSession(request, metadata=md))
        assert code == UNAUTHENTICATED and "wrong token" in message and "nope" not in message
    # None, another scheme, a session's token or the admin token: a new session.
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    for md in [(), (("authorization", "Basic x"),), session.md, admin]:
        created = client.stub.CreateSession(request, metadata=md)
        assert created.session_id != session.id
        md = (("authorization", f"Bearer {created.token}"),)
        client.stub.CloseSession(
            spb.CloseSessionRequest(session_id=created.session_id), metadata=md
        )


def test_unknown_session_is_not_found_only_for_the_admin(session):
    request = cpb.ExecuteRequest(session_id="no-such-session")
    code, _ = status(lambda: session.stub.Execute(request, metadata=session.md))
    assert code == UNAUTHENTICATED  # another session's token: nothing learnt about the id
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    code, _ = status(lambda: session.stub.Execute(request, metadata=admin))
    assert code == NOT_FOUND


def test_seeded_sessions_draw_the_engine_s_numbers(client):
    s = client.session(seed=7)
    s.execute(cpb.Command(factory=cpb.Factory(out="r", kind="randn", shape=[3, 2])))
    expected = ge.randn(3, 2, generator=ge.Generator().manual_seed(7)).numpy()
    np.testing.assert_array_equal(s.array("r"), expected)
    s.execute(
        cpb.Command(manual_seed=cpb.ManualSeed(seed=42)),
        cpb.Command(factory=cpb.Factory(out="r", kind="rand", shape=[4])),
    )
    expected = ge.rand(4, generator=ge.Generator().manual_seed(42)).numpy()
    np.testing.assert_array_equal(s.array("r"), expected)
    s.close()


def test_create_session_checks_its_request(client):
    bad = [
        spb.CreateSessionRequest(device="tpu"),
        spb.CreateSessionRequest(limits=spb.SessionLimits(max_bytes=1 << 60)),
        spb.CreateSessionRequest(idle_ttl_seconds=1e9),
        spb.CreateSessionRequest(session_id="has spaces"),
    ]
    for request in bad:
        code, _ = status(lambda r=request: client.stub.CreateSession(r))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, request
    s = client.session(session_id="client-chosen-id.1")
    assert s.id == "client-chosen-id.1"
    code, _ = status(lambda: client.session(session_id="client-chosen-id.1"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    s.close()


def test_list_sessions_needs_the_admin_token(client, session):
    session.execute(tensor("x", np.zeros(10, np.float32)))
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    listing = client.stub.ListSessions(spb.ListSessionsRequest(), metadata=admin)
    mine = [s for s in listing.sessions if s.session_id == session.id]
    assert len(mine) == 1 and mine[0].tensors == 1 and mine[0].bytes == 40
    code, _ = status(
        lambda: client.stub.ListSessions(spb.ListSessionsRequest(), metadata=session.md)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = status(lambda: client.stub.ListSessions(spb.ListSessionsRequest()))
    assert code == UNAUTHENTICATED
    # The admin token also opens any session, for operators.
    assert session.stub.Fetch(spb.FetchRequest(session_id=session.id, handle="x"), metadata=admin)


def test_max_sessions_and_idle_ttl(start_server):
    server = start_server("--max-sessions", "2", "--idle-ttl", "0.5")
    server.warm_up()
    client = Client(server.addr)
    first, second = client.session(), client.session()
    code, message = status(lambda: client.session())
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit is 2" in message
    for s in (first, second):
        s.execute(tensor("x", [1.0]))
    # Both go idle (no call touches them while we wait on the log); the reaper closes them.
    for s in (first, second):
        server.wait_log(rf"session {s.id} closed \(expired")
        assert status(lambda s=s: s.fetch("x"))[0] == NOT_FOUND
    third = client.session()  # their places are free again
    third.execute(tensor("y", [2.0]), op("mul", Tensor("y"), 2.0, outs=["z"]))
    assert third.array("z").tolist() == [4.0]
    client.close()
