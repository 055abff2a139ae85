"""The committed gradd.v1 stubs, beside their sources in protos/gradd/v1/, must be what
`make protos` makes of them."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
STUBS = PROTOS / "gradd" / "v1"


def _protoc(*args: str) -> None:
    from grpc_tools import protoc  # a dev dependency: only this test needs it

    include = str(Path(protoc.__file__).parent / "_proto")  # google/protobuf/*.proto
    assert protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", *args]) == 0


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    sources = sorted(str(p) for p in (PROTOS / "gradd" / "v1").glob("*.proto"))
    _protoc(f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", *sources)
    _protoc(f"--grpc_python_out={tmp_path}", str(PROTOS / "gradd" / "v1" / "service.proto"))
    fresh = {p.name for p in (tmp_path / "gradd" / "v1").iterdir()}
    committed = {p.name for p in STUBS.glob("*_pb2*.py*")}
    assert committed == fresh, "gradd.v1 stubs are stale: run `make protos`"
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "gradd" / "v1", STUBS, sorted(fresh), False)
    assert not mismatch and not errors, f"stale stubs {mismatch + errors}: run `make protos`"


def test_committed_descriptor_set_matches_protos(tmp_path: Path) -> None:
    """protos/gradd/v1/gradd_v1.binpb: the descriptors with comments that reflection serves."""
    pytest.importorskip("grpc_tools")
    sources = sorted(str(p) for p in (PROTOS / "gradd" / "v1").glob("*.proto"))
    fresh = tmp_path / "gradd_v1.binpb"
    _protoc("--include_source_info", f"--descriptor_set_out={fresh}", *sources)
    committed = STUBS / "gradd_v1.binpb"
    assert committed.read_bytes() == fresh.read_bytes(), "stale descriptor set: run `make protos`"
