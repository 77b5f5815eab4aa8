"""The runs volume: a trained run published in the layout the model servers read, the pointer to the latest
registered run, and how a step turns its model parameters into directories on the volume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caig.errors import UserError
from caig.orchestration.storage import (
    POINTER,
    mark_registered,
    publish_run,
    registered_run,
    resolve_model,
    run_name,
)
from caig.profile import load_profile
from caig.serving.locate import find_adapter, find_pm, find_rm


def trained_artifacts(root: Path) -> dict[str, Path]:
    """The three step outputs register receives, with the files the servers look for (no weights needed)."""
    pcpo, pm, rm = root / "pcpo", root / "pretrain", root / "rm"
    (pcpo / "round-01" / "adapter").mkdir(parents=True)
    (pcpo / "round-01" / "round.json").write_text("{}")
    (pcpo / "round-01" / "adapter" / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(pm / "model")})  # the pcpo step's path: gone on a server
    )
    (pcpo / "pcpo.json").write_text(json.dumps({"method": "pcpo"}))
    (pm / "model").mkdir(parents=True)
    (pm / "model" / "config.json").write_text("{}")
    (pm / "checkpoints" / "checkpoint-500").mkdir(parents=True)  # training state: not served
    rm.mkdir()
    (rm / "rm.json").write_text("{}")
    return {"pcpo": pcpo, "pm": pm, "rm": rm}


@pytest.fixture()
def runs_config(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    return load_profile("production", [f"orchestration.runs_mount_path={runs}"]).orchestration


def test_a_published_run_is_what_the_servers_find(tmp_path, runs_config):
    artifacts = trained_artifacts(tmp_path / "steps")
    runs = Path(runs_config.runs_mount_path)
    run = publish_run(runs, "2026-11-20-abcd1234", artifacts["pcpo"], artifacts["pm"], artifacts["rm"])
    for path in artifacts.values():  # the pipeline's own copies are gone, as on a model server
        __import__("shutil").rmtree(path)
    # KServe mounts pvc://caig-runs/<run> at /mnt/models and the servers run with --run /mnt/models
    assert find_pm(run) == run / "pm" / "model"
    assert find_adapter(run) == run / "pcpo" / "round-01" / "adapter"
    assert find_rm(run) == run / "rm"
    assert not (run / "pm" / "checkpoints").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["2026-11-20-abcd1234"]  # no staging copy left


def test_publishing_again_changes_nothing_and_a_half_copy_is_replaced(tmp_path, runs_config):
    artifacts = trained_artifacts(tmp_path / "steps")
    runs = Path(runs_config.runs_mount_path)
    (runs / ".r1.partial" / "junk").mkdir(parents=True)  # a step killed mid-copy
    first = publish_run(runs, "r1", artifacts["pcpo"], artifacts["pm"], artifacts["rm"])
    stamp = (first / "run.json").read_text()
    (artifacts["rm"] / "rm.json").write_text('{"changed": true}')
    again = publish_run(runs, "r1", artifacts["pcpo"], artifacts["pm"], artifacts["rm"])
    assert again == first and (first / "run.json").read_text() == stamp
    assert (first / "rm" / "rm.json").read_text() == "{}"
    assert not (runs / ".r1.partial").exists()
    with pytest.raises(UserError, match="no directory at"):
        publish_run(runs, "r2", artifacts["pcpo"], tmp_path / "nothing", artifacts["rm"])
    with pytest.raises(UserError, match="run name '../x'"):
        publish_run(runs, "../x", artifacts["pcpo"], artifacts["pm"], artifacts["rm"])


def test_empty_parameters_take_the_latest_registered_run(tmp_path, runs_config):
    runs = Path(runs_config.runs_mount_path)
    with pytest.raises(UserError, match="no registered run .* run caig-training once"):
        resolve_model("", "rm", runs_config, "rm")
    artifacts = trained_artifacts(tmp_path / "steps")
    for name in ("r1", "r2"):
        publish_run(runs, name, artifacts["pcpo"], artifacts["pm"], artifacts["rm"])
    mark_registered(runs, "r1", "pvc://caig-runs/r1")
    mark_registered(runs, "r2", "pvc://caig-runs/r2")
    assert registered_run(runs)["uri"] == "pvc://caig-runs/r2"
    assert [p.name for p in runs.iterdir() if p.name.startswith(".")] == []  # the pointer was replaced whole
    assert resolve_model("", "rm", runs_config, "rm") == runs / "r2" / "rm"
    assert resolve_model("", "pm", runs_config, "pm") == runs / "r2" / "pm"
    assert resolve_model("", "pcpo", runs_config, "optimized") == runs / "r2" / "pcpo"
    # a registered run's URI, as register records it, for any part; or the part itself
    assert resolve_model("pvc://caig-runs/r1", "rm", runs_config, "rm") == runs / "r1" / "rm"
    assert resolve_model("pvc://caig-runs/r1/rm", "rm", runs_config, "rm") == runs / "r1" / "rm"
    # a directory is taken as it is (the KFP local runner passes step outputs)
    assert resolve_model(str(artifacts["rm"]), "rm", runs_config, "rm") == artifacts["rm"]
    assert (runs / POINTER).is_file()


def test_what_a_step_cannot_read_is_refused_naming_the_parameter(tmp_path, runs_config):
    with pytest.raises(UserError, match=r"'rm' 'pvc://caig-models/x': only the runs volume pvc://caig-runs"):
        resolve_model("pvc://caig-models/x", "rm", runs_config, "rm")
    with pytest.raises(UserError, match=r"'rm' 's3://b/rm': pass a path, a pvc://caig-runs/RUN URI"):
        resolve_model("s3://b/rm", "rm", runs_config, "rm")
    with pytest.raises(UserError, match="'pm': no directory at"):
        resolve_model(str(tmp_path / "missing"), "pm", runs_config, "pm")
    local = load_profile("local").orchestration
    with pytest.raises(UserError, match="'rm' is empty and orchestration.runs_pvc is not set"):
        resolve_model("", "rm", local, "rm")


def test_run_names_carry_the_day_and_the_kfp_run():
    assert run_name("2026-11-20T03:00:00+00:00", "3f2a9c1d-77e0-4c3e") == "2026-11-20-3f2a9c1d"
    assert run_name("", "") == "run-local"
