"""``caig serve``: run a KServe model server (V1, V2, /metrics, health) for one of caig's models."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click

from caig.cli.options import profile_options
from caig.errors import UserError
from caig.profile import Profile

log = logging.getLogger("caig.serving")


@click.group()
def serve() -> None:
    """Serve a model with KServe's ModelServer (the PM, RM and render servers come later)."""


@serve.command("selector")
@profile_options
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Run directory holding world/ (catalog, creatives), features/rm_priors.parquet and bandit/.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="HTTP port.")
@click.option("--host", default=None, help="Address to bind; default bandit.host of the profile (127.0.0.1).")
def selector(profile: Profile, run_dir: Path, port: int, host: str | None) -> None:
    """Serve creative-selector and creative-feedback (Thompson sampling with RM priors) from RUN."""
    from caig.bandit.selector import build_selector
    from caig.serving.selector_models import selector_models
    from caig.serving.server import serve as run_server

    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir} is not a directory; pass a run directory such as runs/demo")
    factory = functools.partial(build_selector, profile.bandit, run_dir, profile.features)
    run_server(selector_models(factory), host=host or profile.bandit.host, port=port)
