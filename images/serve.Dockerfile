# syntax=docker/dockerfile:1.7
# caig-serve: the KServe model servers (`caig serve pm|rm|render|selector`). PM, RM and the background
# generator run on GPU; the selector runs on CPU from the same image, so all four servers share one build.
# Build from the repository root:
#   docker build -f images/serve.Dockerfile -t ghcr.io/caig/caig-serve:0.1.0 .
# No CUDA base image is needed: the CUDA build of torch brings its CUDA runtime libraries as wheels, and the
# node's driver is mounted by the NVIDIA container toolkit. Packages: pyproject extras + constraints.txt.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# torch first, from the CUDA index, so that the constraint torch==2.13.0 is met by the CUDA build.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && pip install -c constraints.txt ".[train,serve,pipelines]" \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="caig-serve" \
      org.opencontainers.image.description="caig KServe model servers: PM, RM, background generator, creative selector" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 caig \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin caig
COPY --from=builder /opt/venv /opt/venv
WORKDIR /opt/caig
COPY configs ./configs
COPY feature_repo ./feature_repo
# HF_HUB_OFFLINE: weights come from mounted volumes or KServe's storage initializer, never from a hub.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HF_HOME=/tmp/hf \
    HF_HUB_OFFLINE=1 \
    CAIG_CONFIG_DIR=/opt/caig/configs
USER 10001:10001
EXPOSE 8080
CMD ["caig", "serve", "--help"]
