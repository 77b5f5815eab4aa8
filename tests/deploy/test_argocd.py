"""GitOps safety of manifests/argocd: the Application stays in its own AppProject, deleting it deletes no data,
Argo CD never reverts a rollout, and nothing in git fights an autoscaler."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.deploy.conftest import MANIFESTS, OVERLAYS, ROOT, find, merge_patch, strategic_merge

from caig.deploy.plan import MERGE_PATCH, plan_deploy, plan_promote
from caig.deploy.targets import TARGETS

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
}
KEEP = {"Prune=false", "Delete=false"}


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "argocd" / name).read_text())


def _kind_key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["apiVersion"].rpartition("/")[0], obj["kind"]


def test_application_tracks_production_in_its_own_project():
    app, project = _load("application.yaml"), _load("appproject.yaml")
    assert app["spec"]["project"] == project["metadata"]["name"] == "caig"
    assert app["metadata"]["namespace"] == project["metadata"]["namespace"]
    source, destination = app["spec"]["source"], app["spec"]["destination"]
    assert source["path"] == "manifests/overlays/production"
    assert (ROOT / source["path"] / "kustomization.yaml").is_file()
    assert source["repoURL"] in project["spec"]["sourceRepos"] and "*" not in project["spec"]["sourceRepos"]
    assert project["spec"]["destinations"] == [{"server": destination["server"], "namespace": "caig"}]
    assert destination["namespace"] == "caig"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_deleting_the_application_cascades_to_nothing():
    """No resources finalizer: deleting the Application leaves the cluster as it is."""
    assert "finalizers" not in _load("application.yaml")["metadata"]


def test_project_allows_exactly_the_overlay_kinds(built):
    project = _load("appproject.yaml")["spec"]
    kinds = {_kind_key(o) for o in built["production"]}
    cluster = {(g["group"], g["kind"]) for g in project["clusterResourceWhitelist"]}
    namespaced = {(g["group"], g["kind"]) for g in project["namespaceResourceWhitelist"]}
    assert cluster == {k for k in kinds if k[1] in CLUSTER_SCOPED} == {("", "Namespace")}
    assert namespaced == {k for k in kinds if k[1] not in CLUSTER_SCOPED}
    assert "namespaceResourceBlacklist" not in project and "clusterResourceBlacklist" not in project


def _sync_options(obj: dict[str, Any]) -> set[str]:
    value = obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options", "")
    return {option.strip() for option in value.split(",") if option.strip()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_and_volumes_are_never_pruned_or_deleted(built, overlay):
    kept = [o for o in built[overlay] if o["kind"] in ("Namespace", "PersistentVolumeClaim")]
    assert len(kept) >= 5  # the namespace and caig-models, caig-runs, caig-features, caig-data
    for obj in kept:
        assert _sync_options(obj) >= KEEP, f"{obj['kind']} {obj['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_replicas_beside_an_autoscaler(built, overlay):
    objects = built[overlay]
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpas
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(objects, ref["kind"], ref["name"])
        assert "replicas" not in target["spec"], f"{ref['kind']} {ref['name']} sets replicas beside its HPA"


_MISSING = object()


def _resolve(node: Any, pointer: str) -> Any:
    for raw in pointer.strip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else _MISSING
        elif isinstance(node, dict):
            node = node.get(part, _MISSING)
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _changed(before: Any, after: Any, path: str = "") -> list[str]:
    """JSON pointers of every leaf that differs between two objects."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [
            p
            for k in keys
            for p in _changed(before.get(k, _MISSING), after.get(k, _MISSING), f"{path}/{_escape(k)}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            p
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for p in _changed(b, a, f"{path}/{i}")
        ]
    return [] if before == after else [path]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _ignored(app: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """The JSON pointers Argo CD ignores on ``obj`` (rules matching its group, kind and name)."""
    group, kind = _kind_key(obj)
    return [
        pointer
        for rule in app["spec"]["ignoreDifferences"]
        if rule.get("group", "") == group
        and rule["kind"] == kind
        and rule.get("name", obj["metadata"]["name"]) == obj["metadata"]["name"]
        for pointer in rule.get("jsonPointers", [])
    ]


def _rolled_out(built_objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(what, object as git has it, object after the rollout's PATCH) for every rollout a target offers."""
    out = []
    for target in TARGETS.values():
        base = find(built_objects, target.kind, target.object_name)
        # another claim than git's, so that every field a rollout may change does change
        uri = (
            "pvc://caig-runs-next/2026-11-20" if target.kind == "Deployment" else "pvc://caig-runs/2026-11-20"
        )
        plans = [plan_deploy(target, base, "production", uri, None)]
        if target.canary:
            plans += [
                plan_deploy(target, base, "production", uri, 10),
                plan_promote(target, base, "production"),
            ]
        for plan in plans:
            apply = merge_patch if plan.patch.content_type == MERGE_PATCH else strategic_merge
            out.append((f"{plan.action} {target.name}", base, apply(base, plan.patch.body)))
    return out


def test_rollouts_change_only_ignored_fields(built):
    """Every field a rollout PATCH changes is one Argo CD ignores on that object, so no sync reverts it."""
    app = _load("application.yaml")
    rollouts = _rolled_out(built["production"])
    assert len(rollouts) == 10
    for what, before, after in rollouts:
        changed = _changed(before, after)
        assert changed or what == "promote render", what  # git gives the renderer no canary to remove
        ignored = _ignored(app, before)
        uncovered = [p for p in changed if not any(p == q or p.startswith(q + "/") for q in ignored)]
        assert not uncovered, f"{what}: Argo CD would revert {uncovered}"


def test_every_ignored_field_is_one_a_rollout_sets(built):
    """Rules are by name, and each pointer resolves in the object as git has it or after a rollout."""
    app = _load("application.yaml")
    after = {}
    for _, before, rolled in _rolled_out(built["production"]):
        after.setdefault(before["metadata"]["name"], []).append(rolled)
    for rule in app["spec"]["ignoreDifferences"]:
        assert rule.get("name"), f"{rule['kind']}: ignoreDifferences must name the object"
        base = find(built["production"], rule["kind"], rule["name"])
        for pointer in rule["jsonPointers"]:
            versions = [base, *after.get(rule["name"], [])]
            assert any(_resolve(v, pointer) is not _MISSING for v in versions), f"{rule['name']}: {pointer}"


def test_coverage_check_can_fail(built):
    """Without the claim-name pointer, the selector rollout's change would be reverted: caught."""
    app = _load("application.yaml")
    for rule in app["spec"]["ignoreDifferences"]:
        rule["jsonPointers"] = [p for p in rule["jsonPointers"] if not p.endswith("claimName")]
    before, after = next((b, a) for w, b, a in _rolled_out(built["production"]) if w == "deploy selector")
    ignored = _ignored(app, before)
    uncovered = [
        p for p in _changed(before, after) if not any(p == q or p.startswith(q + "/") for q in ignored)
    ]
    assert uncovered == ["/spec/template/spec/volumes/1/persistentVolumeClaim/claimName"]
