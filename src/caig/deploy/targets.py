"""What ``caig deploy pm|rm|render|selector`` acts on: one named object of the overlay per target."""

from __future__ import annotations

from dataclasses import dataclass

from caig.errors import UserError


@dataclass(frozen=True)
class Target:
    """One deployable model server and the object that runs it."""

    name: str  # the CLI word: pm, rm, render, selector
    kind: str  # InferenceService or Deployment
    api_version: str
    object_name: str  # metadata.name in the manifests
    canary: bool  # whether traffic can be split between the old and the new model


TARGETS: dict[str, Target] = {
    "pm": Target("pm", "InferenceService", "serving.kserve.io/v1beta1", "caig-pm", True),
    "rm": Target("rm", "InferenceService", "serving.kserve.io/v1beta1", "caig-rm", True),
    "render": Target("render", "InferenceService", "serving.kserve.io/v1beta1", "caig-render", True),
    "selector": Target("selector", "Deployment", "apps/v1", "creative-selector", False),
}

# The selector's run directory: a volume of the Deployment and where it is mounted.
SELECTOR_CONTAINER = "selector"
SELECTOR_RUN_VOLUME = "run"
SELECTOR_RUN_MOUNT = "/mnt/run"
MODEL_URI_ANNOTATION = "caig.io/model-uri"


def get_target(name: str) -> Target:
    """The target called ``name``, or a UserError listing the choices."""
    if name not in TARGETS:
        raise UserError(f"unknown deploy target '{name}'; choose one of: {', '.join(TARGETS)}")
    return TARGETS[name]
