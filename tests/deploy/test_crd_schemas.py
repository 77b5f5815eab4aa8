"""Every custom resource we ship (InferenceService, ServingRuntime in the overlays; the Argo CD Application and
AppProject) validates against its CRD's own OpenAPI v3 schema, kept as test data, as strictly as the API
server would check it."""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any

import pytest
import yaml
from tests.deploy import crd_schemas
from tests.deploy.conftest import MANIFESTS, OVERLAYS, find

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
