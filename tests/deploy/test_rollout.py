"""``caig deploy ... --dry-run`` and ``caig promote --dry-run``: the printed objects and patches validate, and
applying the patch to what the overlay holds gives exactly the printed object."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from tests.deploy.conftest import K8S_VERSION, MANIFESTS, find, kserve_strict, merge_patch, strategic_merge

from caig.cli import cli
from caig.deploy.plan import MERGE_PATCH, STRATEGIC_MERGE_PATCH
from caig.deploy.rollout import register_canary
from caig.profile import load_profile


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def dry_run(*args: str) -> dict:
    code, out = run(
        *args, "--profile", "production", "--set", f"deploy.manifests_dir={MANIFESTS}", "--dry-run"
    )
    assert code == 0, out
    printed = json.loads(out)
    assert printed["dry_run"] is True
    return printed["plan"]


@pytest.mark.parametrize("target,name", [("pm", "caig-pm"), ("rm", "caig-rm"), ("render", "caig-render")])
def test_canary_deploy_of_a_model_server(built, target, name):
    plan = dry_run("deploy", target, "--model-uri", "s3://caig-runs/2026-11-20", "--canary", "25")
    patch = plan["patch"]
    assert (patch["kind"], patch["name"], patch["namespace"]) == ("InferenceService", name, "caig")
    assert patch["content_type"] == MERGE_PATCH
    assert patch["body"] == {
        "spec": {
            "predictor": {"model": {"storageUri": "s3://caig-runs/2026-11-20"}, "canaryTrafficPercent": 25}
        }
    }
    obj = plan["object"]
    kserve_strict(obj, "V1beta1InferenceService", name)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 25
    # the patch applied to what Argo CD deployed is exactly the object that would be created
    assert merge_patch(find(built["production"], "InferenceService", name), patch["body"]) == obj


def test_full_rollout_removes_the_canary_share(built):
    plan = dry_run("deploy", "pm", "--model-uri", "pvc://caig-runs/2026-11-20")
    assert plan["patch"]["body"]["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert "canaryTrafficPercent" not in plan["object"]["spec"]["predictor"]
    assert (
        merge_patch(find(built["production"], "InferenceService", "caig-pm"), plan["patch"]["body"])
        == plan["object"]
    )


def test_selector_deploy_points_the_run_volume_at_the_new_run(built):
    plan = dry_run("deploy", "selector", "--model-uri", "pvc://caig-runs/runs/2026-11-20")
    patch, obj = plan["patch"], plan["object"]
    assert (patch["kind"], patch["name"], patch["content_type"]) == (
        "Deployment",
        "creative-selector",
        STRATEGIC_MERGE_PATCH,
    )
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    pod = obj["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/mnt/run")
    assert mount["subPath"] == "runs/2026-11-20" and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "run")
    assert volume["persistentVolumeClaim"] == {"claimName": "caig-runs", "readOnly": True}
    assert (
        obj["spec"]["template"]["metadata"]["annotations"]["caig.io/model-uri"]
        == "pvc://caig-runs/runs/2026-11-20"
    )
    base = find(built["production"], "Deployment", "creative-selector")
    assert strategic_merge(base, patch["body"]) == obj


def test_promote_and_rollback_patches(built):
    plan = dry_run("promote", "rm")
    assert plan["object"] is None and plan["action"] == "promote"
    assert plan["patch"]["body"] == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    promoted = merge_patch(find(built["production"], "InferenceService", "caig-rm"), plan["patch"]["body"])
    kserve_strict(promoted, "V1beta1InferenceService")
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    plan = dry_run("promote", "rm", "--rollback")
    assert (
        plan["action"] == "rollback"
        and plan["patch"]["body"]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    )


def test_local_overlay_and_yaml_output():
    code, out = run(
        "deploy",
        "rm",
        "--profile",
        "local",
        "--set",
        f"deploy.manifests_dir={MANIFESTS}",
        "--model-uri",
        "pvc://caig-runs/demo",
        "--canary",
        "50",
        "--dry-run",
        "--output",
        "yaml",
    )
    assert code == 0, out
    plan = yaml.safe_load(out)["plan"]
    assert plan["overlay"] == "local"
    limits = plan["object"]["spec"]["predictor"]["model"]["resources"]["limits"]
    assert "nvidia.com/gpu" not in limits


def test_register_canary_from_a_pipeline_step():
    config = load_profile("production").deploy
    plan = register_canary(config, "pm", "s3://caig-runs/new", namespace="caig", dry_run=True)["plan"]
    assert plan["object"] is None and plan["canary_percent"] == config.canary_percent == 10
    assert plan["patch"]["body"]["spec"]["predictor"]["canaryTrafficPercent"] == 10


@pytest.mark.parametrize(
    "args,message",
    [
        (["deploy", "selector", "--model-uri", "pvc://caig-runs/x", "--canary", "10"], "no traffic split"),
        (["deploy", "selector", "--model-uri", "s3://bucket/run"], "pass pvc://CLAIM/PATH"),
        (["deploy", "pm", "--model-uri", "hf://org/model"], "--model-uri 'hf://org/model'"),
        (["deploy", "pm", "--model-uri", "s3://caig-runs/x", "--canary", "100"], "between 1 and 99"),
        (
            ["deploy", "pm", "--model-uri", "s3://caig-runs/x", "--overlay", "staging"],
            "choose one of: local, production",
        ),
        (["promote", "selector"], "Invalid value for '{pm|rm|render}'"),
    ],
)
def test_bad_requests_are_one_line_errors(args, message, capsys):
    from caig.cli import main

    with pytest.raises(SystemExit) as done:
        main([*args, "--profile", "production", "--set", f"deploy.manifests_dir={MANIFESTS}", "--dry-run"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert message in err and err.count("\n") == 1, err
