"""Sync compiled pipelines to Kubeflow Pipelines: upload each as a new version, keep one recurring run.

Idempotent, so it can run on every Argo CD sync (``manifests/kfp``): a pipeline version is named after the
hash of its YAML, so an unchanged file uploads nothing, and the recurring run is recreated only when it
points at an older version, another schedule or other arguments.

The recurring run's arguments are ``deploy.recurring_parameters``, checked against the compiled pipeline:
every parameter without a default is given, no unknown one, and ``as_of`` left empty so that each run takes
the time it starts as "now". A pipeline whose profile never builds a simulated world
(``orchestration.simulated_world: false``, read from the compiled default) must be given its ``data``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
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
    parameters: dict[str, Any] = field(default_factory=dict)  # root input parameters: name -> definition


@dataclass
class SyncPlan:
    """Everything ``caig deploy pipelines`` will make sure exists on the KFP host."""

    host: str
    namespace: str  # multi-user profile namespace ("" single-user)
    uploads: list[PipelineUpload]
    experiment: str
    recurring_run: str  # display name of the recurring run
    recurring_pipeline: str
    cron: str
    max_concurrency: int
    parameters: dict[str, Any]  # the recurring run's arguments (as_of always "": live)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (what ``--dry-run`` prints; the pipelines' parameter lists left out)."""
        data = asdict(self)
        for upload in data["uploads"]:
            upload.pop("parameters")
        return data


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
    recurring = next(u for u in uploads if u.pipeline == config.recurring_pipeline)
    return SyncPlan(
        host=host or config.kfp_host,
        namespace=config.kfp_namespace,
        uploads=uploads,
        experiment=config.experiment,
        recurring_run=f"{config.recurring_pipeline}-scheduled",
        recurring_pipeline=config.recurring_pipeline,
        cron=config.recurring_cron,
        max_concurrency=config.recurring_max_concurrency,
        parameters=recurring_arguments(recurring, config.recurring_parameters),
    )


def recurring_arguments(upload: PipelineUpload, given: dict[str, Any]) -> dict[str, Any]:
    """The recurring run's arguments: ``given`` checked against the pipeline's parameters, ``as_of`` ""."""
    params = upload.parameters
    where = f"deploy.recurring_parameters of {upload.pipeline}"
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise UserError(
            f"{where}: no parameter '{unknown[0]}'; the pipeline takes {', '.join(sorted(params))}"
        )
    arguments = dict(given)
    if "as_of" in params:
        arguments["as_of"] = ""  # resolved by the run itself: the time it starts
    missing = sorted(n for n, d in params.items() if "defaultValue" not in d and n not in arguments)
    if missing:
        raise UserError(f"{where}: '{missing[0]}' has no default; set {', '.join(missing)} there")
    if "data" in params and not arguments.get("data") and not _builds_worlds(params):
        raise UserError(
            f"{where}: 'data' is empty, and the compiled profile never builds a simulated world "
            "(orchestration.simulated_world: false); set data to the location the new logs arrive in, "
            "e.g. /mnt/data/current"
        )
    return arguments


def _builds_worlds(params: dict[str, Any]) -> bool:
    """Whether the pipeline's default profile lets an empty ``data`` build the simulated world."""
    try:
        profile = json.loads(params.get("profile", {}).get("defaultValue", "{}"))
    except (TypeError, json.JSONDecodeError):
        return True
    return bool(profile.get("orchestration", {}).get("simulated_world", True))


def _upload_of(path: Path) -> PipelineUpload:
    text = path.read_bytes()
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the compiled files are large
        first = next(doc for doc in yaml.load_all(text, Loader=loader) if doc)
        name = first["pipelineInfo"]["name"]
        params = first.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    except (yaml.YAMLError, StopIteration, KeyError, TypeError, AttributeError):
        raise UserError(
            f"{path} is not a compiled KFP pipeline (no pipelineInfo.name); recompile it"
        ) from None
    return PipelineUpload(str(path), name, f"{name}-{hashlib.sha256(text).hexdigest()[:12]}", params)


def apply_sync(plan: SyncPlan) -> dict[str, Any]:
    """Upload missing pipeline versions and (re)create the recurring run on ``plan.host``."""
    import kfp
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        with warnings.catch_warnings():  # "only works with KFP >= 2.0.0-beta.2": we target 2.x servers
            warnings.filterwarnings("ignore", category=FutureWarning)
            client = kfp.Client(host=plan.host, namespace=plan.namespace or None)
        versions = {u.pipeline: _ensure_version(client, u, plan.namespace) for u in plan.uploads}
        experiment_id = _ensure_experiment(client, plan.experiment, plan.namespace)
        pipeline_id, version_id = versions[plan.recurring_pipeline]
        recurring = _ensure_recurring(client, plan, experiment_id, pipeline_id, version_id)
    except (HTTPError, TimeoutError) as err:
        raise UserError(
            f"cannot reach Kubeflow Pipelines at {plan.host} ({type(err).__name__}); check deploy.kfp_host "
            "and that the KFP API is up (the first sync needs it: docs/first-deploy.md)"
        ) from None
    except ApiException as err:
        raise UserError(
            f"Kubeflow Pipelines at {plan.host} refused the sync: {err.status} {err.reason}"
            + (
                f" (namespace {plan.namespace}: is caig-pipelines-sync allowed to edit pipelines there?)"
                if plan.namespace and err.status == 403
                else ""
            )
        ) from None
    return {"host": plan.host, "versions": {k: v[1] for k, v in versions.items()}, "recurring_run": recurring}


def _pipeline_id(client: Any, name: str, namespace: str) -> str | None:
    """The id of pipeline ``name`` in ``namespace`` (multi-user KFP) or among shared pipelines; kfp's
    ``get_pipeline_id`` looks among shared ones only, so a namespaced pipeline would be uploaded again."""
    by_name = {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    page = client.list_pipelines(filter=json.dumps(by_name), namespace=namespace or None, page_size=2)
    found = page.pipelines or []
    if len(found) > 1:
        raise UserError(f"KFP holds {len(found)} pipelines named {name}; delete all but one")
    return found[0].pipeline_id if found else None


def _ensure_version(client: Any, upload: PipelineUpload, namespace: str) -> tuple[str, str]:
    pipeline_id = _pipeline_id(client, upload.pipeline, namespace)
    if pipeline_id is None:
        created = client.upload_pipeline(
            upload.path, pipeline_name=upload.pipeline, namespace=namespace or None
        )
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


def _ensure_experiment(client: Any, name: str, namespace: str) -> str:
    try:
        return client.get_experiment(experiment_name=name, namespace=namespace or None).experiment_id
    except ValueError:  # kfp raises ValueError when no experiment has that name
        return client.create_experiment(name, namespace=namespace or None).experiment_id


def _ensure_recurring(
    client: Any, plan: SyncPlan, experiment_id: str, pipeline_id: str, version_id: str
) -> str:
    runs = client.list_recurring_runs(experiment_id=experiment_id, page_size=100).recurring_runs or []
    for run in runs:
        if run.display_name != plan.recurring_run:
            continue
        spec = run.pipeline_version_reference
        cron = getattr(getattr(run.trigger, "cron_schedule", None), "cron", None)
        arguments = getattr(getattr(run, "runtime_config", None), "parameters", None) or {}
        if (
            spec is not None
            and spec.pipeline_version_id == version_id
            and cron == plan.cron
            and arguments == plan.parameters
        ):
            log.info("recurring run %s is up to date", plan.recurring_run)
            return run.recurring_run_id
        client.delete_recurring_run(run.recurring_run_id)
        log.info("replacing recurring run %s (new version, schedule or arguments)", plan.recurring_run)
    created = client.create_recurring_run(
        experiment_id,
        plan.recurring_run,
        cron_expression=plan.cron,
        max_concurrency=plan.max_concurrency,
        no_catchup=True,
        params=plan.parameters,
        pipeline_id=pipeline_id,
        version_id=version_id,
        enabled=True,
    )
    log.info("created recurring run %s (%s) with %s", plan.recurring_run, plan.cron, plan.parameters)
    return created.recurring_run_id
