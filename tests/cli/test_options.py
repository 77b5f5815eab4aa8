"""`world_option`: one --world check for every command, a one-line error that names the fix."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from caig.cli import main
from caig.cli.options import world_option, writable_dir


def _data_dir(root: Path, *names: str) -> Path:
    root.mkdir()
    for name in names:
        (root / name).write_text("")
    return root


@click.command()
@world_option(required=True)
@world_option("--eval-world", "eval_dir", oracle=True, help_suffix="Judged by its oracle.")
def _probe(world_dir: Path, eval_dir: Path | None) -> None:
    click.echo(f"{world_dir.name} {eval_dir.name if eval_dir else None}")


def test_passes_the_directory_under_its_name(tmp_path):
    data = _data_dir(tmp_path / "data", "catalog.parquet", "creatives.parquet")
    world = _data_dir(tmp_path / "world", "catalog.parquet", "creatives.parquet", "world.json")
    assert CliRunner().invoke(_probe, ["--world", str(data)]).output == "data None\n"
    result = CliRunner().invoke(_probe, ["--world", str(data), "--eval-world", str(world)])
    assert result.exit_code == 0 and result.output == "data world\n"


@pytest.mark.parametrize(
    ("files", "option", "fragment"),
    [
        (None, "--world", "does not exist; pass a built world"),
        (("creatives.parquet",), "--world", "holds no catalog.parquet; pass a built world"),
        (("catalog.parquet", "creatives.parquet"), "--eval-world", "holds no world.json"),
    ],
)
def test_refuses_a_directory_without_the_layout(tmp_path, files, option, fragment):
    good = _data_dir(tmp_path / "good", "catalog.parquet", "creatives.parquet")
    bad = tmp_path / "bad" if files is None else _data_dir(tmp_path / "bad", *files)
    args = ["--world", str(good), option, str(bad)] if option != "--world" else ["--world", str(bad)]
    result = CliRunner().invoke(_probe, args)
    assert result.exit_code == 2 and f"'{option}'" in result.output and fragment in result.output


def test_a_file_is_not_a_directory_and_help_names_the_layout(tmp_path):
    (tmp_path / "catalog.parquet").write_text("")
    result = CliRunner().invoke(_probe, ["--world", str(tmp_path / "catalog.parquet")])
    assert result.exit_code == 2 and "is not a directory" in result.output
    help_text = " ".join(CliRunner().invoke(_probe, ["--help"]).output.split())
    assert "catalog.parquet, creatives.parquet and the images" in help_text
    assert "world.json and the images: a built world" in help_text and "Judged by its oracle." in help_text


@pytest.mark.parametrize(
    ("command", "option", "fragment"),
    [
        (["bandit", "simulate", "--out", "{tmp}/o"], "--world", "world.json"),
        (["evaluate", "--run", "pcpo={tmp}", "--out", "{tmp}/o"], "--world", "world.json"),
        (
            ["render", "--product", "P1", "--description", "x", "--out", "{tmp}/a.png"],
            "--world",
            "world.json",
        ),
        (["mllm", "build", "--out", "{tmp}/o"], "--world", "catalog.parquet"),
        (["mllm", "tasks", "--out", "{tmp}/o"], "--world", "catalog.parquet"),
        (
            ["pretrain", "--model", "{tmp}", "--tasks", "{tmp}", "--out", "{tmp}/o"],
            "--eval-world",
            "world.json",
        ),
        (
            ["pretrain", "--model", "{tmp}", "--tasks", "{tmp}", "--out", "{tmp}/o"],
            "--world",
            "catalog.parquet",
        ),
        (["pcpo", "--pm", "{tmp}", "--rm", "{tmp}", "--out", "{tmp}/o"], "--eval-world", "catalog.parquet"),
        (
            ["rm", "train", "--pairs", "{tmp}", "--model", "{tmp}", "--out", "{tmp}/o"],
            "--world",
            "catalog.parquet",
        ),
        (
            ["rm", "eval", "--rm", "{tmp}", "--pairs", "{tmp}", "--out", "{tmp}/o"],
            "--world",
            "catalog.parquet",
        ),
    ],
)
def test_every_command_checks_its_world_as_one_line(tmp_path, capsys, command, option, fragment):
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + [option, str(tmp_path)]
    with pytest.raises(SystemExit) as done:
        main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: Invalid value for '{option}'") and fragment in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "pcpo"], "write it as METHOD=DIR"),
        (["--run", "pcpo=a", "--run", "pcpo=b"], "given twice"),
    ],
)
def test_run_option_names_the_bad_value(args, message):
    from caig.cli.options import runs_option
    from caig.errors import UserError

    @click.command()
    @runs_option
    def _runs(runs: dict[str, Path]) -> None:
        click.echo(repr(runs))

    ok = CliRunner().invoke(_runs, ["--run", "pcpo=a", "--run", "dpo=b"])
    assert ok.exit_code == 0 and "'pcpo': PosixPath('a'), 'dpo': PosixPath('b')" in ok.output
    bad = CliRunner().invoke(_runs, args)
    assert isinstance(bad.exception, UserError) and message in str(bad.exception)


def test_processes_checking_one_out_directory_at_once_all_pass(tmp_path: Path):
    """The N processes of a ``--gpus N`` run check the same ``--out`` together: no check may remove another's
    probe (one shared probe name made a process fail with 'No such file or directory')."""
    import concurrent.futures

    out = tmp_path / "run"

    def check_many(_: int) -> int:
        for _ in range(300):
            writable_dir(out)
        return 300

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(check_many, range(4))) == 1200
    assert list(out.iterdir()) == []  # every probe removed
