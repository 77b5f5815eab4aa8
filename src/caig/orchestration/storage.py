"""The runs volume: where the register step publishes a trained run for the model servers, and where later
pipelines (the daily refresh, caig-generate) find the latest registered one.

Pipeline steps run in the servers' namespace and mount the same PVC (``orchestration.runs_pvc``) the model
servers load from. Layout below ``orchestration.runs_mount_path`` (KServe mounts ``pvc://<runs_pvc>/<run>``
at the server's ``/mnt/models``), the run layout of ``caig.runlayout`` that every server reads::

    <run>/pcpo/           the PCPO run: round-NN/adapter, pcpo.json (the PM server's adapter)
    <run>/pm/model/       the pre-trained PM the adapter applies to
    <run>/rm/             the reward model (rm.json and weights)
    <run>/run.json        what was published, from which artifacts
    registered.json       the run register published last: {"run", "uri", "published_at"}

A run is copied under a hidden name and renamed when complete, so a server or a refresh never sees half a
run; publishing the same run again (a retried step) changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from caig.errors import UserError
from caig.orchestration.config import OrchestrationConfig
from caig.runlayout import RunLayout

log = logging.getLogger("caig.orchestration")

PUBLISHED = "run.json"
POINTER = "registered.json"
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def run_name(as_of: str, job_id: str) -> str:
    """A run's directory name: the day of its data (``as_of``) and the start of the KFP run's id."""
    day = as_of[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of[:10]) else "run"
    suffix = re.sub(r"[^A-Za-z0-9]", "", job_id)[:8] or "local"
    return f"{day}-{suffix}"


def run_uri(config: OrchestrationConfig, run: str) -> str:
    """What the servers load a published run from: ``pvc://<runs_pvc>/<run>``."""
    return f"pvc://{config.runs_pvc}/{run}"


def publish_run(runs_dir: Path, run: str, pcpo: Path, pm: Path, rm: Path) -> Path:
    """Copy a trained run to ``runs_dir/run`` in the layout above; return it.

    ``pcpo``: the PCPO step's output; ``pm``: the pre-training step's output (its ``model/`` is copied);
    ``rm``: the reward model directory.
    """
    if not _RUN_NAME.fullmatch(run):
        raise UserError(f"run name {run!r}: use letters, digits, '.', '_' and '-' only")
    missing = [str(p) for p in (pcpo, pm / "model", rm) if not Path(p).is_dir()]
    if missing:
        raise UserError(f"cannot publish run {run}: no directory at {', '.join(missing)}")
    target = Path(runs_dir) / run
    if (target / PUBLISHED).is_file():
        log.info("run %s is already published at %s", run, target)
        return target
    staging = Path(runs_dir) / f".{run}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    layout = RunLayout(staging)
    shutil.copytree(pcpo, layout.pcpo)
    shutil.copytree(pm / "model", layout.pm_model)
    shutil.copytree(rm, layout.rm)
    record = {"run": run, "pcpo": str(pcpo), "pm": str(pm), "rm": str(rm), "published_at": _now()}
    (staging / PUBLISHED).write_text(json.dumps(record, indent=2))
    if target.exists():  # an earlier attempt that died after the rename began: replace it
        shutil.rmtree(target)
    staging.rename(target)
    log.info("published run %s to %s", run, target)
    return target


def mark_registered(runs_dir: Path, run: str, uri: str) -> dict[str, Any]:
    """Record ``run`` as the latest registered run (atomically: readers see the old or the new pointer)."""
    pointer = {"run": run, "uri": uri, "published_at": _now()}
    tmp = Path(runs_dir) / f".{POINTER}.tmp"
    tmp.write_text(json.dumps(pointer, indent=2))
    os.replace(tmp, Path(runs_dir) / POINTER)
    return pointer


def registered_run(runs_dir: Path) -> dict[str, Any]:
    """The latest run register published (``registered.json``); a UserError saying how to get one."""
    path = Path(runs_dir) / POINTER
    if not path.is_file():
        raise UserError(
            f"no registered run in {runs_dir} (no {POINTER}): run caig-training once (its register step "
            "publishes the trained run there), or pass the model explicitly"
        )
    return json.loads(path.read_text())


def resolve_model(value: str, part: str, config: OrchestrationConfig, name: str) -> Path:
    """The directory of a model a step reads, from a pipeline parameter ``name``.

    ``value``: a path, ``pvc://<runs_pvc>/<path>`` (the runs volume, mounted on the step), or empty for the
    latest registered run. ``part``: the model's subdirectory in a published run (``pm``, ``rm`` or ``pcpo``,
    ``caig.runlayout``); a published run's directory is accepted for any part.
    """
    runs = Path(config.runs_mount_path)
    if not value:
        if not config.runs_pvc:
            raise UserError(
                f"pipeline parameter '{name}' is empty and orchestration.runs_pvc is not set, so there is no "
                f"registered run to take it from; pass {name}=<a model directory>"
            )
        path = runs / registered_run(runs)["run"]
    else:
        parsed = urlparse(value)
        if parsed.scheme == "pvc":
            if not config.runs_pvc or parsed.netloc != config.runs_pvc:
                raise UserError(
                    f"pipeline parameter '{name}' {value!r}: only the runs volume "
                    f"pvc://{config.runs_pvc or '<orchestration.runs_pvc>'}/... is mounted on this step"
                )
            path = runs / parsed.path.strip("/")
        elif parsed.scheme in ("", "file"):
            path = Path(parsed.path if parsed.scheme else value)
        else:
            raise UserError(
                f"pipeline parameter '{name}' {value!r}: pass a path, a pvc://{config.runs_pvc or 'CLAIM'}/RUN "
                "URI of a registered run, or leave it empty for the latest registered run"
            )
    if part and (path / part).is_dir() and (path / PUBLISHED).is_file():
        path = path / part  # a published run's directory: take its part
    if not path.is_dir():
        raise UserError(f"pipeline parameter '{name}': no directory at {path}")
    return path


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
