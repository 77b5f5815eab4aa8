"""Run a pipeline on this machine with the KFP local runner (``SubprocessRunner``, no containers).

The very pipeline function that is compiled for the cluster runs here, each step in a subprocess of the
current Python environment; the Kubernetes settings (GPUs, node pools, volumes) are ignored. Step outputs
land in ``OUT/pipeline/``, the report and metrics at the top of ``OUT`` (``caig.orchestration.rundir``).
"""

from __future__ import annotations

import json
import logging
import re
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from kfp import local

from caig import runlayout
from caig.errors import UserError
from caig.orchestration.metrics import read_metrics
from caig.orchestration.rundir import RunDir
from caig.profile import Profile
from pipelines.compile import default_parameters, pipeline_for
from pipelines.training import NAME as TRAINING

log = logging.getLogger("caig.pipelines")


# Step outputs also reachable at the top of the run directory: the run layout every server reads
# (`caig.runlayout`: `caig serve selector|pm|rm|render --run OUT`), plus the ingested stats
# (`caig features get --run OUT`, `caig bandit simulate --world OUT/world`).
RUN_LINKS = {
    runlayout.WORLD: ("build-world", "world", ""),
    "data": ("ingest-events", "stats", ""),
    runlayout.FEATURES: ("materialize-features", "store", "features"),  # features.store_dir (local profile)
    runlayout.PM: ("pretrain-pm", "pm", ""),
    runlayout.RM: ("train-rm", "rm", ""),
}
PCPO_STEP = "optimize-pm"  # its PCPO output (pcpo.json says pcpo) is linked as OUT/pcpo; DPO's is not


class StepClock(logging.Filter):
    """Times every step from the local runner's own log lines, and logs one progress line per step.

    The runner logs ``Executing task 'x'`` and ``Task 'x' finished with status ...`` on the root logger;
    as a filter of that logger this sees both (and lets them through) without touching the runner.
    """

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")
    _START = re.compile(r"^Executing task '([^']+)'")
    _END = re.compile(r"^Task '([^']+)' finished with status (\w+)")

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = self._ANSI.sub("", record.getMessage())
        if match := self._START.match(text):
            self.started[match.group(1)] = time.perf_counter()
        elif (match := self._END.match(text)) and match.group(1) in self.started:
            name = match.group(1)
            self.seconds[name] = round(time.perf_counter() - self.started[name], 1)
            log.info("step %d %s: %s in %.1f s", len(self.seconds), name, match.group(2), self.seconds[name])
        return True


def run_local(
    profile: Profile, out: Path, seed: int = 0, name: str = TRAINING, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run pipeline ``name`` locally into run directory ``out``; return the run's flat metrics.

    ``arguments`` override the pipeline's default parameters (e.g. ``rounds``; ``rm`` for the refresh).
    """
    rundir = RunDir(Path(out)).prepare()
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(rundir.pipeline_root),
        workspace_root=str(rundir.workspace),
        raise_on_error=True,
    )
    # Retries exist for preempted cluster nodes and network hiccups; here they would only repeat a failure
    # after minutes of backoff, so the local run fails at once.
    placement = replace(profile.orchestration, retry=replace(profile.orchestration.retry, attempts=0))
    pipeline = pipeline_for(name, placement)
    started = time.perf_counter()
    log.info("running %s locally into %s (KFP local runner)", name, rundir.root)
    clock = StepClock()
    logging.getLogger().addFilter(clock)
    try:
        with warnings.catch_warnings():  # the venv stands in for our images; cluster settings do not apply
            warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
            seeded = {"seed": seed} if "seed" in (pipeline.component_spec.inputs or {}) else {}
            task = pipeline(**{**default_parameters(name, profile), **seeded, **(arguments or {})})
    except RuntimeError as err:
        raise UserError(f"pipeline {name} failed: {err}; the failing step's log is above") from None
    finally:
        logging.getLogger().removeFilter(clock)
        rundir.timings.write_text(json.dumps(clock.seconds, indent=2))
    outputs = task.outputs
    steps = step_outputs(rundir.pipeline_root)
    rundir.finish(
        Path(outputs["report"].path), Path(outputs["summary"].path), Path(outputs["metrics"].path), steps
    )
    targets = {
        link: Path(steps[step][output]) / inner
        for link, (step, output, inner) in RUN_LINKS.items()
        if output in steps.get(step, {})
    }
    pcpo = [
        Path(outputs["run"])
        for step, outputs in sorted(steps.items())
        if step.startswith(PCPO_STEP) and "run" in outputs and runlayout.is_pcpo_output(Path(outputs["run"]))
    ]
    if pcpo:
        targets[runlayout.PCPO] = pcpo[0]
    rundir.link({link: target for link, target in targets.items() if target.exists()})
    log.info("%s finished in %.1f s: %s", name, time.perf_counter() - started, rundir.report_html)
    for step, seconds in clock.seconds.items():
        log.info("  %-22s %7.1f s", step, seconds)
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
