"""Options shared by every CLI command: the profile and its ``--set`` overrides."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from caig.errors import UserError
from caig.profile import Profile, load_profile


def profile_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--profile`` and repeatable ``--set key=value``; pass the loaded ``Profile`` as ``profile``."""

    @click.option("--profile", "profile_name", default="local", show_default=True,
                  help="Profile name in configs/ (local, production) or a path to a YAML profile.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override a profile value, e.g. --set world.n_products=50 (repeatable).")
    @functools.wraps(func)
    def wrapper(*args: Any, profile_name: str, overrides: tuple[str, ...], **kwargs: Any) -> Any:
        profile: Profile = load_profile(profile_name, overrides)
        return func(*args, profile=profile, **kwargs)

    return wrapper


def writable_dir(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".caig-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise UserError(f"{option} {path}: cannot write there ({reason}); choose a writable directory") from None
    return path
