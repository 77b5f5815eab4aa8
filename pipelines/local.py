"""Run a pipeline on this machine with the KFP local runner (``SubprocessRunner``, no containers).

The very pipeline function that is compiled for the cluster runs here, each step in a subprocess of the
current Python environment; the Kubernetes settings (GPUs, node pools, volumes) are ignored. Step outputs
land in ``OUT/pipeline/``, the report and metrics at the top of ``OUT`` (``caig.orchestration.rundir``).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from kfp import local

from caig.errors import UserError
from caig.orchestration.metrics import read_metrics
from caig.orchestration.rundir import RunDir
from caig.profile import Profile
from pipelines.compile import default_parameters, pipeline_for
from pipelines.training import NAME as TRAINING

log = logging.getLogger("caig.pipelines")


def run_local(profile: Profile, out: Path, seed: int = 0, name: str = TRAINING) -> dict[str, Any]:
    """Run pipeline ``name`` locally into run directory ``out``; return the run's flat metrics."""
    rundir = RunDir(Path(out)).prepare()
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(rundir.pipeline_root),
        workspace_root=str(rundir.workspace),
        raise_on_error=True,
    )
    pipeline = pipeline_for(name, profile.orchestration)
    started = time.perf_counter()
    log.info("running %s locally into %s (KFP local runner)", name, rundir.root)
    try:
        with warnings.catch_warnings():  # the venv stands in for our images; cluster settings do not apply
            warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
            task = pipeline(**default_parameters(profile), seed=seed)
    except RuntimeError as err:
        raise UserError(f"pipeline {name} failed: {err}; the failing step's log is above") from None
    outputs = task.outputs
    rundir.finish(
        Path(outputs["report"].path),
        Path(outputs["summary"].path),
        Path(outputs["metrics"].path),
        step_outputs(rundir.pipeline_root),
    )
    log.info("%s finished in %.1f s: %s", name, time.perf_counter() - started, rundir.report_html)
    return read_metrics(rundir.metrics)


def step_outputs(pipeline_root: Path) -> dict[str, dict[str, str]]:
    """``{step: {output: path}}`` of the (single) run under ``pipeline_root``."""
    runs = [p for p in pipeline_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    found: dict[str, dict[str, str]] = {}
    for run in runs:
        for step in sorted(p for p in run.iterdir() if p.is_dir()):
            found[step.name] = {
                o.name: str(o) for o in sorted(step.iterdir()) if o.name != "executor_output.json"
            }
    return found
