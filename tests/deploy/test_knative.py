"""The Knative feature flags the InferenceServices need, read from the built overlays, and the check of a
cluster's config-features ConfigMap (given here as its data, the dict the API returns)."""

from __future__ import annotations

import copy
import json

from click.testing import CliRunner
from tests.deploy.conftest import MANIFESTS, find

from caig.cli import cli
from caig.deploy.knative import check_flags, describe_missing, required_flags

# What a production InferenceService puts in the Knative pod spec (predictor + ServingRuntime).
PRODUCTION_FLAGS = {
    "kubernetes.podspec-securitycontext",
    "kubernetes.podspec-nodeselector",
    "kubernetes.podspec-tolerations",
    "kubernetes.podspec-persistent-volume-claim",  # the base weights (caig-models) in the ServingRuntime
    "kubernetes.podspec-emptydir",
}


def test_production_needs_the_flags_of_its_pod_specs(built):
    needed = required_flags(built["production"])
    assert set(needed) >= PRODUCTION_FLAGS
    assert "kubernetes.podspec-persistent-volume-write" not in needed  # every PVC is mounted read-only
    assert "caig-pm: predictor.nodeSelector" in needed["kubernetes.podspec-nodeselector"]
    assert (
        "caig-rm: servingruntime/caig-rm.volumes.base-models"
        in needed["kubernetes.podspec-persistent-volume-claim"]
    )


def test_a_default_knative_install_is_reported_flag_by_flag_with_the_fix(built):
    needed = required_flags(built["production"])
    check = check_flags(needed, {"_example": "# the commented defaults"}, "knative-serving")
    assert check["read"] is True
    assert set(check["missing"]) == set(needed) - {"kubernetes.podspec-emptydir"}  # on by default
    for flag in check["missing"]:
        assert f'"{flag}":"enabled"' in check["fix"]
    assert check["fix"].startswith("kubectl patch configmap config-features -n knative-serving --type merge")
    text = describe_missing(check)
    assert "kubernetes.podspec-nodeselector is not set (disabled by default), needed by caig-pm" in text


def test_an_enabled_install_passes_and_allowed_is_not_enabled(built):
    needed = required_flags(built["production"])
    enabled = {flag: "enabled" for flag in needed}
    assert check_flags(needed, enabled, "knative-serving")["missing"] == []
    check = check_flags(needed, {**enabled, "kubernetes.podspec-tolerations": "Allowed"}, "knative-serving")
    assert check["missing"] == ["kubernetes.podspec-tolerations"]
    disabled = check_flags(needed, {**enabled, "kubernetes.podspec-emptydir": "disabled"}, "knative-serving")
    assert disabled["missing"] == ["kubernetes.podspec-emptydir"]


def test_an_unreadable_config_map_says_so_and_lists_what_to_check(built):
    needed = required_flags(built["production"])
    check = check_flags(needed, None, "knative-serving", "the API server answered 403 Forbidden")
    assert check["read"] is False and check["missing"] == [] and check["fix"] == ""
    assert check["reason"] == (
        "cannot read knative-serving/config-features (the API server answered 403 Forbidden); "
        "check these flags by hand"
    )
    assert {f["flag"] for f in check["flags"]} == set(needed) and all(
        f["enabled"] is None for f in check["flags"]
    )


def test_writable_volumes_and_raw_deployments(built):
    objects = copy.deepcopy(built["production"])
    runtime = find(objects, "ServingRuntime", "caig-rm")
    for mount in runtime["spec"]["containers"][0]["volumeMounts"]:
        mount.pop("readOnly", None)
    for volume in runtime["spec"]["volumes"]:
        volume.get("persistentVolumeClaim", {}).pop("readOnly", None)
    assert required_flags(objects)["kubernetes.podspec-persistent-volume-write"] == [
        "caig-rm: servingruntime/caig-rm.volumes.base-models"
    ]
    for isvc in (o for o in objects if o["kind"] == "InferenceService"):
        isvc["metadata"].setdefault("annotations", {})["serving.kserve.io/deploymentMode"] = "RawDeployment"
    assert required_flags(objects) == {}  # no Knative: no flags


def test_deploy_dry_run_reports_when_it_cannot_read_the_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = CliRunner().invoke(
        cli,
        ["deploy", "rm", "--model-uri", "pvc://caig-runs/r1", "--profile", "production", "--dry-run"]
        + ["--set", f"deploy.manifests_dir={MANIFESTS}"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    knative = json.loads(result.output)["knative"]
    assert knative["read"] is False and "no usable Kubernetes credentials" in knative["reason"]
    assert {f["flag"] for f in knative["flags"]} >= PRODUCTION_FLAGS
