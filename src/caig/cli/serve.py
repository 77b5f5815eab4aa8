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
    """Serve a model with KServe's ModelServer: V1 and V2 protocols, health, readiness, /metrics."""


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
    from caig.serving.openapi import selector_paths
    from caig.serving.selector_models import selector_models
    from caig.serving.server import serve as run_server

    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir} is not a directory; pass a run directory such as runs/demo")
    factory = functools.partial(build_selector, profile.bandit, run_dir, profile.features)
    run_server(
        selector_models(factory, profile.bandit.retry_after_s),
        host=host or profile.bandit.host,
        port=port,
        max_body_bytes=profile.serving.max_body_bytes,
        retry_after_s=profile.bandit.retry_after_s,
        openapi_paths=selector_paths(),
    )


def _run_option(func):
    return click.option(
        "--run",
        "run_dir",
        type=click.Path(path_type=Path),
        required=True,
        help="Run directory (e.g. runs/demo, or KServe's /mnt/models) holding the model and world/.",
    )(func)


def _address_options(func):
    func = click.option(
        "--host", default=None, help="Address to bind; default serving.host of the profile (127.0.0.1)."
    )(func)
    return click.option(
        "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="HTTP port."
    )(func)


def _model_option(what: str):
    return click.option(
        "--model",
        "model_dir",
        default="",
        help=f"{what} directory or file:// URI instead of the run's (default serving.{what.lower()}_model).",
    )


def _check_run(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir} is not a directory; pass a run directory such as runs/demo")


@serve.command("pm")
@profile_options
@_run_option
@_model_option("PM")
@_address_options
def pm(profile: Profile, run_dir: Path, model_dir: str, port: int, host: str | None) -> None:
    """Serve caig-pm: background descriptions for a product (PM of RUN + its last PCPO round)."""
    from caig.serving.generative_models import PromptModel
    from caig.serving.pm_service import PromptService

    _serve_one(
        PromptModel(functools.partial(PromptService.from_run, profile, run_dir, model_dir)),
        profile,
        run_dir,
        host,
        port,
    )


@serve.command("rm")
@profile_options
@_run_option
@_model_option("RM")
@_address_options
def rm(profile: Profile, run_dir: Path, model_dir: str, port: int, host: str | None) -> None:
    """Serve caig-rm: pair comparison and K-way ranking of a product's ads with the RM of RUN."""
    from caig.serving.generative_models import RewardModelServer
    from caig.serving.rm_service import RewardService

    _serve_one(
        RewardModelServer(functools.partial(RewardService.from_run, profile, run_dir, model_dir)),
        profile,
        run_dir,
        host,
        port,
    )


@serve.command("render")
@profile_options
@_run_option
@_address_options
def render(profile: Profile, run_dir: Path, port: int, host: str | None) -> None:
    """Serve caig-render: product + description -> labelled ad PNG, with the profile's renderer."""
    from caig.serving.generative_models import RenderModel
    from caig.serving.render_service import RenderService

    _serve_one(
        RenderModel(functools.partial(RenderService.from_run, profile, run_dir)), profile, run_dir, host, port
    )


def _serve_one(model, profile: Profile, run_dir: Path, host: str | None, port: int) -> None:
    from caig.serving.openapi import generative_paths
    from caig.serving.server import serve as run_server

    _check_run(run_dir)
    model.load()
    run_server(
        [model],
        host=host or profile.serving.host,
        port=port,
        max_body_bytes=profile.serving.max_body_bytes,
        openapi_paths=generative_paths(model.name),
    )
