"""Sessions on GPU ordinals: `cuda:N` asked for, and `--device cuda` spreading new sessions over
the GPUs by free memory. Runs where the engine reaches GPUs: a real machine, or `make
test-cuda-standin` (two stand-in GPUs)."""

from __future__ import annotations

import gradd.engine as ge
import grpc
import pytest
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import Client, status

pytestmark = pytest.mark.skipif(
    ge.cuda_device_count() < 2, reason="needs two GPUs (a real machine, or the CuPy stand-in)"
)


def _zeros(out: str, n: int) -> cpb.Command:
    return cpb.Command(factory=cpb.Factory(out=out, kind="zeros", shape=[n]))


def test_sessions_spread_over_gpus_by_free_memory(start_server):
    server = start_server("--device", "cuda")
    client = Client(server.addr)
    info = client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=30)
    assert {"cpu", "cuda", "cuda:0", "cuda:1"} <= set(info.devices)
    first = client.session()
    assert first.created.device == "cuda:0"  # equal free memory: the first GPU
    first.execute(_zeros("big", 16 << 20))  # 64 MiB on cuda:0
    assert first.fetch("big", metadata_only=True).info.device == "cuda:0"
    second = client.session()
    assert second.created.device == "cuda:1"  # more free memory there
    second.execute(_zeros("t", 4))
    assert second.fetch("t", metadata_only=True).info.device == "cuda:1"
    third = client.session(device="cuda:0")  # an ordinal asked for is honoured
    assert third.created.device == "cuda:0"
    code, message = status(lambda: client.session(device="cuda:7"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cuda:7" in message
    client.close()


def test_sessions_made_back_to_back_alternate(start_server):
    server = start_server("--device", "cuda")
    client = Client(server.addr)
    devices = [client.session().created.device for _ in range(4)]
    assert devices == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    client.close()
