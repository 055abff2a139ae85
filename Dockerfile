# gradd CPU image: `gradd-server` on NumPy, as a non-root user, configured by GRADD_* variables.
#   docker build -t gradd .                  (podman: podman build --format docker -t gradd .,
#   docker run -p 50051:50051 gradd           since the OCI format has no HEALTHCHECK)
# The CUDA variant is Dockerfile.cuda. docs/containers.md has the details.

# --- deps: a virtual environment in /opt/gradd with gradd's dependencies --------------------
FROM debian:bookworm AS deps
# Debian stable's python3 is fixed within the release, so apt versions are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/gradd
WORKDIR /src
# Dependencies first, read from pyproject.toml, so that this slow layer is rebuilt only when
# they change and not on every edit of the source.
COPY pyproject.toml ./
RUN /opt/gradd/bin/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['build-system']['requires'] + p['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/gradd/bin/pip install -r /tmp/requirements.txt

# --- builder: gradd itself, as a wheel ----------------------------------------------------------
FROM deps AS builder
COPY . .
RUN /opt/gradd/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && mkdir -p examples

# --- final: python3, the venv, gradd and the examples; no compiler, no pip cache -------------
FROM debian:bookworm
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --home-dir /var/lib/gradd --create-home \
      --shell /usr/sbin/nologin gradd
# Two layers: the dependencies (large, rebuilt only when pyproject.toml changes), then gradd.
COPY --from=deps /opt/gradd /opt/gradd
COPY --from=builder /wheels /tmp/wheels
RUN /opt/gradd/bin/pip install --no-index --no-deps --no-cache-dir /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels
COPY --from=builder /src/examples /opt/gradd/examples
ENV PATH=/opt/gradd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRADD_HOST=0.0.0.0 \
    GRADD_PORT=50051 \
    GRADD_DEVICE=cpu \
    GRADD_STATE_DIR=/var/lib/gradd/state
USER 10001:10001
# The server's data (a named volume in docker-compose.yml): sessions kept across restarts in
# /var/lib/gradd/state (GRADD_STATE_DIR; empty turns it off).
WORKDIR /var/lib/gradd
# gRPC; and Prometheus /metrics when GRADD_METRICS_PORT=9464 is set (docker-compose.yml).
EXPOSE 50051 9464
# Asks the standard grpc.health.v1 service of the server in this container: exit 0 when SERVING.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c = grpc.insecure_channel('127.0.0.1:' + os.environ.get('GRADD_PORT', '50051')); sys.exit(g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=4).status != h.HealthCheckResponse.SERVING)"]
# Exec form: the server is PID 1 and gets SIGTERM itself; it stops within its grace period and
# writes each changed session's last snapshot, exit 0 (give `docker stop -t 60`: 30+ seconds).
STOPSIGNAL SIGTERM
CMD ["gradd-server"]
