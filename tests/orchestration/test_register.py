"""The register step: the trained run published on the runs volume and registered as a canary for the
servers; object-store URIs get a canary patch; local paths are recorded as not registered."""

from __future__ import annotations

import json

import pytest
from tests.orchestration.test_storage import trained_artifacts

from caig.orchestration.register import register_models, register_run
from caig.orchestration.storage import POINTER
from caig.profile import load_profile


@pytest.fixture()
def dry_profile():
    return load_profile("production", ["orchestration.register_dry_run=true"])


def test_object_store_uris_get_a_canary_patch_in_a_dry_run(dry_profile, tmp_path):
    uris = {"pm": "s3://caig-runs/run-7/pcpo", "rm": "s3://caig-runs/run-7/rm"}
    result = register_models(dry_profile, uris, tmp_path / "register.md")
    assert result["metrics"] == {"registered": 0, "planned": 2, "canary_percent": 10}
    for record in result["records"]:
        plan = record["plan"]
        assert plan["model_uri"] == uris[record["target"]] and plan["canary_percent"] == 10
        assert plan["patch"]["namespace"] == "caig"
    page = (tmp_path / "register.md").read_text()
    assert "| pm | `s3://caig-runs/run-7/pcpo` | dry run: patch planned |" in page


def test_local_paths_are_recorded_not_registered(dry_profile, tmp_path):
    result = register_models(dry_profile, {"pm": "/srv/runs/pcpo", "rm": "s3://b/rm"}, tmp_path / "r.md")
    pm, rm = result["records"]
    assert pm["registered"] is False and "KServe can only fetch" in pm["reason"] and "plan" not in pm
    assert "plan" in rm and result["metrics"]["planned"] == 1
    assert "not registered: a local path" in (tmp_path / "r.md").read_text()


def test_production_registers_the_run_on_the_runs_volume(tmp_path):
    """The servers get pvc://caig-runs/<run> (KServe mounts it), never the pipeline's minio:// artifacts."""
    runs = tmp_path / "runs"
    runs.mkdir()
    profile = load_profile(
        "production", ["orchestration.register_dry_run=true", f"orchestration.runs_mount_path={runs}"]
    )
    artifacts = trained_artifacts(tmp_path / "steps")
    minio = {"pm": "minio://mlpipeline/v2/artifacts/pcpo", "rm": "minio://mlpipeline/v2/artifacts/rm"}
    result = register_run(
        profile, artifacts, minio, tmp_path / "r.md", "2026-11-20T03:00:00+00:00", "ab12cd34-ef"
    )
    assert result["published"] == {
        "run": "2026-11-20-ab12cd34",
        "uri": "pvc://caig-runs/2026-11-20-ab12cd34",
        "copied": False,
    }
    for record in result["records"]:
        body = record["plan"]["patch"]["body"]["spec"]["predictor"]
        assert body["model"]["storageUri"] == "pvc://caig-runs/2026-11-20-ab12cd34"
        assert record["plan"]["patch"]["name"] == f"caig-{record['target']}"
    assert list(runs.iterdir()) == []  # a dry run copies nothing and moves no pointer


def test_a_registered_run_becomes_the_latest_only_after_the_servers_point_at_it(tmp_path):
    """A registration that fails (here the mounted caig-register identity is unusable): the run is copied,
    the pointer not moved, and the error names the identity the step used."""
    runs = tmp_path / "runs"
    runs.mkdir()
    profile = load_profile("production", [f"orchestration.runs_mount_path={runs}"])
    artifacts = trained_artifacts(tmp_path / "steps")
    token = tmp_path / "identity"
    token.mkdir()
    (token / "token").write_text("not-a-real-token")
    (token / "ca.crt").write_text("")
    profile.orchestration.register_identity_path = str(token)
    from caig.errors import UserError

    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        with pytest.raises(
            UserError, match=f"Cert file exists but empty.*check the token mounted at {token}"
        ):
            register_run(profile, artifacts, {}, tmp_path / "r.md", "2026-11-20", "ab12cd34")
    assert (runs / "2026-11-20-ab12cd34" / "run.json").is_file()  # published (a retry will not copy again)
    assert not (runs / POINTER).exists()  # not registered: the refresh keeps ranking with the previous RM
    assert json.loads((runs / "2026-11-20-ab12cd34" / "run.json").read_text())["run"] == "2026-11-20-ab12cd34"


def test_without_a_runs_volume_a_cluster_run_is_refused_in_one_line(tmp_path):
    """No artifact holds the run layout the servers read: registering the PCPO artifact would point caig-pm
    at it, so register refuses and names orchestration.runs_pvc; nothing is patched or written."""
    from caig.errors import UserError

    profile = load_profile("production", ["orchestration.runs_pvc=", "orchestration.register_dry_run=true"])
    minio = {"pm": "minio://mlpipeline/v2/artifacts/pcpo", "rm": "minio://mlpipeline/v2/artifacts/rm"}
    with pytest.raises(UserError) as err:
        register_run(
            profile, trained_artifacts(tmp_path / "steps"), minio, tmp_path / "r.md", "2026-11-20", "ab"
        )
    message = str(err.value)
    assert (
        "orchestration.runs_pvc is not set" in message and "minio://mlpipeline/v2/artifacts/pcpo" in message
    )
    assert len(message.splitlines()) == 1 and not (tmp_path / "r.md").exists()


def test_without_a_runs_volume_the_local_runner_s_paths_are_recorded_not_registered(tmp_path):
    """The KFP local runner (caig run --local, the local profile: no runs_pvc) writes local paths: nothing to
    publish or register, each recorded with the reason, and the run goes on."""
    profile = load_profile("local", ["orchestration.register_dry_run=true"])
    artifacts = trained_artifacts(tmp_path / "steps")
    uris = {"pm": str(artifacts["pcpo"]), "rm": str(artifacts["rm"])}
    result = register_run(profile, artifacts, uris, tmp_path / "r.md", "2026-11-20", "ab")
    assert result["metrics"]["registered"] == 0 and "published" not in result
    assert all("a local path" in r["reason"] for r in result["records"])
