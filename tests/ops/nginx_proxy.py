"""deploy/nginx/nginx.conf run on loopback, without containers, for tests and benchmarks.

The shipped file names its replicas gradd-0..gradd-2 on port 50051 and listens on 50051, as
compose and Kubernetes give them. Here the same file is rewritten only where a machine's
loopback differs (those addresses, the pid file and the temporary folders, which go under a
prefix folder of the run) and started as `nginx -c CONF -p PREFIX`; every other directive is
the shipped one. Debian's nginx (`apt-get install nginx-light`, as .ci/run does) is needed.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
REPLICA = re.compile(r"^(\s*server )gradd-(\d+):50051( .*)$", re.M)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )


def unusable_reason() -> str | None:
    """Why nginx cannot run here, or None."""
    if nginx_binary() is None:
        return "nginx not installed (apt-get install nginx-light; .ci/run does)"
    return None


def loopback_conf(listen_port: int, replica_ports: list[int], prefix: Path) -> str:
    """The shipped configuration with loopback addresses and its files under `prefix`."""
    text = CONF.read_text()
    named = [int(m.group(2)) for m in REPLICA.finditer(text)]
    if named != list(range(len(replica_ports))):
        raise ValueError(f"{CONF} names replicas {named}, not 0..{len(replica_ports) - 1}")
    text = REPLICA.sub(lambda m: f"{m[1]}127.0.0.1:{replica_ports[int(m[2])]}{m[3]}", text)
    text, listens = re.subn(r"listen 50051 ", f"listen 127.0.0.1:{listen_port} ", text)
    text, pids = re.subn(r"^pid \S+;", f"pid {prefix}/nginx.pid;", text, flags=re.M)
    text = re.sub(r"(_temp_path) /tmp/", rf"\1 {prefix}/", text)
    if (listens, pids) != (1, 1):
        raise ValueError(f"{CONF}: expected one `listen 50051` and one `pid`")
    return text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NginxProxy:
    """nginx with the shipped configuration in front of loopback replicas."""

    def __init__(self, replica_ports: list[int], prefix: Path) -> None:
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.addr = f"127.0.0.1:{self.port}"
        conf = prefix / "nginx.conf"
        conf.write_text(loopback_conf(self.port, replica_ports, prefix))
        self.log_path = prefix / "stderr.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        command = [nginx_binary(), "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"]
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"nginx did not start:\n{self.log_path.read_text()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
