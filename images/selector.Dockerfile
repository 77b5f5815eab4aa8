# syntax=docker/dockerfile:1.7
# caig-selector: the creative selector alone (`caig serve selector`), the one server that scales out (up to
# 20 replicas on CPU nodes). It needs KServe's server, Redis and Feast's online read, never torch: no train
# extra, no CUDA wheels, a fraction of caig-serve's size. Build from the repository root:
#   docker build -f images/selector.Dockerfile -t ghcr.io/caig/caig-selector:0.1.0 .
# Packages: the serve extra and Feast (the feast provider), every version pinned by constraints.txt.
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
RUN pip install -c constraints.txt ".[serve]" "feast==0.67.0" \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="caig-selector" \
      org.opencontainers.image.description="caig creative selector (Thompson sampling with RM priors), CPU only" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 caig \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin caig
COPY --from=builder /opt/venv /opt/venv
WORKDIR /opt/caig
COPY configs ./configs
COPY feature_repo ./feature_repo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    CAIG_CONFIG_DIR=/opt/caig/configs
USER 10001:10001
EXPOSE 8080
CMD ["caig", "serve", "selector", "--help"]
