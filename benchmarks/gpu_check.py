"""The GPU check (`make gpu-check`): on a machine with an NVIDIA GPU and CuPy, offline.

1. the engine, server and SDK suites with device cuda on the real CuPy (the stand-in's harness,
   tests/cuda_standin, with GRADD_CUDA_STANDIN=0);
2. a gradd-server session on cuda training the MLP through the SDK;
3. speed against PyTorch CUDA (when torch sees the GPU): the MLP step 784-256-10 batch 256, a
   4096x4096 matmul chain forward + backward, and 1 GiB up and down.

The server session and the benchmarks run first (a minute), the suites last, in parallel under
pytest-xdist where it is installed and within --suites-timeout seconds, so that a short lease
still brings figures back. Writes OUT/report.md and report.json after every stage, the suites'
log to OUT/suites.log and their results to OUT/junit.xml; exits 1 if a check failed.
Run: ``python benchmarks/gpu_check.py [--out build/gpu-check] [--quick] [--workers N]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gradd  # noqa: E402
import gradd.engine as ge  # noqa: E402
from workloads import mlp_setup, mlp_steps  # noqa: E402

GIB = 1 << 30


def gpu_time(fn: Callable[[], object], sync: Callable[[], None], repeat: int) -> float:
    """Median seconds of ``fn`` to completion on the GPU (one warm-up call first)."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_suites(quick: bool, out: Path, workers: int, timeout: float) -> dict:
    """The suites with device cuda on the real CuPy (on the stand-in where GRADD_CUDA_STANDIN=1
    rehearses the check without a GPU); their summary line and exit status. The log streams to
    OUT/suites.log, so a run cut short still shows how far it got."""
    standin = os.environ.get("GRADD_CUDA_STANDIN", "0")
    env = {
        **os.environ,
        "GRADD_CUDA_STANDIN": standin,
        "PYTHONPATH": str(ROOT / "tests/cuda_standin"),
    }
    suites = ["tests/engine"] if quick else ["tests/engine", "tests/server", "tests/sdk"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "standin_plugin", "--timeout", "120"]
    cmd += ["-rfE", f"--junitxml={out / 'junit.xml'}"]
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", str(workers)]
    cmd += suites
    log_path = out / "suites.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = f"timed out after {timeout:.0f} s"
    lines = log_path.read_text(errors="replace").strip().splitlines()
    return {
        "command": " ".join(cmd[2:]),
        "rc": rc,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": lines[-1:],
    }


def server_session() -> dict:
    """A gradd-server with --device cuda; the SDK trains the MLP there for 5 steps."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gradd-server"), "--port", "0", "--device", "cuda"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port, said = None, []
        for line in server.stdout:  # "... listening on HOST:PORT (device cuda, N workers)"
            said.append(line)
            if "listening on" in line:
                port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
                break
        if port is None:
            return {"ok": False, "error": "the server did not start", "log": said[-20:]}
        session = gradd.connect(f"127.0.0.1:{port}", timeout=120)
        setup = mlp_setup(session)
        loss = mlp_steps(session, session.functional, setup, steps=5).item()
        device = str(session.device)
        result = {"ok": bool(np.isfinite(loss)) and device == "cuda:0", "loss": loss}
        result["device"] = device

        def ten(lib: object, F: object, setup: object) -> Callable[[], float]:  # noqa: N803
            return lambda: mlp_steps(lib, F, setup, steps=10).item()

        # Remote, the step is timed as a client sees it: 10 steps, then one .item() waits.
        steps = {"gradd_remote": ten(session, session.functional, setup)}
        torch = _torch_cuda()
        if torch is not None:
            import torch.nn.functional as TF

            torch.set_default_device("cuda")
            steps["torch"] = ten(torch, TF, mlp_setup(torch))
            torch.set_default_device("cpu")
        for name, run in steps.items():
            result[f"mlp_step_ms_{name}"] = gpu_time(run, lambda: None, 10) * 1e3 / 10
        if torch is not None:
            result["mlp_step_ratio"] = (
                result["mlp_step_ms_gradd_remote"] / result["mlp_step_ms_torch"]
            )
        session.close()
        return result
    finally:
        server.terminate()
        server.wait(timeout=60)


def cuda_image(timeout: float = 600) -> dict:
    """The CUDA image's test (tests/ops/test_container.py -k cuda_image), where podman and its
    NVIDIA hook (or CDI spec) are installed; otherwise what is missing."""
    hooks = [*Path("/usr/share/containers/oci/hooks.d").glob("*nvidia*"), Path("/etc/cdi")]
    if shutil.which("podman") is None:
        return {"ran": False, "why": "podman is not installed"}
    if not any(h.exists() for h in hooks):
        return {"ran": False, "why": "podman has no NVIDIA hook or CDI spec"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "tests/ops/test_container.py"]
    done = subprocess.run(
        [*cmd, "-k", "cuda_image"], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    return {"ran": True, "rc": done.returncode, "summary": done.stdout.strip().splitlines()[-1:]}


def _torch_cuda() -> object | None:
    """torch, where it is installed and sees the GPU."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def graph_node_bytes(n: int = 100_000) -> dict:
    """What one recorded node of a chain of scalar muls costs, host (RSS) and device (the CuPy
    pool's used bytes), on cpu and cuda: the memory meter charges NODE_BYTES for it."""
    import gc

    xp = ge.get_device("cuda").xp
    pool = xp.get_default_memory_pool()
    out = {}
    for device in ("cpu", "cuda"):
        x = ge.full([1], 1.0, device=device, requires_grad=True)
        y = x * 1.0001  # the kernel compiled, the allocator warm
        gc.collect()
        rss, dev = _rss(), pool.used_bytes()
        for _ in range(n):
            y = y * 1.0001
        out[device] = {
            "host_bytes_per_node": round((_rss() - rss) / n, 1),
            "device_bytes_per_node": round((pool.used_bytes() - dev) / n, 1),
        }
        del x, y
        gc.collect()
    return out


def benchmarks(quick: bool) -> dict:
    """gradd on CuPy against PyTorch CUDA, medians in ms."""
    xp = ge.get_device("cuda").xp
    sync_gradd = xp.cuda.Device().synchronize
    torch = _torch_cuda()
    rows: dict[str, dict] = {}
    repeat = 3 if quick else 10

    def row(name: str, ours: Callable, theirs: Callable | None, times: int = repeat) -> None:
        r = {"gradd_ms": gpu_time(ours, sync_gradd, times) * 1e3}
        if theirs is not None:
            r["torch_ms"] = gpu_time(theirs, torch.cuda.synchronize, times) * 1e3
            r["ratio"] = r["gradd_ms"] / r["torch_ms"]
        rows[name] = r

    session = gradd.connect(device="cuda")
    s = mlp_setup(session)
    torch_mlp = None
    if torch is not None:
        import torch.nn.functional as TF

        torch.set_default_device("cuda")
        ts = mlp_setup(torch)
        torch.set_default_device("cpu")
        torch_mlp = lambda: mlp_steps(torch, TF, ts, 1)  # noqa: E731
    row(
        "MLP step 784-256-10, batch 256",
        lambda: mlp_steps(session, session.functional, s, 1),
        torch_mlp,
        times=10 * repeat,  # milliseconds each, bound by the host: more samples for the median
    )

    n = 1024 if quick else 4096

    def chain(lib: object, device: str) -> Callable:
        ws = [lib.randn(n, n, device=device, requires_grad=True) for _ in range(3)]

        def step() -> None:
            y = (ws[0] @ ws[1]) @ ws[2]
            y.sum().backward()
            for w in ws:
                w.grad = None

        return step

    theirs = chain(torch, "cuda") if torch is not None else None
    row(f"matmul chain {n}x{n} x3, forward + backward", chain(ge, "cuda"), theirs)

    size = GIB // 16 if quick else GIB
    host = np.ones(size // 4, np.float32)
    up = lambda: ge.tensor(host, device="cuda")  # noqa: E731
    t_up = (lambda: torch.from_numpy(host).cuda()) if torch is not None else None
    row(f"upload {size >> 20} MiB", up, t_up)
    # The ceiling an upload is measured against: the same bytes from pinned host memory
    # (CuPy's; the stand-in has none).
    if hasattr(xp.cuda, "alloc_pinned_memory"):
        pinned_mem = xp.cuda.alloc_pinned_memory(size)
        pinned = np.frombuffer(pinned_mem, np.float32, size // 4)
        pinned[...] = host
        on_device = xp.empty(size // 4, np.float32)
        row(
            f"upload {size >> 20} MiB from pinned memory (CuPy, the ceiling)",
            lambda: on_device.set(pinned),
            None,
        )
        from gradd.engine.staged_upload import Stager

        for threads, chunk in ((4, 8), (8, 8), (8, 4), (12, 8), (16, 4), (16, 8)):
            stager = Stager(xp, threads=threads, chunk=chunk << 20)
            row(
                f"upload {size >> 20} MiB staged: {threads} threads, {chunk} MiB chunks",
                lambda stager=stager: stager.upload(host),
                None,
            )
            del stager
    on_gpu = up()
    t_on_gpu = t_up() if t_up is not None else None
    row(
        f"download {size >> 20} MiB",
        lambda: on_gpu.cpu().numpy(),
        (lambda: t_on_gpu.cpu().numpy()) if t_on_gpu is not None else None,
    )
    return {"torch_cuda": torch is not None, "rows": rows}


def markdown(result: dict) -> str:
    lines = ["# gradd GPU check", "", f"device: {result['device']}", ""]
    lines += [f"server session on cuda: {result.get('server', 'not run')}", ""]
    lines += ["| workload | gradd ms | torch ms | ratio |", "|---|---|---|---|"]
    for name, r in result.get("bench", {}).get("rows", {}).items():
        torch_ms = f"{r['torch_ms']:.2f}" if "torch_ms" in r else "n/a"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "n/a"
        lines.append(f"| {name} | {r['gradd_ms']:.2f} | {torch_ms} | {ratio} |")
    suites = result.get("suites")
    if suites is not None:
        summary = " ".join(suites["summary"])
        lines += ["", f"suites on CuPy ({suites['seconds']} s): rc {suites['rc']} — {summary}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build/gpu-check"))
    parser.add_argument("--quick", action="store_true", help="engine suite only, small sizes")
    parser.add_argument("--workers", type=int, default=8, help="pytest-xdist workers")
    parser.add_argument("--suites-timeout", type=float, default=420.0)
    parser.add_argument("--stages", default="server,graph_node_bytes,bench,suites,image")
    args = parser.parse_args()
    if not ge.cuda_is_available():
        print("no GPU: gradd's cuda device is not available (CuPy and an NVIDIA GPU needed)")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xp = ge.get_device("cuda").xp
    name = getattr(xp.cuda.runtime, "getDeviceProperties", lambda i: {"name": b"stand-in"})(0)
    result = {"device": name["name"].decode() if isinstance(name["name"], bytes) else name["name"]}

    def save() -> None:
        (out / "report.md").write_text(markdown(result))
        (out / "report.json").write_text(json.dumps(result, indent=2))

    stages = [
        ("server", server_session),
        ("graph_node_bytes", graph_node_bytes),
        ("bench", lambda: benchmarks(args.quick)),
        ("suites", lambda: run_suites(args.quick, out, args.workers, args.suites_timeout)),
        ("image", cuda_image),
    ]
    stages = [(stage, run) for stage, run in stages if stage in args.stages.split(",")]
    for stage, run in stages:
        try:
            result[stage] = run()
        except Exception as exc:  # a stage that breaks must not lose the others' figures
            result[stage] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "rc": 1}
            if stage == "suites":
                result[stage].update(seconds=0, summary=[])
        save()
        print(f"[{stage}] {json.dumps(result[stage])[:2000]}", flush=True)
    print(markdown(result))
    passed = all(
        result[stage].get("rc", 0) == 0 and result[stage].get("ok", True) for stage, _ in stages
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
