"""A private podman for the container tests: its own config, storage and runtime folders.

Our machines have no Docker engine and no registry (shared/notes/containers.md): podman needs a
config file (ulimits within the machine's limits, runc), and `debian:bookworm` is made locally by
debootstrap and `podman import`. Nothing here touches the host's podman: `CONTAINERS_CONF` and
`CONTAINERS_STORAGE_CONF` point at files written under CACHE_DIR (podman-compose inherits them),
and all of podman's state lives there. The image store (base image and build layers) is kept so
that a second run is fast; the rest is removed by `close()`. Outside CACHE_DIR, netavark leaves
its firewall chains and /run/containers/networks (IP allocations), as for any podman network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

CACHE_DIR = Path(os.environ.get("GRADD_PODMAN_CACHE", "/var/tmp/gradd-podman-cache"))
BASE_IMAGE = "docker.io/library/debian:bookworm"
# The host's extra CA certificates: pip inside a build goes through the same TLS interception.
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
CA_LABEL = "org.gradd.test.host-ca"


def compose_command() -> list[str] | None:
    """podman-compose from this interpreter's environment (the dev extra) or from PATH."""
    beside = Path(sys.executable).parent / "podman-compose"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("podman-compose")
    return [found] if found else None


def unusable_reason() -> str | None:
    """Why the container tests cannot run on this machine, or None when they can."""
    if os.environ.get("GRADD_CONTAINER_TESTS", "1") == "0":
        return "GRADD_CONTAINER_TESTS=0"
    if os.geteuid() != 0:
        return "container tests need root (podman with private storage, debootstrap)"
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install podman runc debootstrap)"
    if compose_command() is None:
        return "podman-compose not installed (pip install podman-compose, in the dev extra)"
    return None


def debian_mirror() -> str:
    """The Debian mirror apt uses on this host (debootstrap needs one; no other is reachable)."""
    texts = [p.read_text() for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for text in texts:
        for match in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in match.group(1):
                return match.group(1)
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", listing.read_text(), re.M):
            if "security" not in match.group(1):
                return match.group(1)
    return "http://deb.debian.org/debian"


def _host_ca_files() -> list[Path]:
    return sorted(HOST_CA_DIR.glob("**/*.crt")) if HOST_CA_DIR.is_dir() else []


def _host_ca_digest() -> str:
    digest = hashlib.sha256()
    for path in _host_ca_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class Podman:
    """podman and podman-compose confined to CACHE_DIR; one test run at a time holds it.

    The image store (CACHE_DIR/storage) persists so that builds are cached between runs.
    Everything else (libpod's database of containers and volumes, runroot, networks) lives in
    CACHE_DIR/run and is removed by `close()`. Fixed paths, not a fresh temporary folder per run:
    libpod records its runroot in its database, and conmon's cleanup command finds that database
    only at its default place in the store.
    """

    def __init__(self) -> None:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        self._lock = open(CACHE_DIR / "lock", "w")  # held until close()
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.storage = CACHE_DIR / "storage"
        self.rundir = CACHE_DIR / "run"
        self.timings: dict[str, float] = {}
        self.rundir.mkdir(exist_ok=True)
        conf = self.rundir / "containers.conf"
        conf.write_text(
            "[containers]\n"
            # The defaults exceed this machine's hard limits and `podman run` fails.
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            # crun refuses the hybrid cgroup layout here; runc works.
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.rundir}/events.log"\n'
            f'tmp_dir = "{self.rundir}/tmp"\n'
            f'volume_path = "{self.rundir}/volumes"\n'
            "[network]\n"
            f'network_config_dir = "{self.rundir}/networks"\n'
        )
        storage_conf = self.rundir / "storage.conf"
        storage_conf.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.storage}"\n'
            f'runroot = "{self.rundir}/runroot"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(conf),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
            # Keep HEALTHCHECK: podman's default OCI image format drops it.
            "BUILDAH_FORMAT": "docker",
        }
        # A database made with other paths would pin them (see above): start a new one.
        info = self.run("info", "--format", "{{.Store.RunRoot}}", check=False)
        if info.stdout.strip() != f"{self.rundir}/runroot":
            (self.storage / "libpod" / "bolt_state.db").unlink(missing_ok=True)
        # What an interrupted run left (its containers may still run) is stale.
        self._remove_leftovers()

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS`; on failure raise with its output."""
        return self._run(["podman", *args], timeout, check, input)

    def compose(
        self, project: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman-compose -p PROJECT ARGS` in the repository root."""
        cmd = [*compose_command(), "-p", project, *args]  # type: ignore[misc]
        return self._run(cmd, timeout, True, None, extra_env=env)

    def _run(self, cmd, timeout, check, input, extra_env=None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            cmd,
            cwd=Path(__file__).resolve().parents[2],
            env={**self.env, **(extra_env or {})},
            input=input,
            capture_output=True,
            timeout=timeout,
        )
        out = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}\n"
                f"--- stdout\n{out.stdout[-6000:]}\n--- stderr\n{out.stderr[-6000:]}"
            )
        return out

    def timed(self, name: str, fn, *args, **kwargs):
        """Call fn and record how long it took under `name` (reported by the tests)."""
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[name] = round(time.monotonic() - start, 1)

    def build(self, dockerfile: str, tag: str, timeout: float = 1800) -> None:
        """Build an image, then tag its builder stage too: `close()` prunes untagged images, and
        the builder's parent stage (the dependencies' pip install) is the slow one to cache."""
        self.run("build", "-f", dockerfile, "-t", tag, ".", timeout=timeout)
        self.tag_builder(dockerfile, tag)

    def tag_builder(self, dockerfile: str, tag: str) -> None:
        """Tag the builder stage of an image just built (all cached: a second or two)."""
        builder = tag.replace(":", "-builder:", 1) if ":" in tag else tag + "-builder"
        self.run("build", "-f", dockerfile, "--target", "builder", "-t", builder, ".", timeout=600)

    def ensure_base_image(self) -> None:
        """Make `debian:bookworm` locally: debootstrap once into the cache, import when missing."""
        rootfs = CACHE_DIR / "debian-bookworm-rootfs"
        if not (rootfs / "etc" / "debian_version").exists():
            self.timed("debootstrap", self._debootstrap, rootfs)
        digest = _host_ca_digest()
        inspect = self.run("image", "inspect", BASE_IMAGE, check=False)
        if inspect.returncode == 0:
            labels = json.loads(inspect.stdout)[0].get("Labels") or {}
            if labels.get(CA_LABEL) == digest:
                return
        self.timed("import", self._import, rootfs, digest)

    def _debootstrap(self, rootfs: Path) -> None:
        partial = rootfs.with_name(rootfs.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        cmd = ["debootstrap", "--variant=minbase", "bookworm", str(partial), debian_mirror()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        shutil.rmtree(rootfs, ignore_errors=True)
        partial.rename(rootfs)

    def _import(self, rootfs: Path, digest: str) -> None:
        certs = rootfs / "usr" / "local" / "share" / "ca-certificates"
        shutil.rmtree(certs, ignore_errors=True)
        certs.mkdir(parents=True)
        for path in _host_ca_files():
            shutil.copy(path, certs / path.name)
        # Like the official image: no apt lists or package cache (80 MB).
        tar = subprocess.run(
            ["tar", "-C", str(rootfs), "--exclude=./var/lib/apt/lists/*",
             "--exclude=./var/cache/apt/*", "-c", "."],
            capture_output=True, check=True,
        )  # fmt: skip
        self.run(
            "import", "--change", f"LABEL {CA_LABEL}={digest}", "-", BASE_IMAGE,
            input=tar.stdout, timeout=300,
        )  # fmt: skip

    def _remove_leftovers(self) -> None:
        """Remove all containers, volumes and networks, and containers that only the image store
        still knows (an interrupted build)."""
        for args in (
            ("rm", "--all", "--force", "--time", "5"),
            ("volume", "prune", "--force"),
            ("network", "prune", "--force"),
        ):
            with contextlib.suppress(subprocess.SubprocessError):
                self.run(*args, check=False, timeout=120)
        with contextlib.suppress(subprocess.SubprocessError):
            out = self.run("ps", "--all", "--external", "--format", "{{.ID}}", check=False)
            for container in out.stdout.split():
                self.run("rm", "--force", container, check=False)

    def close(self) -> None:
        """Remove this run's containers, volumes, networks and untagged images; keep the store."""
        try:
            self._remove_leftovers()
            with contextlib.suppress(subprocess.SubprocessError):
                self.run("image", "prune", "--force", check=False, timeout=120)
            # conmon's cleanup processes may still write here for a moment after the removals.
            for _ in range(20):
                shutil.rmtree(self.rundir, ignore_errors=True)
                if not self.rundir.exists():
                    break
                time.sleep(0.5)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
