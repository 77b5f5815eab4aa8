"""Rollout plans: the full object to create and the patch to send, computed offline from an overlay.

``caig deploy`` creates the object when the cluster does not have it yet and otherwise sends only the patch,
so what git owns (images, resources, policies) is left as Argo CD applied it. ``--dry-run`` prints the plan.

KServe canary rollouts (Serverless mode): changing ``storageUri`` creates a new revision; with
``canaryTrafficPercent: N`` it takes N% of the traffic and the last fully rolled-out revision the rest.
Promoting removes the field (100% to the new revision); rolling back sets it to 0.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

from caig.deploy.targets import (
    MODEL_URI_ANNOTATION,
    SELECTOR_CONTAINER,
    SELECTOR_RUN_MOUNT,
    SELECTOR_RUN_VOLUME,
    Target,
)
from caig.errors import UserError

MERGE_PATCH = "application/merge-patch+json"  # RFC 7386: what CustomObjectsApi sends for a dict body
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"  # what AppsV1Api sends for a dict body
# Schemes KServe's storage initializer can fetch; hub URIs are refused: weights come from our own storage.
MODEL_URI_SCHEMES = ("s3", "gs", "pvc", "https", "hdfs", "webhdfs", "oci")


@dataclass
class Patch:
    """One PATCH request: which object, the content type and the body."""

    api_version: str
    kind: str
    name: str
    namespace: str
    content_type: str
    body: dict[str, Any]


@dataclass
class Plan:
    """What a rollout does: ``object`` is created if absent (None: the object must exist), else ``patch``."""

    action: str  # deploy, register, promote or rollback
    target: str
    overlay: str
    model_uri: str | None
    canary_percent: int | None
    object: dict[str, Any] | None
    patch: Patch

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (what ``--dry-run`` prints)."""
        return asdict(self)


def check_model_uri(target: Target, uri: str) -> tuple[str, str]:
    """Split a model URI into (scheme, rest), refusing what the target cannot load, with the fix."""
    parsed = urlparse(uri)
    if target.kind == "Deployment":
        if parsed.scheme != "pvc" or not parsed.netloc or not parsed.path.strip("/"):
            raise UserError(
                f"--model-uri {uri!r}: the selector mounts its run directory from a volume; "
                "pass pvc://CLAIM/PATH, e.g. pvc://caig-runs/2026-11-20"
            )
        return parsed.scheme, f"{parsed.netloc}/{parsed.path.strip('/')}"
    if parsed.scheme not in MODEL_URI_SCHEMES or not (parsed.netloc or parsed.path.strip("/")):
        raise UserError(
            f"--model-uri {uri!r}: use a run directory KServe can fetch, one of "
            f"{', '.join(s + '://' for s in MODEL_URI_SCHEMES)} (e.g. s3://caig-runs/2026-11-20)"
        )
    return parsed.scheme, uri


def plan_deploy(
    target: Target, base: dict[str, Any], overlay: str, model_uri: str, canary: int | None
) -> Plan:
    """Roll ``model_uri`` out to ``target`` (``base`` is its object in the overlay): a canary share or all."""
    check_model_uri(target, model_uri)
    if canary is not None and not target.canary:
        raise UserError(
            f"--canary: the {target.name} has no traffic split (its replicas share one state); "
            "deploy it without --canary"
        )
    if canary is not None and not 0 < canary < 100:
        raise UserError(f"--canary {canary}: give a share between 1 and 99 percent (omit it for 100%)")
    if target.kind == "InferenceService":
        body = _isvc_patch(model_uri, canary)
        desired = _isvc_with(base, model_uri, canary)
        content_type = MERGE_PATCH
    else:
        body = _selector_patch(model_uri)
        desired = _selector_with(base, model_uri)
        content_type = STRATEGIC_MERGE_PATCH
    return Plan(
        "deploy", target.name, overlay, model_uri, canary, desired, _patch(target, base, content_type, body)
    )


def plan_register(target: Target, namespace: str, model_uri: str, canary: int) -> Plan:
    """Patch-only plan for a running InferenceService (the pipeline's register step has no manifests)."""
    check_model_uri(target, model_uri)
    if not target.canary:
        raise UserError(f"only pm, rm and render can be registered as a canary, not the {target.name}")
    if not 0 < canary < 100:
        raise UserError(f"canary {canary}: give a share between 1 and 99 percent")
    base = {"metadata": {"name": target.object_name, "namespace": namespace}}
    patch = _patch(target, base, MERGE_PATCH, _isvc_patch(model_uri, canary))
    return Plan("register", target.name, "", model_uri, canary, None, patch)


def plan_promote(target: Target, base: dict[str, Any], overlay: str, rollback: bool = False) -> Plan:
    """Send all traffic to the newest revision (promote) or back to the previous one (rollback)."""
    if not target.canary:
        raise UserError(
            f"the {target.name} has no canary to promote; `caig deploy {target.name}` rolls it out"
        )
    percent = 0 if rollback else None
    body = {"spec": {"predictor": {"canaryTrafficPercent": percent}}}
    action = "rollback" if rollback else "promote"
    return Plan(action, target.name, overlay, None, percent, None, _patch(target, base, MERGE_PATCH, body))


def _patch(target: Target, base: dict[str, Any], content_type: str, body: dict[str, Any]) -> Patch:
    meta = base["metadata"]
    namespace = meta.get("namespace")
    if not namespace:
        raise UserError(
            f"{target.kind} {meta['name']} has no namespace in the overlay; set `namespace:` there"
        )
    return Patch(target.api_version, target.kind, meta["name"], namespace, content_type, body)


def _isvc_patch(model_uri: str, canary: int | None) -> dict[str, Any]:
    # null deletes the field (RFC 7386): no canaryTrafficPercent means 100% to the new revision
    return {"spec": {"predictor": {"model": {"storageUri": model_uri}, "canaryTrafficPercent": canary}}}


def _isvc_with(base: dict[str, Any], model_uri: str, canary: int | None) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    predictor = obj["spec"]["predictor"]
    predictor["model"]["storageUri"] = model_uri
    if canary is None:
        predictor.pop("canaryTrafficPercent", None)
    else:
        predictor["canaryTrafficPercent"] = canary
    return obj


def _selector_parts(model_uri: str) -> tuple[str, str]:
    parsed = urlparse(model_uri)
    return parsed.netloc, parsed.path.strip("/")


def _selector_patch(model_uri: str) -> dict[str, Any]:
    claim, sub_path = _selector_parts(model_uri)
    mount = {"name": SELECTOR_RUN_VOLUME, "mountPath": SELECTOR_RUN_MOUNT, "subPath": sub_path}
    return {
        "spec": {
            "template": {
                "metadata": {"annotations": {MODEL_URI_ANNOTATION: model_uri}},
                "spec": {
                    "containers": [{"name": SELECTOR_CONTAINER, "volumeMounts": [mount]}],
                    "volumes": [{"name": SELECTOR_RUN_VOLUME, "persistentVolumeClaim": {"claimName": claim}}],
                },
            }
        }
    }


def _selector_with(base: dict[str, Any], model_uri: str) -> dict[str, Any]:
    claim, sub_path = _selector_parts(model_uri)
    obj = copy.deepcopy(base)
    template = obj["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("annotations", {})[MODEL_URI_ANNOTATION] = model_uri
    pod = template["spec"]
    container = _named(pod["containers"], SELECTOR_CONTAINER, "container")
    mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == SELECTOR_RUN_MOUNT), None)
    if mount is None:
        raise UserError(
            f"the selector's container mounts nothing at {SELECTOR_RUN_MOUNT}; check the manifests"
        )
    mount["subPath"] = sub_path
    _named(pod["volumes"], SELECTOR_RUN_VOLUME, "volume")["persistentVolumeClaim"]["claimName"] = claim
    return obj


def _named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for item in items:
        if item.get("name") == name:
            return item
    raise UserError(f"the selector has no {what} named '{name}'; check manifests/base/selector.yaml")
