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


def test_links_point_at_step_outputs_and_go_with_the_next_run(tmp_path):
    run = RunDir(tmp_path / "run").prepare()
    world = run.pipeline_root / "r1" / "build-world" / "world"
    world.mkdir(parents=True)
    (world / "catalog.parquet").write_text("x")
    run.link({"world": world})
    assert (run.root / "world").is_symlink() and (run.root / "world" / "catalog.parquet").read_text() == "x"
    assert not (run.root / "world").readlink().is_absolute()  # the run directory can be moved
    run.prepare()
    assert not (run.root / "world").exists() and not (run.root / "world").is_symlink()


def test_a_real_folder_is_never_replaced_by_a_link(tmp_path):
    run = RunDir(tmp_path).prepare()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.txt").write_text("keep")
    run.link({"data": tmp_path / "elsewhere"})
    assert not (tmp_path / "data").is_symlink() and (tmp_path / "data" / "mine.txt").read_text() == "keep"
    with pytest.raises(ValueError, match="unknown run link"):
        run.link({"models": tmp_path})


def test_a_local_run_links_the_run_layout_the_servers_read(tmp_path):
    from caig.runlayout import RunLayout

    run = RunDir(tmp_path / "run").prepare()
    steps = run.pipeline_root / "r1"
    pm, rm, pcpo = steps / "pretrain-pm" / "pm", steps / "train-rm" / "rm", steps / "optimize-pm" / "run"
    (pm / "model").mkdir(parents=True)
    (pm / "model" / "config.json").write_text("{}")
    rm.mkdir(parents=True)
    (rm / "rm.json").write_text("{}")
    (pcpo / "round-01" / "adapter").mkdir(parents=True)
    (pcpo / "round-01" / "round.json").write_text("{}")
    (pcpo / "round-01" / "adapter" / "adapter_config.json").write_text("{}")
    run.link({"pm": pm, "rm": rm, "pcpo": pcpo})
    layout = RunLayout(run.root)
    assert layout.require_pm() == run.root / "pm" / "model" and layout.require_rm() == run.root / "rm"
    assert layout.adapter() == run.root / "pcpo" / "round-01" / "adapter"
    run.prepare()  # the next run removes the links with the outputs they point into
    assert not any((run.root / name).is_symlink() for name in ("pm", "rm", "pcpo"))
