"""The scale-out files, checked without a cluster or a container engine: the Kubernetes
manifests (deploy/) and docker-compose.yml's `scale` profile agree with each other and with
the one nginx configuration (deploy/nginx/nginx.conf) they both use.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
yaml = pytest.importorskip("yaml", reason="PyYAML (dev extra) reads the manifests")


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization) -> dict[tuple[str, str], dict]:
    """Every object of the kustomization's resources, by (kind, name)."""
    found = {}
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / resource).read_text()):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            found[key] = doc
    return found


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def upstream_replicas() -> list[str]:
    """The replicas nginx.conf's upstream names, as `host:port`."""
    text = NGINX_CONF.read_text()
    block = re.search(r"upstream gradd \{(.*?)\}", text, re.S).group(1)
    assert "hash $http_x_gradd_session consistent;" in block
    return re.findall(r"^\s*server (\S+) max_fails=0;", block, re.M)


def test_configmap_and_compose_proxy_use_the_one_nginx_conf(kustomization, compose):
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == "gradd-nginx"
    (entry,) = generator["files"]
    key, _, path = entry.partition("=")
    assert key == "nginx.conf" and (DEPLOY / path).resolve() == NGINX_CONF
    # compose builds the proxy image from deploy/nginx, whose Dockerfile copies the same file
    # to where the ConfigMap is mounted in Kubernetes.
    nginx = compose["services"]["nginx"]
    context = (ROOT / nginx["build"]["context"]).resolve()
    assert context == NGINX_CONF.parent
    dockerfile = (context / "Dockerfile").read_text()
    assert "COPY nginx.conf /etc/nginx/nginx.conf" in dockerfile


def test_statefulset_has_a_volume_claim_per_replica_and_a_headless_service(objects):
    sts = objects[("StatefulSet", "gradd")]
    spec = sts["spec"]
    headless = objects[("Service", spec["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"
    labels = spec["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= labels.items()
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (claim,) = spec["volumeClaimTemplates"]
    (container,) = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/gradd"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GRADD_HOST"] == "0.0.0.0" and env["GRADD_PORT"] == "50051"
    assert env["GRADD_STATE_DIR"].startswith("/var/lib/gradd")
    assert spec["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert container["readinessProbe"]["grpc"]["port"] == 50051


def test_nginx_reaches_each_replica_by_a_service_of_its_own(objects):
    replicas = objects[("StatefulSet", "gradd")]["spec"]["replicas"]
    names = [f"gradd-{i}:50051" for i in range(replicas)]
    assert upstream_replicas() == names
    for i in range(replicas):
        service = objects[("Service", f"gradd-{i}")]
        assert service["spec"]["selector"] == {"statefulset.kubernetes.io/pod-name": f"gradd-{i}"}
        assert service["spec"]["ports"][0]["port"] == 50051


def test_nginx_deployment_mounts_the_configmap_and_is_the_proxy_service(objects):
    deployment = objects[("Deployment", "gradd-nginx")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/etc/nginx/nginx.conf" and mount["subPath"] == "nginx.conf"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "gradd-nginx"
    service = objects[("Service", "gradd-proxy")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["port"] == 50051
    assert re.search(r"^\s*listen 50051 http2;", NGINX_CONF.read_text(), re.M)


def test_compose_scale_profile_matches_the_upstream(compose):
    services = compose["services"]
    replicas = [name for name, s in services.items() if re.fullmatch(r"gradd-\d+", name)]
    assert [f"{name}:50051" for name in replicas] == upstream_replicas()
    volumes = set()
    for name in replicas:
        service = services[name]
        assert service["profiles"] == ["scale"] and "ports" not in service
        assert service["environment"]["GRADD_STATE_DIR"].startswith("/var/lib/gradd")
        (volume,) = service["volumes"]
        assert volume.endswith(":/var/lib/gradd")
        volumes.add(volume.split(":")[0])
    assert len(volumes) == len(replicas)  # each replica its own state volume
    nginx = services["nginx"]
    assert nginx["profiles"] == ["scale"] and sorted(nginx["depends_on"]) == replicas
    assert any(port.endswith(":50051") for port in nginx["ports"])
    # The default `docker compose up` starts no replica and no proxy.
    assert "profiles" not in services["gradd"]
