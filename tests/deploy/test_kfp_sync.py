"""``caig deploy pipelines --dry-run``: which compiled pipelines would be uploaded under which versions, and
the recurring run of the refresh pipeline (the KFP API itself is not contacted here)."""

# no `from __future__ import annotations`: KFP reads the component annotations as types

import json
import shutil

import pytest
from click.testing import CliRunner
from tests.deploy.conftest import ROOT

from caig.cli import cli
from caig.deploy.config import DeployConfig
from caig.deploy.kfp_sync import plan_sync
from caig.errors import UserError


@pytest.fixture()
def compiled(tmp_path):
    """The checked-in caig-training YAML plus a real compiled pipeline named caig-refresh."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11-slim")
    def step() -> str:
        return "ok"

    @dsl.pipeline(name="caig-refresh")
    def refresh() -> None:
        step()

    compiler.Compiler().compile(refresh, str(tmp_path / "caig-refresh.yaml"))
    shutil.copy(ROOT / "pipelines" / "compiled" / "caig-training.yaml", tmp_path)
    return tmp_path


def test_dry_run_names_versions_and_schedule(compiled):
    result = CliRunner().invoke(
        cli,
        ["deploy", "pipelines", "--profile", "production", "--dir", str(compiled), "--dry-run"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["plan"]
    assert plan["host"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert [u["pipeline"] for u in plan["uploads"]] == ["caig-refresh", "caig-training"]
    assert all(
        u["version"].startswith(u["pipeline"] + "-") and len(u["version"]) == len(u["pipeline"]) + 13
        for u in plan["uploads"]
    )
    assert (plan["recurring_pipeline"], plan["cron"], plan["max_concurrency"]) == (
        "caig-refresh",
        "0 0 3 * * *",
        1,
    )


def test_versions_follow_the_file_content(compiled):
    before = {u.pipeline: u.version for u in plan_sync(DeployConfig(), compiled).uploads}
    again = {u.pipeline: u.version for u in plan_sync(DeployConfig(), compiled).uploads}
    assert before == again  # unchanged files: nothing new to upload
    path = compiled / "caig-refresh.yaml"
    path.write_text(path.read_text() + "\n# recompiled\n")
    after = {u.pipeline: u.version for u in plan_sync(DeployConfig(), compiled).uploads}
    assert (
        after["caig-refresh"] != before["caig-refresh"] and after["caig-training"] == before["caig-training"]
    )


def test_refuses_what_it_cannot_schedule(compiled, tmp_path):
    (compiled / "caig-refresh.yaml").unlink()
    with pytest.raises(UserError, match="'caig-refresh' is not among the compiled pipelines"):
        plan_sync(DeployConfig(), compiled)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no compiled pipelines"):
        plan_sync(DeployConfig(), empty)
    (empty / "x.yaml").write_text("a: 1\n")
    with pytest.raises(UserError, match="not a compiled KFP pipeline"):
        plan_sync(DeployConfig(), empty)


def test_config_checks_the_cron():
    with pytest.raises(ValueError, match="6 fields"):
        DeployConfig(recurring_cron="0 3 * * *")
    with pytest.raises(ValueError, match="canary_percent"):
        DeployConfig(canary_percent=100)
