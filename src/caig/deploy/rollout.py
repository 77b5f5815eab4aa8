"""The three rollouts the CLI and the pipeline offer, each one call: plan, then apply unless a dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caig.deploy.config import DeployConfig
from caig.deploy.knative import CONFIG_MAP, check_flags, describe_missing, required_flags
from caig.deploy.overlay import build_overlay, find_object
from caig.deploy.plan import Plan, plan_deploy, plan_promote, plan_register
from caig.deploy.targets import get_target
from caig.errors import UserError


def deploy(
    config: DeployConfig,
    target_name: str,
    model_uri: str,
    canary: int | None = None,
    overlay: str | None = None,
    dry_run: bool = False,
    wait: bool = True,
    kubeconfig: str | None = None,
) -> dict[str, Any]:
    """Roll ``model_uri`` out to a target as defined by an overlay; ``{"plan": ..., "applied": ...}``.

    For an InferenceService, the Knative feature flags the overlay's InferenceServices need are checked
    against the cluster's ``config-features`` when it can be read (``"knative"`` in the result); a real
    rollout is refused, with the fix, when one is missing, since Knative would reject the revision.
    """
    target = get_target(target_name)
    overlay = overlay or config.overlay
    objects = build_overlay(config.manifests_dir, overlay)
    base = find_object(objects, target.kind, target.object_name)
    plan = plan_deploy(target, base, overlay, model_uri, canary)
    if target.kind != "InferenceService":
        return _run(plan, config, dry_run, wait, kubeconfig)
    flags = knative_flags(config, objects, kubeconfig)
    if flags["missing"] and not dry_run:
        raise UserError(describe_missing(flags))
    return {**_run(plan, config, dry_run, wait, kubeconfig), "knative": flags}


def knative_flags(
    config: DeployConfig, objects: list[dict[str, Any]], kubeconfig: str | None = None
) -> dict[str, Any]:
    """The Knative flags ``objects`` need, checked against the cluster's config-features when readable."""
    from caig.deploy.cluster import read_config_map

    data, reason = read_config_map(config.knative_namespace, CONFIG_MAP, kubeconfig)
    return check_flags(required_flags(objects), data, config.knative_namespace, reason)


def promote(
    config: DeployConfig,
    target_name: str,
    overlay: str | None = None,
    rollback: bool = False,
    dry_run: bool = False,
    wait: bool = True,
    kubeconfig: str | None = None,
) -> dict[str, Any]:
    """Give a canary all the traffic (or none with ``rollback``)."""
    target = get_target(target_name)
    overlay = overlay or config.overlay
    base = find_object(build_overlay(config.manifests_dir, overlay), target.kind, target.object_name)
    return _run(plan_promote(target, base, overlay, rollback), config, dry_run, wait, kubeconfig)


def register_canary(
    config: DeployConfig,
    target_name: str,
    model_uri: str,
    namespace: str,
    canary: int | None = None,
    dry_run: bool = False,
    token_dir: str | None = None,
) -> dict[str, Any]:
    """From a pipeline step (no manifests at hand): point a running PM/RM at a new model as a canary.

    The InferenceService must already exist (Argo CD or ``caig deploy`` created it); ``canary`` defaults to
    ``deploy.canary_percent``. Does not wait: the step records the rollout, ``caig promote`` finishes it.
    ``token_dir``: a mounted service-account token (``token``, ``ca.crt``) to act as instead of the pod's.
    """
    plan = plan_register(get_target(target_name), namespace, model_uri, canary or config.canary_percent)
    return _run(plan, config, dry_run, wait=False, kubeconfig=None, token_dir=token_dir)


def sync_pipelines(
    config: DeployConfig, pipelines_dir: Path | None = None, host: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Upload the compiled pipelines as new versions and keep the recurring run of the refresh pipeline."""
    from caig.deploy.kfp_sync import apply_sync, plan_sync

    plan = plan_sync(config, pipelines_dir, host)
    if dry_run:
        return {"dry_run": True, "plan": plan.to_dict()}
    return {"dry_run": False, "plan": plan.to_dict(), "applied": apply_sync(plan)}


def _run(
    plan: Plan,
    config: DeployConfig,
    dry_run: bool,
    wait: bool,
    kubeconfig: str | None,
    token_dir: str | None = None,
) -> dict[str, Any]:
    if dry_run:
        return {"dry_run": True, "plan": plan.to_dict()}
    from caig.deploy.cluster import apply_plan

    wait_s = config.ready_timeout_s if wait else 0
    applied = apply_plan(
        plan, config.field_manager, wait_s=wait_s, kubeconfig=kubeconfig, token_dir=token_dir
    )
    return {"dry_run": False, "plan": plan.to_dict(), "applied": applied}
