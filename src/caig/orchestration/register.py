"""The training pipeline's last step: register the new models with the serving InferenceServices.

Each trained model is handed to ``caig.deploy.rollout.register_canary``, which patches the running
InferenceService (``caig-pm``, ``caig-rm``) so that the new model takes ``deploy.canary_percent`` of the
traffic; ``caig promote`` finishes the rollout. ``orchestration.register_dry_run`` only computes the patch.
A model whose URI KServe cannot fetch (a local path, as the KFP local runner writes) is recorded with the
reason and not registered: nothing is skipped silently.
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
from caig.profile import Profile

log = logging.getLogger("caig.orchestration")


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
                profile.deploy, target, uri, config.serving_namespace, dry_run=config.register_dry_run
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
