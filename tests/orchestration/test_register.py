"""The register step: canary patches for fetchable model URIs, local paths recorded as not registered."""

from __future__ import annotations

import pytest

from caig.orchestration.register import register_models
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
    result = register_models(dry_profile, {"pm": "/tmp/run/pcpo", "rm": "s3://b/rm"}, tmp_path / "r.md")
    pm, rm = result["records"]
    assert pm["registered"] is False and "KServe can only fetch" in pm["reason"] and "plan" not in pm
    assert "plan" in rm and result["metrics"]["planned"] == 1
    assert "not registered: a local path" in (tmp_path / "r.md").read_text()
