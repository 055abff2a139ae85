# gradd: `make demo` trains the article's model through a server; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: venv install demo test lint format bench clean protos

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

test: $(STAMP) lint
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) examples/demo.py

# Regenerate the committed gRPC stubs (gradd.v1 in client/v1/) from protos/gradd/v1/*.proto.
protos: $(STAMP)
	rm -rf build/protos && mkdir -p build/protos
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=build/protos --pyi_out=build/protos protos/gradd/v1/*.proto
	$(PY) -m grpc_tools.protoc -Iprotos --grpc_python_out=build/protos protos/gradd/v1/service.proto
	rm -f client/v1/*_pb2*.py*
	cp build/protos/gradd/v1/*_pb2*.py* client/v1/

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
