"""TLS and mutual TLS against real gradd-server processes: the SDK, the `gradd` command,
grpcurl (health and reflection), and the failures a client meets (wrong CA, no client
certificate, TLS on one side only) as UNAVAILABLE with a message that says which.

Certificates are made by trustme: a CA, a server certificate for 127.0.0.1 and localhost, a
client certificate, and a second CA that signed none of them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import gradd
import numpy as np
import pytest
from server_harness import BIN

trustme = pytest.importorskip("trustme", reason="trustme (the dev extra) makes the certificates")

ADMIN = "tls-admin-token"


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from other_ca
    stranger_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("trainer@example.com")
    stranger = other.issue_cert("stranger@example.com")
    files = {
        "ca": ca.cert_pem,
        "other_ca": other.cert_pem,
        "cert": server.cert_chain_pems[0],
        "key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
        "stranger_cert": stranger.cert_chain_pems[0],
        "stranger_key": stranger.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(d / f"{name}.pem"))
    return Pki(**{name: d / f"{name}.pem" for name in files})


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    from server_harness import ServerProcess

    log = tmp_path_factory.mktemp("tls") / "server.log"
    proc = ServerProcess(
        log,
        "--tls-cert",
        str(pki.cert),
        "--tls-key",
        str(pki.key),
        env={"GRADD_ADMIN_TOKEN": ADMIN},
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def mtls_server(pki, tmp_path_factory):
    from server_harness import ServerProcess

    log = tmp_path_factory.mktemp("mtls") / "server.log"
    env = {
        "GRADD_TLS_CERT": str(pki.cert),
        "GRADD_TLS_KEY": str(pki.key),
        "GRADD_TLS_CLIENT_CA": str(pki.ca),
    }
    proc = ServerProcess(log, env=env)
    yield proc
    proc.stop()


def _train_one_step(s) -> float:
    w = s.tensor([2.0], requires_grad=True)
    loss = (w * 3.0).sum()
    loss.backward()
    return float(w.grad.item())


def test_server_logs_that_it_serves_tls(tls_server, mtls_server):
    assert "(TLS, device" in tls_server.wait_log("listening on")
    assert "(TLS, client certificates required," in mtls_server.wait_log("listening on")


def test_sdk_over_tls_with_a_path_or_bytes_or_a_grpcs_target(tls_server, pki):
    with gradd.connect(tls_server.addr, tls=True, root_certificates=str(pki.ca)) as s:
        assert _train_one_step(s) == 3.0
    target = f"grpcs://{tls_server.addr}"
    with gradd.connect(target, root_certificates=pki.ca.read_bytes(), timeout=30) as s:
        x = s.tensor(np.arange(6.0).reshape(2, 3))
        np.testing.assert_array_equal(x.sum(0).numpy(), [3.0, 5.0, 7.0])
        # Watch opens a channel of its own: it is TLS too.
        events = s.watch(steps_only=True)
        assert type(next(iter(events))).__name__ == "WatchStarted"


def test_sdk_over_mutual_tls(mtls_server, pki):
    s = gradd.connect(
        mtls_server.addr,
        root_certificates=pki.ca,
        client_certificate=pki.client_cert,
        client_key=pki.client_key.read_bytes(),
    )
    with s:
        assert _train_one_step(s) == 3.0


def _refused(target: str, **kw) -> gradd.GraddError:
    with pytest.raises(gradd.UnavailableError) as info:
        gradd.connect(target, timeout=10, **kw)
    err = info.value
    assert isinstance(err, gradd.GraddError) and err.code_name == "UNAVAILABLE"
    return err


def test_wrong_ca_is_unavailable_saying_the_certificate_is_not_trusted(tls_server, pki):
    err = _refused(tls_server.addr, root_certificates=pki.other_ca)
    assert "not signed by a CA in root_certificates" in str(err)


def test_a_certificate_for_another_host_is_unavailable_saying_so(pki, tmp_path):
    other = trustme.CA()
    named = other.issue_cert("gradd.example.com")
    named.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    named.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    from server_harness import ServerProcess

    args = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    proc = ServerProcess(tmp_path / "server.log", *args)
    try:
        err = _refused(proc.addr, root_certificates=other.cert_pem.bytes())
        assert "does not name the host" in str(err)
    finally:
        proc.stop()


def test_mutual_tls_without_a_client_certificate_is_unavailable_saying_so(mtls_server, pki):
    err = _refused(mtls_server.addr, root_certificates=pki.ca)
    assert "may require a client certificate" in str(err), str(err)


def test_mutual_tls_with_a_client_certificate_of_another_ca_is_unavailable(mtls_server, pki):
    err = _refused(
        mtls_server.addr,
        root_certificates=pki.ca,
        client_certificate=pki.stranger_cert,
        client_key=pki.stranger_key,
    )
    assert "--tls-client-ca" in str(err)


def test_plaintext_client_of_a_tls_server_is_told_it_may_need_tls(tls_server):
    err = _refused(tls_server.addr)
    assert "may require TLS" in str(err)


def test_tls_client_of_a_plaintext_server_is_told_it_does_not_speak_tls(server, pki):
    err = _refused(server.addr, root_certificates=pki.ca)
    assert "does not speak TLS" in str(err)


def test_connect_checks_its_tls_options_before_connecting(pki):
    with pytest.raises(ValueError, match="go together"):
        gradd.connect("127.0.0.1:1", root_certificates=pki.ca, client_certificate=pki.cert)
    with pytest.raises(ValueError, match="contradicts"):
        gradd.connect("grpcs://127.0.0.1:1", tls=False)
    with pytest.raises(ValueError, match="tls=False"):
        gradd.connect("127.0.0.1:1", tls=False, root_certificates=pki.ca)
    with pytest.raises(ValueError, match="need a server target"):
        gradd.connect(tls=True)
    with pytest.raises(FileNotFoundError):
        gradd.connect("127.0.0.1:1", root_certificates=pki.ca.with_name("missing.pem"))


def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "grpcurl"), *args], capture_output=True, text=True, timeout=60)


def test_health_and_reflection_over_tls_with_grpcurl(tls_server, pki):
    listed = _grpcurl("-cacert", str(pki.ca), tls_server.addr, "list")
    assert listed.returncode == 0, listed.stderr
    assert "gradd.v1.AutogradService" in listed.stdout.split()
    health = _grpcurl("-cacert", str(pki.ca), tls_server.addr, "grpc.health.v1.Health/Check")
    assert health.returncode == 0 and '"status": "SERVING"' in health.stdout, health.stderr


def test_health_and_reflection_over_mutual_tls_with_grpcurl(mtls_server, pki):
    certs = ["-cacert", str(pki.ca), "-cert", str(pki.client_cert), "-key", str(pki.client_key)]
    described = _grpcurl(*certs, mtls_server.addr, "describe", "gradd.v1.AutogradService")
    assert described.returncode == 0 and "rpc CreateSession" in described.stdout
    health = _grpcurl(*certs, mtls_server.addr, "grpc.health.v1.Health/Check")
    assert '"status": "SERVING"' in health.stdout, health.stderr
    refused = _grpcurl("-cacert", str(pki.ca), mtls_server.addr, "list")
    assert refused.returncode != 0


def _gradd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRADD_ADMIN_TOKEN": ADMIN}
    return subprocess.run(
        [str(BIN / "gradd"), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_gradd_command_over_tls(tls_server, pki):
    with gradd.connect(tls_server.addr, root_certificates=pki.ca, label="tls-listed"):
        listed = _gradd(
            "sessions", f"grpcs://{tls_server.addr}", "--root-certificates", str(pki.ca)
        )
        assert listed.returncode == 0, listed.stderr
        assert "tls-listed" in listed.stdout
        flagged = _gradd("sessions", tls_server.addr, "--tls", "--root-certificates", str(pki.ca))
        assert flagged.returncode == 0 and "tls-listed" in flagged.stdout
    wrong = _gradd("sessions", tls_server.addr, "--root-certificates", str(pki.other_ca))
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("gradd sessions: UNAVAILABLE: cannot reach")
    assert "not signed by a CA" in wrong.stderr and len(wrong.stderr.splitlines()) == 1


def test_gradd_command_over_mutual_tls(mtls_server, pki):
    certs = ["--root-certificates", str(pki.ca)]
    client = ["--client-certificate", str(pki.client_cert), "--client-key", str(pki.client_key)]
    # This server has no admin token: reaching it is PERMISSION_DENIED, not UNAVAILABLE.
    reached = _gradd("sessions", mtls_server.addr, *certs, *client)
    assert "PERMISSION_DENIED" in reached.stderr or "UNAUTHENTICATED" in reached.stderr
    refused = _gradd("sessions", mtls_server.addr, *certs)
    assert refused.returncode == 2 and "may require a client certificate" in refused.stderr
    half = _gradd("sessions", mtls_server.addr, *certs, "--client-key", str(pki.client_key))
    assert half.returncode == 2 and "go together" in half.stderr


def _start_fails(*args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "gradd-server"), "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_server_refuses_unusable_tls_files_in_one_line(pki):
    assert "go together" in _start_fails("--tls-cert", str(pki.cert))
    assert "needs --tls-cert" in _start_fails("--tls-client-ca", str(pki.ca))
    mismatched = _start_fails("--tls-cert", str(pki.cert), "--tls-key", str(pki.client_key))
    assert mismatched.startswith("gradd-server: --tls-cert") and "private key" in mismatched
    missing = _start_fails("--tls-cert", str(pki.cert), "--tls-key", str(pki.key) + ".missing")
    assert "cannot read it" in missing
    bad_ca = _start_fails(
        "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-client-ca", str(pki.key)
    )
    assert "no PEM CA certificate" in bad_ca
