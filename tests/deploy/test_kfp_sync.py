"""``caig deploy pipelines``: which compiled pipelines are uploaded under which versions, and the recurring
run of the refresh pipeline with its arguments: planned offline (``--dry-run``), then applied through the
real kfp client against a small stand-in of the KFP REST API on loopback (tests/deploy/kfp_fake.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from click.testing import CliRunner
from tests.deploy.conftest import ROOT
from tests.deploy.kfp_fake import FakeKfp

from caig.cli import cli
from caig.deploy.config import DeployConfig
from caig.deploy.kfp_sync import apply_sync, plan_sync
from caig.errors import UserError
from caig.profile import load_profile

COMPILED = ROOT / "pipelines" / "compiled"


@pytest.fixture()
def compiled(tmp_path):
    """The checked-in compiled pipelines (production profile), in a folder of their own."""
    out = tmp_path / "compiled"
    out.mkdir()
    for path in COMPILED.glob("*.yaml"):
        shutil.copy(path, out)
    return out


def production() -> DeployConfig:
    return load_profile("production").deploy


def test_dry_run_names_versions_schedule_and_arguments(compiled):
    result = CliRunner().invoke(
        cli,
        ["deploy", "pipelines", "--profile", "production", "--dir", str(compiled), "--dry-run"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["plan"]
    assert (
        plan["host"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888" and plan["namespace"] == "caig"
    )
    assert [u["pipeline"] for u in plan["uploads"]] == ["caig-generate", "caig-refresh", "caig-training"]
    assert all(
        u["version"].startswith(u["pipeline"] + "-") and len(u["version"]) == len(u["pipeline"]) + 13
        for u in plan["uploads"]
    )
    assert (plan["recurring_pipeline"], plan["cron"], plan["max_concurrency"]) == (
        "caig-refresh",
        "0 0 3 * * *",
        1,
    )
    # the daily run reads the new logs and ranks with the latest registered RM; "now" is each run's start
    assert plan["parameters"] == {"data": "/mnt/data/current", "rm": "", "as_of": ""}


def test_versions_follow_the_file_content(compiled):
    before = {u.pipeline: u.version for u in plan_sync(production(), compiled).uploads}
    again = {u.pipeline: u.version for u in plan_sync(production(), compiled).uploads}
    assert before == again  # unchanged files: nothing new to upload
    path = compiled / "caig-refresh.yaml"
    path.write_text(path.read_text() + "\n# recompiled\n")
    after = {u.pipeline: u.version for u in plan_sync(production(), compiled).uploads}
    assert (
        after["caig-refresh"] != before["caig-refresh"] and after["caig-training"] == before["caig-training"]
    )


def test_refuses_what_it_cannot_schedule(compiled, tmp_path):
    config = production()
    with pytest.raises(UserError, match="'data' is empty, and the compiled profile never builds a simulated"):
        plan_sync(replace(config, recurring_parameters={"rm": ""}), compiled)
    with pytest.raises(UserError, match="no parameter 'rounds'; the pipeline takes as_of, data, profile, rm"):
        plan_sync(
            replace(config, recurring_parameters={**config.recurring_parameters, "rounds": 3}), compiled
        )
    # caig-generate scheduled instead: its data location has no default
    with pytest.raises(UserError, match="caig-generate: 'data' has no default; set data there"):
        plan_sync(replace(config, recurring_pipeline="caig-generate", recurring_parameters={}), compiled)
    generate = plan_sync(
        replace(
            config, recurring_pipeline="caig-generate", recurring_parameters={"data": "/mnt/data/current"}
        ),
        compiled,
    )
    assert generate.parameters == {"data": "/mnt/data/current", "as_of": ""}  # pm, optimized, rm: registered
    (compiled / "caig-refresh.yaml").unlink()
    with pytest.raises(UserError, match="'caig-refresh' is not among the compiled pipelines"):
        plan_sync(config, compiled)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no compiled pipelines"):
        plan_sync(config, empty)
    (empty / "x.yaml").write_text("a: 1\n")
    with pytest.raises(UserError, match="not a compiled KFP pipeline"):
        plan_sync(config, empty)


def test_config_checks_the_cron_and_keeps_as_of_live():
    with pytest.raises(ValueError, match="6 fields"):
        DeployConfig(recurring_cron="0 3 * * *")
    with pytest.raises(ValueError, match="canary_percent"):
        DeployConfig(canary_percent=100)
    with pytest.raises(ValueError, match="recurring_parameters.as_of must not be set"):
        DeployConfig(recurring_parameters={"as_of": "2026-10-29T00:00:00+00:00"})


def test_apply_uploads_once_and_schedules_the_refresh_with_its_arguments(compiled):
    with FakeKfp() as kfp:
        plan = plan_sync(replace(production(), kfp_namespace=""), compiled, host=kfp.url)
        first = apply_sync(plan)
        assert set(first["versions"]) == {"caig-generate", "caig-refresh", "caig-training"}
        (run,) = kfp.recurring.values()
        assert run["display_name"] == "caig-refresh-scheduled"
        assert run["runtime_config"]["parameters"] == {"data": "/mnt/data/current", "rm": "", "as_of": ""}
        assert run["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *" and int(run["max_concurrency"]) == 1
        assert run["pipeline_version_reference"]["pipeline_version_id"] == first["versions"]["caig-refresh"]

        uploads = len([r for r in kfp.requests if r[0] == "POST" and "upload" in r[1]])
        again = apply_sync(plan)  # nothing changed: nothing uploaded, the same recurring run kept
        assert again == first and len(kfp.recurring) == 1
        assert len([r for r in kfp.requests if r[0] == "POST" and "upload" in r[1]]) == uploads

        moved = plan_sync(
            replace(production(), kfp_namespace="", recurring_parameters={"data": "/mnt/data/eu", "rm": ""}),
            compiled,
            host=kfp.url,
        )
        third = apply_sync(moved)  # new arguments: the recurring run is replaced
        (run,) = kfp.recurring.values()
        assert third["recurring_run"] != first["recurring_run"]
        assert run["runtime_config"]["parameters"]["data"] == "/mnt/data/eu"


def test_multi_user_files_everything_in_the_profile_namespace(compiled):
    with FakeKfp(multi_user=True) as kfp:
        plan = plan_sync(production(), compiled, host=kfp.url)
        first = apply_sync(plan)
        assert apply_sync(plan) == first and len(kfp.pipelines) == 3  # the next sync finds them there
        (experiment,) = kfp.experiments.values()
        assert experiment["namespace"] == "caig"
        assert {p["namespace"] for p in kfp.pipelines.values()} == {"caig"}
        listed = [q for method, path, q in kfp.requests if method == "GET" and path.endswith("/experiments")]
        assert all(q["namespace"] == ["caig"] for q in listed)


def test_an_unreachable_kfp_is_one_clear_error(compiled):
    with FakeKfp() as kfp:
        url = kfp.url  # closed when the block ends: nothing listens there any more
    with pytest.raises(UserError, match=f"cannot reach Kubeflow Pipelines at {url}"):
        apply_sync(plan_sync(production(), compiled, host=url))
