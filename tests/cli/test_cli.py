"""The CLI door: --help everywhere, and user errors as one line with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from caig.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def caig(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CAIG_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "caig", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_every_command_has_help():
    from click.testing import CliRunner

    runner = CliRunner()
    paths = list(_commands(cli))
    assert ("world", "build") in paths
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["world", "build", "--profile", "nosuch", "--out", "x"], "unknown profile 'nosuch'"),
        (["world", "build", "--set", "world.n_products=lots", "--out", "x"], "world.n_products"),
        (["world", "build", "--set", "world.bogus=1", "--out", "x"], "unknown key 'world.bogus'"),
        (["world", "build", "--out", "/proc/caig-cannot-write"], "cannot write there"),
        (["world", "build"], "Missing option '--out'"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, fragment):
    result = caig(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr
