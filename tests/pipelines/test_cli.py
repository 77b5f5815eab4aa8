"""``caig compile`` and ``caig submit`` as a user runs them."""

from __future__ import annotations

import json
import socket

import yaml

from caig.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_compile_writes_each_pipeline(tmp_path, capsys):
    try:
        main(["compile", "--profile", "local", "--out", str(tmp_path), "--pipeline", "caig-training"])
    except SystemExit as done:
        assert done.code == 0
    assert (tmp_path / "caig-training.yaml").is_file()
    spec = yaml.safe_load_all((tmp_path / "caig-training.yaml").read_text()).__next__()
    assert (
        json.loads(spec["root"]["inputDefinitions"]["parameters"]["profile"]["defaultValue"])["name"]
        == "local"
    )
    assert "caig-training.yaml" in capsys.readouterr().out


def test_submit_to_an_unreachable_host_is_one_clear_line(capsys):
    port = _free_port()
    try:
        main(["submit", "--host", f"http://127.0.0.1:{port}", "--param", "data=/mnt/data/2026-11-20"])
    except SystemExit as done:
        assert done.code == 2
    else:
        raise AssertionError("submit to a closed port must fail")
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}")


def test_production_submit_without_data_is_refused_before_contacting_kfp(capsys):
    port = _free_port()  # nothing listens: had it tried, the error would be "cannot reach"
    for args in (["--pipeline", "caig-training"], ["--pipeline", "caig-refresh", "--param", "data="]):
        try:
            main(["submit", "--host", f"http://127.0.0.1:{port}", *args])
        except SystemExit as done:
            assert done.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: pipeline parameter 'data' is empty") and "simulated_world" in err


def test_training_submit_without_a_runs_volume_is_refused_before_contacting_kfp(capsys):
    """Its register step could publish no run the servers read (caig.orchestration.register): say so now,
    not after the training."""
    port = _free_port()  # nothing listens: had it tried, the error would be "cannot reach"
    try:
        main(
            [
                "submit",
                "--host",
                f"http://127.0.0.1:{port}",
                "--set",
                "orchestration.runs_pvc=",
                "--param",
                "data=/mnt/data/x",
            ]
        )
    except SystemExit as done:
        assert done.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: caig-training on a cluster needs orchestration.runs_pvc")


def test_submit_refuses_a_parameter_the_pipeline_lacks(capsys):
    try:
        main(["submit", "--host", "http://127.0.0.1:1", "--pipeline", "caig-refresh", "--param", "rounds=3"])
    except SystemExit as done:
        assert done.code == 2
    assert "caig-refresh has no parameter 'rounds'" in capsys.readouterr().err


def test_bad_override_is_a_user_error(capsys):
    try:
        main(["compile", "--set", "orchestration.gpu.gpus_per_step=0"])
    except SystemExit as done:
        assert done.code == 2
    assert "gpus_per_step must be at least 1" in capsys.readouterr().err


def test_params_parse_as_yaml_scalars_and_bad_ones_are_user_errors():
    from caig.cli.pipeline import parse_params
    from caig.errors import UserError

    assert parse_params(("rounds=3", "beta=0.1", "rm_ablation_table=true", "rm=s3://b/rm", "data=")) == {
        "rounds": 3,
        "beta": 0.1,
        "rm_ablation_table": True,
        "rm": "s3://b/rm",
        "data": "",
    }
    assert parse_params(("base_model=/mnt/models/[x]",)) == {
        "base_model": "/mnt/models/[x]"
    }  # text stays text
    try:
        parse_params(("rounds",))
    except UserError as err:
        assert "write it as NAME=VALUE" in str(err)
    else:
        raise AssertionError("a param without '=' must be refused")


def test_compile_refresh_only(tmp_path):
    try:
        main(["compile", "--profile", "local", "--out", str(tmp_path), "--pipeline", "caig-refresh"])
    except SystemExit as done:
        assert done.code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["caig-refresh.yaml"]
