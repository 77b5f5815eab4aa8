"""Compile the pipelines to the YAML users upload (``pipelines/compiled/<name>.yaml``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from kfp import compiler

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.resources import check_placement
from caig.profile import Profile
from pipelines import generate, refresh, training

log = logging.getLogger("caig.pipelines")

COMPILED_DIR = Path(__file__).parent / "compiled"
PIPELINES: dict[str, Callable[[OrchestrationConfig], object]] = {
    training.NAME: training.training_pipeline,
    refresh.NAME: refresh.refresh_pipeline,
    generate.NAME: generate.generate_pipeline,
}
DEFAULTS: dict[str, Callable[[Profile], dict]] = {
    training.NAME: training.parameters,
    refresh.NAME: refresh.parameters,
    generate.NAME: generate.parameters,
}


def pipeline_for(name: str, config: OrchestrationConfig):
    """The pipeline called ``name``, placed as ``config`` says."""
    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline '{name}'; choose one of: {', '.join(PIPELINES)}")
    return PIPELINES[name](config)


def default_parameters(name: str, profile: Profile) -> dict:
    """Pipeline ``name``'s default parameter values for ``profile`` (the profile itself among them)."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown pipeline '{name}'; choose one of: {', '.join(PIPELINES)}")
    return DEFAULTS[name](profile)


def compile_pipeline(name: str, profile: Profile, path: Path, pipeline=None) -> Path:
    """Write pipeline ``name`` (``pipeline`` when already built) to ``path``, with ``profile`` as the default
    of its ``profile`` parameter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(
        pipeline or pipeline_for(name, profile.orchestration),
        package_path=str(path),
        pipeline_parameters=default_parameters(name, profile),
    )
    log.info("compiled %s -> %s", name, path)
    return path


def step_names(pipeline) -> set[str]:
    """The display names of every step of a built pipeline, inside conditions and loops too."""
    spec = pipeline.pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    return {task.task_info.name for dag in dags for task in dag.tasks.values()}


def compile_all(profile: Profile, out_dir: Path = COMPILED_DIR, names: list[str] | None = None) -> list[Path]:
    """Compile every pipeline (or ``names``) into ``out_dir/<name>.yaml``, after checking that the profile's
    sizes and volumes agree with the steps (``caig.orchestration.resources.check_placement``)."""
    built = {name: pipeline_for(name, profile.orchestration) for name in PIPELINES}  # each built once
    check_placement(profile, {s for pipeline in built.values() for s in step_names(pipeline)})
    chosen = names or list(PIPELINES)
    return [compile_pipeline(n, profile, Path(out_dir) / f"{n}.yaml", built.get(n)) for n in chosen]
