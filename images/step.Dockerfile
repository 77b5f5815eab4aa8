# syntax=docker/dockerfile:1.7
# caig-step: the CPU image of the KFP pipeline steps (ingest, validate, features, evaluate, report, register)
# and of the Feast feature server. Build from the repository root:
#   docker build -f images/step.Dockerfile -t ghcr.io/caig/caig-step:0.1.0 .
# Every Python package is pinned: the extras come from pyproject.toml, every transitive version from
# constraints.txt. The image name and tag are defined once, in src/caig/orchestration/images.py.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install -c constraints.txt ".[pipelines,serve]" \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="caig-step" \
      org.opencontainers.image.description="caig KFP pipeline steps (CPU) and the Feast feature server" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 caig \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin caig
COPY --from=builder /opt/venv /opt/venv
# Profiles, the declarative Feast repo and the compiled pipelines (uploaded by `caig deploy pipelines`).
WORKDIR /opt/caig
COPY configs ./configs
COPY feature_repo ./feature_repo
COPY pipelines/compiled ./pipelines/compiled
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    CAIG_CONFIG_DIR=/opt/caig/configs
USER 10001:10001
CMD ["caig", "--help"]
