"""The GPU check (`make gpu-check`): on a machine with an NVIDIA GPU and CuPy, offline.

1. the engine, server and SDK suites with device cuda on the real CuPy (the stand-in's harness,
   tests/cuda_standin, with GRADD_CUDA_STANDIN=0);
2. a gradd-server session on cuda training the MLP through the SDK;
3. speed against PyTorch CUDA (when torch sees the GPU): the MLP step 784-256-10 batch 256, a
   4096x4096 matmul chain forward + backward, and 1 GiB up and down.

Writes REPORT (markdown) and REPORT.json next to it; exits 1 if a check failed.
Run: ``python benchmarks/gpu_check.py [--report build/gpu-check/report.md] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_suites(quick: bool) -> dict:
    """The suites with device cuda on the real CuPy (on the stand-in where GRADD_CUDA_STANDIN=1
    rehearses the check without a GPU); their summary line and exit status."""
    standin = os.environ.get("GRADD_CUDA_STANDIN", "0")
    env = {
        **os.environ,
        "GRADD_CUDA_STANDIN": standin,
        "PYTHONPATH": str(ROOT / "tests/cuda_standin"),
    }
    suites = ["tests/engine"] if quick else ["tests/engine", "tests/server", "tests/sdk"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "standin_plugin", *suites]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    return {"command": " ".join(cmd[2:]), "rc": done.returncode, "summary": lines[-1:]}


def server_session() -> dict:
    """A gradd-server with --device cuda; the SDK trains the MLP there for 5 steps."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gradd-server"), "--port", "0", "--device", "cuda"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = None
        for line in server.stdout:  # "... listening on HOST:PORT (device cuda, N workers)"
            if "listening on" in line:
                port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
                break
        if port is None:
            return {"ok": False, "error": "the server did not start"}
        session = gradd.connect(f"127.0.0.1:{port}", timeout=120)
        setup = mlp_setup(session)
        loss = mlp_steps(session, session.functional, setup, steps=5).item()
        device = str(session.device)
        session.close()
        return {
            "ok": bool(np.isfinite(loss)) and device == "cuda:0",
            "loss": loss,
            "device": device,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


def benchmarks(quick: bool) -> dict:
    """gradd on CuPy against PyTorch CUDA, medians in ms."""
    xp = ge.get_device("cuda").xp
    sync_gradd = xp.cuda.Device().synchronize
    torch = None
    try:
        import torch as torch_module

        if torch_module.cuda.is_available():
            torch = torch_module
    except ImportError:
        pass
    rows: dict[str, dict] = {}
    repeat = 3 if quick else 10

    def row(name: str, ours: Callable, theirs: Callable | None) -> None:
        r = {"gradd_ms": gpu_time(ours, sync_gradd, repeat) * 1e3}
        if theirs is not None:
            r["torch_ms"] = gpu_time(theirs, torch.cuda.synchronize, repeat) * 1e3
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
    suites = result["suites"]
    lines += [f"suites on CuPy: rc {suites['rc']} — {' '.join(suites['summary'])}", ""]
    lines += [f"server session on cuda: {result['server']}", ""]
    lines += ["| workload | gradd ms | torch ms | ratio |", "|---|---|---|---|"]
    for name, r in result["bench"]["rows"].items():
        torch_ms = f"{r['torch_ms']:.2f}" if "torch_ms" in r else "n/a"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "n/a"
        lines.append(f"| {name} | {r['gradd_ms']:.2f} | {torch_ms} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default=str(ROOT / "build/gpu-check/report.md"))
    parser.add_argument("--quick", action="store_true", help="engine suite only, small sizes")
    args = parser.parse_args()
    if not ge.cuda_is_available():
        print("no GPU: gradd's cuda device is not available (CuPy and an NVIDIA GPU needed)")
        return 2
    xp = ge.get_device("cuda").xp
    name = getattr(xp.cuda.runtime, "getDeviceProperties", lambda i: {"name": b"stand-in"})(0)
    result = {"device": name["name"].decode() if isinstance(name["name"], bytes) else name["name"]}
    result["suites"] = run_suites(args.quick)
    result["server"] = server_session()
    result["bench"] = benchmarks(args.quick)
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(markdown(result))
    report.with_suffix(".json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0 if result["suites"]["rc"] == 0 and result["server"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
