"""Every custom resource we ship (InferenceService, ServingRuntime in the overlays; the Argo CD Application and
AppProject; the Kubeflow Trainer TrainingRuntime of manifests/trainer) validates against its CRD's own OpenAPI v3 schema, kept as test data, as strictly as the API
server would check it."""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any

import pytest
import yaml
from tests.deploy import crd_schemas
from tests.deploy.conftest import K8S_VERSION, MANIFESTS, OVERLAYS, find, kustomize, strategic_merge

# apiVersion groups the Kubernetes API itself serves (kubernetes-validate checks those in test_manifests.py)
BUILT_IN_GROUPS = {
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}
ARGOCD_FILES = ("application.yaml", "appproject.yaml")


def _group(obj: dict[str, Any]) -> str:
    return obj["apiVersion"].rpartition("/")[0]


def _argocd_objects() -> list[dict[str, Any]]:
    return [yaml.safe_load((MANIFESTS / "argocd" / name).read_text()) for name in ARGOCD_FILES]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_resource_has_a_kept_schema(built, overlay):
    custom = [o for o in built[overlay] if _group(o) not in BUILT_IN_GROUPS]
    kinds = {(o["apiVersion"], o["kind"]) for o in custom}
    assert kinds == {
        ("serving.kserve.io/v1beta1", "InferenceService"),
        ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    }
    assert kinds <= set(crd_schemas.SCHEMA_FILES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_custom_resources_validate(built, overlay):
    checked = 0
    for obj in built[overlay]:
        if (obj["apiVersion"], obj["kind"]) in crd_schemas.SCHEMA_FILES:
            assert crd_schemas.errors(obj) == [], f"{overlay}: {obj['kind']} {obj['metadata']['name']}"
            checked += 1
    assert checked == 6  # three runtimes, three InferenceServices


def test_argocd_objects_validate():
    objects = _argocd_objects()
    assert {(o["apiVersion"], o["kind"]) for o in objects} <= set(crd_schemas.SCHEMA_FILES)
    for obj in objects:
        assert crd_schemas.errors(obj) == [], obj["kind"]


def test_kept_schemas_match_their_names():
    readme = (crd_schemas.CRD_DIR / "README.md").read_text()
    for (api_version, kind), name in crd_schemas.SCHEMA_FILES.items():
        record = json.loads(gzip.decompress((crd_schemas.CRD_DIR / name).read_bytes()))
        assert (record["apiVersion"], record["kind"]) == (api_version, kind), name
        assert name in readme and record["source"].split("@")[1][:40] in readme, name
        assert record["schema"]["properties"]["spec"]["properties"], name
        assert "status" not in record["schema"]["properties"], name


def _mistakes(built: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any], str]]:
    """(what, a broken copy of a real object, a fragment of the error it must give)."""
    objects = built["production"]
    cases = []
    isvc = copy.deepcopy(find(objects, "InferenceService", "caig-pm"))
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://x"
    cases.append(("unknown field", isvc, "'storageURI' was unexpected"))
    isvc = copy.deepcopy(find(objects, "InferenceService", "caig-pm"))
    isvc["spec"]["predictor"]["minReplicas"] = "1"
    cases.append(("wrong type", isvc, "is not of type 'integer'"))
    isvc = copy.deepcopy(find(objects, "InferenceService", "caig-pm"))
    del isvc["spec"]["predictor"]
    cases.append(("missing required field", isvc, "'predictor' is a required property"))
    isvc = copy.deepcopy(find(objects, "InferenceService", "caig-pm"))
    isvc["spec"]["predictor"]["maxReplicas"] = 2**40
    cases.append(("int32 out of range", isvc, "is not a 'int32'"))
    runtime = copy.deepcopy(find(objects, "ServingRuntime", "caig-pm"))
    container = runtime["spec"]["containers"][0]
    container["env"] = container["env"] + [copy.deepcopy(container["env"][0])]
    cases.append(("duplicate list-map key", runtime, "duplicate entries for key {'name': 'HOME'}"))
    runtime = copy.deepcopy(find(objects, "ServingRuntime", "caig-pm"))
    runtime["spec"]["containers"][0]["startupProbe"]["failureThreshold"] = "180"
    cases.append(("probe with a string count", runtime, "is not of type 'integer'"))
    app, project = _argocd_objects()
    app = copy.deepcopy(app)
    del app["spec"]["destination"]
    cases.append(("Application without destination", app, "'destination' is a required property"))
    project = copy.deepcopy(project)
    project["spec"]["destinations"][0]["namespaces"] = "caig"
    cases.append(("AppProject typo", project, "'namespaces' was unexpected"))
    return cases


def test_validator_catches_mistakes(built):
    """Each kind of mistake is reported: the checks above can fail."""
    for what, obj, fragment in _mistakes(built):
        found = crd_schemas.errors(obj)
        assert any(fragment in e for e in found), f"{what}: {found}"


def _trainer_objects() -> list[dict[str, Any]]:
    """``manifests/trainer`` (the multi-GPU TrainingRuntime, its launcher's identity, its network rule)."""
    return kustomize(MANIFESTS / "trainer")


def test_trainer_runtime_validates_and_runs_restricted():
    """The TrainingRuntime the pipelines' TrainJobs name validates against Kubeflow Trainer's CRD, is the
    torch policy with the Trainer's `node` container, and its pods meet Pod Security restricted, also with
    a TrainJob's volumes and mounts patched in (caig.orchestration.trainjob)."""
    from tests.deploy.test_pod_security import resource_violations, restricted_violations

    from caig.orchestration.config import OrchestrationConfig
    from caig.orchestration.trainjob import TrainJobSettings, build_trainjob

    runtime = find(_trainer_objects(), "TrainingRuntime", OrchestrationConfig().trainer_runtime)
    assert crd_schemas.errors(runtime) == []
    assert runtime["spec"]["mlPolicy"] == {"numNodes": 1, "torch": {}}
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    assert node["template"]["metadata"]["labels"]["trainer.kubeflow.org/trainjob-ancestor-step"] == "trainer"
    pod = node["template"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["node"]
    assert restricted_violations(pod) == [] and resource_violations(pod) == []
    config = OrchestrationConfig(runs_pvc="caig-runs")
    job = build_trainjob(
        TrainJobSettings.from_config(config, "img"), "caig-x-1", ["pretrain"], {"a": "/in/a"}, "/out"
    )
    patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    patched = strategic_merge(pod, patch["template"]["spec"]["template"]["spec"])
    assert len(patched["volumes"]) == len(pod["volumes"]) + 4  # profile, one input, output, base weights
    assert restricted_violations(patched) == []
    broken = copy.deepcopy(runtime)
    broken["spec"]["mlPolicy"]["torch"]["numProcPerNode"] = "auto"
    assert any("'numProcPerNode' was unexpected" in e for e in crd_schemas.errors(broken))


def test_trainer_launcher_identity_has_only_what_run_step_calls():
    """The launcher steps' Role allows the calls caig.orchestration.trainjob makes and nothing more; every
    built-in object of manifests/trainer validates against Kubernetes' own schema."""
    import kubernetes_validate

    objects = _trainer_objects()
    for obj in objects:
        if _group(obj) in BUILT_IN_GROUPS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    role = find(objects, "Role", "caig-trainjob-launcher")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]}
    assert rules == {
        (("trainer.kubeflow.org",), ("trainjobs",), ("create", "get", "delete")),
        (("",), ("pods",), ("list",)),
        (("",), ("pods/log",), ("get",)),
    }
    binding = find(objects, "RoleBinding", "caig-trainjob-launcher")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "caig-trainjob-launcher"}]
    token = find(objects, "Secret", "caig-trainjob-launcher-token")
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "caig-trainjob-launcher"
