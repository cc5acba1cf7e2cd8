# The prediction service, `python -m churn.serving` (what `churn serve` runs), with the
# pipeline's model in the image. It holds the core and serving layers of the package and
# their pinned dependencies (requirements-serve.txt) only: no pipeline stages, ops,
# benchmarks, dev tools or test requirements.
#
# The model and what the service reads beside it are copied in at build time, so they
# must be in the workspace first (they are DVC outputs, not in git):
#   dvc pull            # or: dvc repro
#   docker build -t churn-serve .
#   docker run -d -p 127.0.0.1:8000:8000 churn-serve
#
# To serve another model without rebuilding, mount its whole bundle read-only over the
# baked-in one, with the dvc.lock that records every file's md5 (the service refuses a
# bundle file whose md5 differs: the model, its decision, contract, metrics and card):
#   docker run -d -p 127.0.0.1:8000:8000 \
#     -v "$PWD/models:/app/models:ro" -v "$PWD/reports:/app/reports:ro" \
#     -v "$PWD/data/prepared/contract.json:/app/data/prepared/contract.json:ro" \
#     -v "$PWD/dvc.lock:/app/dvc.lock:ro" churn-serve
#
# Inside the container the service listens on 0.0.0.0 (HOST below): the container's
# own loopback is unreachable from outside it. Outside a container the default stays
# 127.0.0.1. Publish the port on 127.0.0.1 (as above) unless it should be reachable
# from other machines. Other settings (MAX_BATCH, CORS_ORIGINS, ...) via `docker run -e`.

ARG PYTHON_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------- build stage
# Compilers only here, for any pinned package without a wheel for this platform.
FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# What the service imports, pinned (a subset of requirements.txt; no DVC, no dev tooling).
COPY requirements-serve.txt /tmp/requirements-serve.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile -r /tmp/requirements-serve.txt

# --------------------------------------------------------------------------- runtime stage
# Same base image, so the venv's interpreter links resolve; no compilers, no git.
FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 --user-group churn
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
# Owned by root and read-only to the service's user.
COPY params.yaml dvc.lock ./
COPY src/churn/__init__.py src/churn/__init__.py
COPY src/churn/core/ src/churn/core/
COPY src/churn/serving/ src/churn/serving/
COPY models/model.pkl models/model.pkl
COPY models/decision.json models/decision.json
COPY data/prepared/contract.json data/prepared/contract.json
COPY reports/metrics.json reports/metrics.json
COPY reports/model_card.md reports/model_card.md
USER churn
EXPOSE 8000
# slim has no curl: ask /health with the standard library (non-2xx or no answer: exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "churn.serving"]
