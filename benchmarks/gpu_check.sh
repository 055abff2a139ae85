#!/bin/sh
# `make gpu-check`, runnable where make is not installed: on the GPU machine, offline, install the
# wheels of `make gpu-wheels` into a venv that also sees every package of the machine's Python,
# then run benchmarks/gpu_check.py with the given arguments.
#   PYTHON=python3 GPU_WHEELS=build/gpu-wheels GPU_VENV=build/gpu-venv sh benchmarks/gpu_check.sh ARGS
set -eu
PYTHON=${PYTHON:-python3}
GPU_WHEELS=${GPU_WHEELS:-build/gpu-wheels}
GPU_VENV=${GPU_VENV:-build/gpu-venv}
rm -rf "$GPU_VENV"
"$PYTHON" -m venv --without-pip "$GPU_VENV"
# The machine's python3 is often itself a venv, whose packages a nested venv's
# --system-site-packages would not see: a .pth file names its site-packages instead.
purelib=$("$GPU_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
"$PYTHON" -c 'import site; print(*site.getsitepackages(), sep="\n")' >"$purelib/machine.pth"
# Every carried wheel (gradd's, and the grpcio and protobuf its stubs need) shadows the
# machine's own version: the venv's site-packages come before the .pth's folders.
"$GPU_VENV/bin/python" -m pip install -q --no-index --no-deps --no-compile "$GPU_WHEELS"/*.whl
cp "$GPU_WHEELS/grpcurl" "$GPU_VENV/bin/grpcurl"
PYTHONUNBUFFERED=1 exec "$GPU_VENV/bin/python" benchmarks/gpu_check.py "$@"
