"""Container image names of the pipeline steps: one registry prefix and one tag for all of them.

The images are built from ``images/`` (``caig-step`` for CPU steps, ``caig-train`` for CUDA training,
``caig-serve`` for the model servers, ``caig-selector``: the creative selector alone, without torch).
``CAIG_IMAGE_REGISTRY`` and ``CAIG_IMAGE_TAG`` choose where they are pulled from; the checked-in compiled
pipelines use the defaults below. ``caig release`` builds and pushes all of them (``RELEASE_IMAGES``).
"""

from __future__ import annotations

import os

from caig import __version__

REGISTRY_ENV = "CAIG_IMAGE_REGISTRY"
TAG_ENV = "CAIG_IMAGE_TAG"
DEFAULT_REGISTRY = "ghcr.io/caig"
DEFAULT_TAG = __version__
IMAGES = ("caig-step", "caig-train", "caig-serve")  # what pipeline steps and the model servers run
SELECTOR_IMAGE = "caig-selector"  # the creative selector Deployment (serve extra + Feast, no torch)
RELEASE_IMAGES = (*IMAGES, SELECTOR_IMAGE)
IMAGE_UID = 10001  # the non-root user and group every image runs as (images/*.Dockerfile)


def image(name: str) -> str:
    """The full reference of one of our images, e.g. ``ghcr.io/caig/caig-step:0.1.0``."""
    if name not in RELEASE_IMAGES:
        raise ValueError(f"unknown image '{name}'; choose one of: {', '.join(RELEASE_IMAGES)}")
    registry = os.environ.get(REGISTRY_ENV, "").strip().rstrip("/") or DEFAULT_REGISTRY
    tag = os.environ.get(TAG_ENV, "").strip() or DEFAULT_TAG
    return f"{registry}/{name}:{tag}"


def dockerfile(name: str) -> str:
    """The Dockerfile of image ``name``, relative to the repository root: ``images/<name without caig->``."""
    image(name)  # a clear error for an unknown name
    return f"images/{name.removeprefix('caig-')}.Dockerfile"


def step_image() -> str:
    """Image of the CPU pipeline steps (ingest, validate, features, evaluate, report)."""
    return image("caig-step")


def train_image() -> str:
    """Image of the CUDA training steps (pre-training, reward model, PCPO, DPO)."""
    return image("caig-train")
