"""Run directory: a new run replaces the last one's step outputs and top-level files, nothing else."""

from __future__ import annotations

import json

import pytest

from caig.orchestration.rundir import RunDir


def test_prepare_replaces_the_previous_run_only(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "pipeline" / "old-run" / "step").mkdir(parents=True)
    run.metrics.write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    run.prepare()
    assert not (tmp_path / "pipeline" / "old-run").exists() and not run.metrics.exists()
    assert run.workspace.is_dir() and (tmp_path / "notes.txt").read_text() == "mine"


def test_finish_copies_the_report_and_records_steps(tmp_path):
    run = RunDir(tmp_path / "run").prepare()
    made = tmp_path / "made"
    made.mkdir()
    for name in ("r.html", "r.md", "m.json"):
        (made / name).write_text(name)
    run.finish(made / "r.html", made / "r.md", made / "m.json", {"report": {"metrics": str(made / "m.json")}})
    assert run.report_html.read_text() == "r.html" and run.metrics.read_text() == "m.json"
    assert json.loads(run.steps.read_text()) == {"report": {"metrics": str(made / "m.json")}}
    with pytest.raises(FileNotFoundError, match="did not write"):
        run.finish(made / "nope.html", made / "r.md", made / "m.json", {})
