"""The register component through the real KFP local runner: the trained run named after the day and the KFP
run id (a placeholder the runner fills in) and registered for the PM and the RM as pvc://caig-runs/<run>
(a dry run: no cluster here, so nothing is copied; publishing itself: tests/orchestration/test_storage.py)."""

# No `from __future__ import annotations`: KFP reads the test pipeline's annotations at runtime.

import json

import pytest

from caig.orchestration.source import ensure_importable

ensure_importable()

from components.register import register_models  # noqa: E402
from kfp import dsl, local  # noqa: E402
from kfp.dsl import Model  # noqa: E402
from tests.orchestration.test_storage import trained_artifacts  # noqa: E402

from caig.orchestration.params import profile_parameter  # noqa: E402
from caig.orchestration.storage import POINTER  # noqa: E402
from caig.profile import load_profile  # noqa: E402


@pytest.mark.filterwarnings("ignore:.*non-Python base image")
def test_register_names_the_run_after_the_kfp_run(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    artifacts = trained_artifacts(tmp_path / "steps")
    overrides = [f"orchestration.runs_mount_path={runs}", "orchestration.register_dry_run=true"]
    profile = profile_parameter(load_profile("production", overrides))

    @dsl.pipeline(name="register-only")
    def register_only(profile: str):
        models = {
            name: dsl.importer(artifact_uri=str(path), artifact_class=Model).output
            for name, path in artifacts.items()
        }
        register_models(
            profile=profile,
            as_of="2026-11-20T03:00:00+00:00",
            job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pm=models["pcpo"],
            base=models["pm"],
            rm=models["rm"],
        )

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    register_only(profile=profile)
    (record,) = (tmp_path / "root").rglob("register-models/record")
    text = record.read_text()
    uri = next(line for line in text.splitlines() if line.startswith("| pm |")).split("`")[1]
    run_id = uri.removeprefix("pvc://caig-runs/2026-11-20-")
    assert run_id != uri and run_id.isalnum() and run_id != "local"  # the KFP run id, filled in
    assert "dry run: patch planned" in text
    records = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    assert {r["target"]: r["plan"]["patch"]["name"] for r in records} == {"pm": "caig-pm", "rm": "caig-rm"}
    assert not (runs / POINTER).exists() and list(runs.iterdir()) == []  # a dry run copies nothing
