"""Options shared by the CLI commands: the profile and its ``--set`` overrides, and ``--world``."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from caig.errors import UserError
from caig.profile import Profile, load_profile


def profile_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--profile`` and repeatable ``--set key=value``; pass the loaded ``Profile`` as ``profile``."""

    @click.option(
        "--profile",
        "profile_name",
        default="local",
        show_default=True,
        help="Profile name in configs/ (local, production) or a path to a YAML profile.",
    )
    @click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a profile value, e.g. --set world.n_products=50 (repeatable).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, profile_name: str, overrides: tuple[str, ...], **kwargs: Any) -> Any:
        profile: Profile = load_profile(profile_name, overrides)
        return func(*args, profile=profile, **kwargs)

    return wrapper


_DATA_FILES = ("catalog.parquet", "creatives.parquet")
_LAYOUT = "a built world (`caig world build --out DIR`) or imported data in the world's layout"


def world_option(
    flag: str = "--world",
    dest: str = "world_dir",
    *,
    required: bool = False,
    oracle: bool = False,
    help_suffix: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A data-directory option (``--world`` by default), checked before the command runs.

    The directory must hold catalog.parquet and creatives.parquet (their images lie beside them); with
    ``oracle`` also world.json, for commands that load the world's oracle (``caig.world.load_world``), which
    only a built world has. A bad directory is a ``click.BadParameter`` that names the fix.
    """
    needs = (*_DATA_FILES, "world.json") if oracle else _DATA_FILES
    what = "a built world (`caig world build --out DIR`)" if oracle else _LAYOUT
    text = f"Data directory with {', '.join(needs)} and the images: {what}."

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_dir():
            state = "is not a directory" if value.exists() else "does not exist"
            raise click.BadParameter(f"{value} {state}; pass {what}", ctx=ctx, param=param)
        missing = [name for name in needs if not (value / name).is_file()]
        if missing:
            raise click.BadParameter(
                f"{value} holds no {', '.join(missing)}; pass {what}", ctx=ctx, param=param
            )
        return value

    return click.option(
        flag,
        dest,
        type=click.Path(path_type=Path),
        required=required,
        default=None,
        callback=check,
        metavar="DIR",
        help=f"{text} {help_suffix}".strip(),
    )


def writable_dir(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and check that files can be written there. The probe file has a name of its
    own per call: the processes of a ``--gpus N`` run check the same directory at the same moment."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".caig-write-test-"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise UserError(
            f"{option} {path}: cannot write there ({reason}); choose a writable directory"
        ) from None
    return path


def runs_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--run METHOD=DIR`` (repeatable): the `caig pcpo --out` directories to read, by method, passed to the
    command as ``runs: dict[str, Path]`` in the order given."""

    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Path]:
        runs: dict[str, Path] = {}
        for value in values:
            method, sep, path = value.partition("=")
            if not sep or not method or not path:
                raise UserError(f"--run {value!r}: write it as METHOD=DIR, e.g. --run pcpo=runs/demo/pcpo")
            if method in runs:
                raise UserError(f"--run {value!r}: method {method!r} given twice; name each run differently")
            runs[method] = Path(path)
        return runs

    return click.option(
        "--run",
        "runs",
        multiple=True,
        required=True,
        metavar="METHOD=DIR",
        callback=parse,
        help="A `caig pcpo --out` directory, named by its method (repeatable).",
    )(func)
