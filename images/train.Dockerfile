# syntax=docker/dockerfile:1.7
# caig-train: the CUDA image of the GPU pipeline steps (pre-training, reward model, PCPO, DPO), with torch,
# transformers, peft, accelerate, diffusers, scikit-learn and DeepSpeed (ZeRO through torchrun or the Kubeflow
# training operator). Build from the repository root:
#   docker build -f images/train.Dockerfile -t ghcr.io/caig/caig-train:0.1.0 .
# The builder is the CUDA *devel* image so DeepSpeed's fused Adam ops are compiled once, at build time, for
# A100/H100 (sm_80, sm_90); the runtime stage is the much smaller CUDA *runtime* image of the same release.
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_DEVEL_IMAGE} AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG DEEPSPEED_VERSION=0.19.8
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TORCH_CUDA_ARCH_LIST="8.0;9.0" \
    DS_BUILD_FUSED_ADAM=1 \
    DS_BUILD_CPU_ADAM=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv python3.12-dev ninja-build \
 && rm -rf /var/lib/apt/lists/*
RUN python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# torch first, from the CUDA index, so that the constraint torch==2.13.0 is met by the CUDA build; DeepSpeed
# last, after torch, because its build imports torch to compile the ops.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && pip install -c constraints.txt ".[train,pipelines]" \
 && pip install -c constraints.txt --no-build-isolation "deepspeed==${DEEPSPEED_VERSION}" \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${CUDA_RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="caig-train" \
      org.opencontainers.image.description="caig GPU training steps: pre-training, reward model, PCPO, DPO" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 caig \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin caig
COPY --from=builder /opt/venv /opt/venv
WORKDIR /opt/caig
COPY configs ./configs
COPY feature_repo ./feature_repo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HF_HOME=/tmp/hf \
    HF_HUB_OFFLINE=1 \
    CAIG_CONFIG_DIR=/opt/caig/configs
USER 10001:10001
CMD ["caig", "--help"]
