"""The training pipeline's last step: publish the trained run and register it with the InferenceServices.

With ``orchestration.runs_pvc`` set (production), the run is first copied to the runs volume the model
servers load from (``caig.orchestration.storage``), in the one run layout every server reads
(``caig.runlayout``), and registered as ``pvc://<runs_pvc>/<run>``. Without it there is no such run: no
pipeline artifact holds the whole layout (the PCPO, PM and RM artifacts are separate directories), so a
cluster run's artifact URIs are refused in one line naming ``orchestration.runs_pvc`` (registering them
would point ``caig-pm`` at a PCPO artifact), and the KFP local runner's local paths are recorded as not
registered (its run directory, ``caig run --local --out``, is the layout ``caig serve`` reads). Each URI is
handed to ``caig.deploy.rollout.register_canary``, which patches the running InferenceService (``caig-pm``,
``caig-rm``) so that the new model takes ``deploy.canary_percent`` of the traffic; ``caig promote`` finishes
the rollout. ``orchestration.register_dry_run`` only computes the patch (and copies nothing). A model whose
URI KServe cannot fetch (a local path, as the KFP local runner writes) is recorded with the reason and not
registered: nothing is skipped silently. The step talks to the Kubernetes API as ``caig-register`` when
``orchestration.register_identity_secret`` mounts that identity's token on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from caig.deploy.plan import MODEL_URI_SCHEMES
from caig.deploy.rollout import register_canary
from caig.errors import UserError
from caig.orchestration.storage import mark_registered, publish_run, run_name, run_uri
from caig.profile import Profile

log = logging.getLogger("caig.orchestration")


def register_run(
    profile: Profile,
    artifacts: Mapping[str, Path],
    uris: Mapping[str, str],
    markdown_out: str | Path,
    as_of: str = "",
    job_id: str = "",
) -> dict[str, Any]:
    """Publish the run (``artifacts``: ``pcpo``, ``pm``, ``rm`` directories) on the runs volume, named after
    the run's ``as_of`` day and KFP ``job_id``, and register it for the PM and the RM.

    Without ``orchestration.runs_pvc`` nothing is published: the artifact ``uris`` are recorded as not
    registered when they are local paths (the KFP local runner), and refused (UserError) when they are a
    cluster run's (``check_unpublished``).

    Returns ``register_models``'s result, with ``published``: the run, its URI and whether it was copied.
    """
    config = profile.orchestration
    if not config.runs_pvc:
        check_unpublished(uris)
        return register_models(profile, uris, markdown_out)
    run = run_name(as_of, job_id)
    uri = run_uri(config, run)
    runs = Path(config.runs_mount_path)
    if not config.register_dry_run:
        publish_run(runs, run, Path(artifacts["pcpo"]), Path(artifacts["pm"]), Path(artifacts["rm"]))
    result = register_models(profile, {"pm": uri, "rm": uri}, markdown_out)
    if not config.register_dry_run:
        mark_registered(runs, run, uri)  # only once the servers point at it: the refresh's RM from now on
    result["published"] = {"run": run, "uri": uri, "copied": not config.register_dry_run}
    result["metrics"]["published"] = int(not config.register_dry_run)
    return result


def check_unpublished(uris: Mapping[str, str]) -> None:
    """Refuse to register artifacts in place of a published run: without ``orchestration.runs_pvc`` no
    artifact holds the run layout the servers read (``caig.runlayout``), so the artifacts of a cluster run
    (``minio://``, ``s3://``, ``gs://`` ...) would point a server at the wrong directory, or at one KServe
    cannot fetch (UserError, one line). Local paths (the KFP local runner) pass: ``register_models`` records
    them as not registered."""
    remote = [(t, u) for t, u in uris.items() if urlparse(u).scheme not in ("", "file")]
    if remote:
        target, uri = remote[0]
        raise UserError(
            f"register: orchestration.runs_pvc is not set, so the trained run is not published in the run "
            f"layout the servers read and caig-{target} would load the artifact {uri} instead; set "
            "orchestration.runs_pvc to the ReadWriteMany PVC the InferenceServices load from (production: "
            "caig-runs) and compile the pipelines again (caig compile)"
        )


def register_models(profile: Profile, uris: Mapping[str, str], markdown_out: str | Path) -> dict[str, Any]:
    """Register ``{target: model URI}`` (targets ``pm``, ``rm``); write a Markdown record; return both.

    Returns:
        ``{"records": [per target: target, model_uri, registered, dry_run, reason | plan], "metrics": {...}}``
    """
    config = profile.orchestration
    records = []
    for target, uri in uris.items():
        record: dict[str, Any] = {"target": target, "model_uri": uri, "dry_run": config.register_dry_run}
        if urlparse(uri).scheme not in MODEL_URI_SCHEMES:
            record.update(
                registered=False,
                reason="a local path: KServe can only fetch "
                + ", ".join(f"{s}://" for s in MODEL_URI_SCHEMES),
            )
            log.warning("not registering %s: %s is %s", target, uri, record["reason"])
        else:
            result = register_canary(
                profile.deploy,
                target,
                uri,
                config.serving_namespace,
                dry_run=config.register_dry_run,
                token_dir=config.register_identity_path if config.register_identity_secret else None,
            )
            record.update(registered=not config.register_dry_run, plan=result["plan"])
            log.info(
                "%s %s as a %d%% canary",
                "planned" if config.register_dry_run else "registered",
                uri,
                profile.deploy.canary_percent,
            )
        records.append(record)
    Path(markdown_out).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown_out).write_text(render_markdown(records, profile.deploy.canary_percent))
    metrics = {
        "registered": sum(r["registered"] for r in records),
        "planned": sum("plan" in r for r in records),
        "canary_percent": profile.deploy.canary_percent,
    }
    return {"records": records, "metrics": metrics}


def render_markdown(records: list[dict[str, Any]], canary: int) -> str:
    """One table row per model: where it is and what happened to it."""
    lines = [
        "# Model registration",
        "",
        f"Canary share: {canary}%",
        "",
        "| target | model URI | result |",
        "|---|---|---|",
    ]
    for r in records:
        if "plan" in r:
            result = "dry run: patch planned" if r["dry_run"] else "registered as canary"
        else:
            result = f"not registered: {r['reason']}"
        lines.append(f"| {r['target']} | `{r['model_uri']}` | {result} |")
    lines += ["", "```json", json.dumps(records, indent=2, default=str), "```", ""]
    return "\n".join(lines)
