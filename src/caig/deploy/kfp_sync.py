"""Sync compiled pipelines to Kubeflow Pipelines: upload each as a new version, keep one recurring run.

Idempotent, so it can run after every Argo CD sync (``manifests/kfp``): a pipeline version is named after
the hash of its YAML, so an unchanged file uploads nothing, and the recurring run is recreated only when it
points at an older version or another schedule.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from caig.deploy.config import DeployConfig
from caig.errors import UserError

log = logging.getLogger("caig.deploy")


@dataclass
class PipelineUpload:
    """One compiled pipeline file and the names it gets in KFP."""

    path: str
    pipeline: str  # pipelineInfo.name of the compiled YAML
    version: str  # <pipeline>-<first 12 hex of the file's sha256>


@dataclass
class SyncPlan:
    """Everything ``caig deploy pipelines`` will make sure exists on the KFP host."""

    host: str
    uploads: list[PipelineUpload]
    experiment: str
    recurring_run: str  # display name of the recurring run
    recurring_pipeline: str
    cron: str
    max_concurrency: int

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (what ``--dry-run`` prints)."""
        return asdict(self)


def plan_sync(config: DeployConfig, pipelines_dir: Path | None = None, host: str | None = None) -> SyncPlan:
    """Read the compiled pipelines and name what will be uploaded and scheduled (no network)."""
    directory = Path(pipelines_dir or config.pipelines_dir)
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        raise UserError(f"no compiled pipelines (*.yaml) in {directory}; run `caig compile` or pass --dir")
    uploads = [_upload_of(path) for path in files]
    names = [u.pipeline for u in uploads]
    if config.recurring_pipeline not in names:
        raise UserError(
            f"deploy.recurring_pipeline '{config.recurring_pipeline}' is not among the compiled pipelines "
            f"in {directory} ({', '.join(names)}); compile it or change deploy.recurring_pipeline"
        )
    return SyncPlan(
        host=host or config.kfp_host,
        uploads=uploads,
        experiment=config.experiment,
        recurring_run=f"{config.recurring_pipeline}-scheduled",
        recurring_pipeline=config.recurring_pipeline,
        cron=config.recurring_cron,
        max_concurrency=config.recurring_max_concurrency,
    )


def _upload_of(path: Path) -> PipelineUpload:
    text = path.read_bytes()
    try:
        first = next(doc for doc in yaml.safe_load_all(text) if doc)
        name = first["pipelineInfo"]["name"]
    except (yaml.YAMLError, StopIteration, KeyError, TypeError):
        raise UserError(
            f"{path} is not a compiled KFP pipeline (no pipelineInfo.name); recompile it"
        ) from None
    return PipelineUpload(str(path), name, f"{name}-{hashlib.sha256(text).hexdigest()[:12]}")


def apply_sync(plan: SyncPlan) -> dict[str, Any]:
    """Upload missing pipeline versions and (re)create the recurring run on ``plan.host``."""
    import kfp

    client = kfp.Client(host=plan.host)
    versions = {u.pipeline: _ensure_version(client, u) for u in plan.uploads}
    experiment_id = _ensure_experiment(client, plan.experiment)
    pipeline_id, version_id = versions[plan.recurring_pipeline]
    recurring = _ensure_recurring(client, plan, experiment_id, pipeline_id, version_id)
    return {"host": plan.host, "versions": {k: v[1] for k, v in versions.items()}, "recurring_run": recurring}


def _ensure_version(client: Any, upload: PipelineUpload) -> tuple[str, str]:
    pipeline_id = client.get_pipeline_id(upload.pipeline)
    if pipeline_id is None:
        created = client.upload_pipeline(upload.path, pipeline_name=upload.pipeline)
        pipeline_id = created.pipeline_id
        log.info("uploaded new pipeline %s", upload.pipeline)
    token = ""
    while True:
        page = client.list_pipeline_versions(pipeline_id, page_token=token, page_size=100)
        for version in page.pipeline_versions or []:
            if version.display_name == upload.version:
                return pipeline_id, version.pipeline_version_id
        token = page.next_page_token
        if not token:
            break
    version = client.upload_pipeline_version(upload.path, upload.version, pipeline_id=pipeline_id)
    log.info("uploaded %s version %s", upload.pipeline, upload.version)
    return pipeline_id, version.pipeline_version_id


def _ensure_experiment(client: Any, name: str) -> str:
    try:
        return client.get_experiment(experiment_name=name).experiment_id
    except ValueError:  # kfp raises ValueError when no experiment has that name
        return client.create_experiment(name).experiment_id


def _ensure_recurring(
    client: Any, plan: SyncPlan, experiment_id: str, pipeline_id: str, version_id: str
) -> str:
    runs = client.list_recurring_runs(experiment_id=experiment_id, page_size=100).recurring_runs or []
    for run in runs:
        if run.display_name != plan.recurring_run:
            continue
        spec = run.pipeline_version_reference
        cron = getattr(getattr(run.trigger, "cron_schedule", None), "cron", None)
        if spec is not None and spec.pipeline_version_id == version_id and cron == plan.cron:
            log.info("recurring run %s is up to date", plan.recurring_run)
            return run.recurring_run_id
        client.delete_recurring_run(run.recurring_run_id)
        log.info("replacing recurring run %s (new version or schedule)", plan.recurring_run)
    created = client.create_recurring_run(
        experiment_id,
        plan.recurring_run,
        cron_expression=plan.cron,
        max_concurrency=plan.max_concurrency,
        no_catchup=True,
        pipeline_id=pipeline_id,
        version_id=version_id,
        enabled=True,
    )
    log.info("created recurring run %s (%s)", plan.recurring_run, plan.cron)
    return created.recurring_run_id
