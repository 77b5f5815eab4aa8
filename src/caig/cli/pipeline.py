"""``caig compile`` and ``caig submit``: the KFP pipelines (``pipelines/``) for a Kubeflow cluster.

``caig run --local`` runs the same pipeline on this machine with the KFP local runner
(``caig.orchestration.source.run_local_pipeline``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from caig.cli.options import writable_dir
from caig.errors import UserError
from caig.orchestration.source import ensure_importable
from caig.profile import Profile, load_profile

PIPELINE_NAMES = ("caig-training", "caig-refresh", "caig-generate")


def cluster_profile_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--profile`` (default ``production``: what a cluster runs) and ``--set``; passes ``profile``."""

    @click.option(
        "--profile",
        "profile_name",
        default="production",
        show_default=True,
        help="Profile name in configs/ or a path to a YAML profile; its values become the pipeline's "
        "default 'profile' parameter and its orchestration section places the steps.",
    )
    @click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a profile value, e.g. --set pcpo.rounds=3 (repeatable).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, profile_name: str, overrides: tuple[str, ...], **kwargs: Any) -> Any:
        return func(*args, profile=load_profile(profile_name, overrides), **kwargs)

    return wrapper


_PIPELINE = click.option(
    "--pipeline",
    "names",
    multiple=True,
    type=click.Choice(PIPELINE_NAMES),
    help="Pipeline(s) to compile (repeatable; default: all).",
)


@click.command("compile")
@cluster_profile_options
@_PIPELINE
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for <pipeline>.yaml [default: pipelines/compiled of the checkout].",
)
def compile_command(profile: Profile, names: tuple[str, ...], out: Path | None) -> None:
    """Compile the pipelines to the YAML you upload in the Kubeflow UI.

    Images come from $CAIG_IMAGE_REGISTRY/<image>:$CAIG_IMAGE_TAG (default ghcr.io/caig, the package version).
    """
    root = ensure_importable()
    from pipelines.compile import compile_all

    out_dir = writable_dir(out or root / "pipelines" / "compiled")
    for path in compile_all(profile, out_dir, list(names) or None):
        click.echo(f"wrote {path}")


@click.command("submit")
@cluster_profile_options
@click.option("--host", required=True, help="Kubeflow Pipelines API URL, e.g. http://localhost:8080.")
@click.option(
    "--pipeline", "name", type=click.Choice(PIPELINE_NAMES), default="caig-training", show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True, help="World seed parameter of the run.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A pipeline parameter of the run, e.g. --param rounds=3, --param data=/mnt/data/current (repeatable; "
    "caig-refresh and caig-generate default to the latest registered run).",
)
@click.option("--experiment", default="caig", show_default=True, help="KFP experiment to file the run under.")
@click.option("--run-name", default=None, help="Name of the run [default: KFP's].")
@click.option("--namespace", default=None, help="Kubeflow profile namespace (multi-user installs).")
def submit_command(
    profile: Profile,
    host: str,
    name: str,
    seed: int,
    params: tuple[str, ...],
    experiment: str,
    run_name: str | None,
    namespace: str | None,
) -> None:
    """Start a pipeline run on a Kubeflow Pipelines server and print the run's URL."""
    ensure_importable()
    from pipelines.submit import submit

    url = submit(
        profile,
        host,
        name,
        seed=seed,
        arguments=parse_params(params),
        experiment=experiment,
        run_name=run_name,
        namespace=namespace,
    )
    click.echo(url)


def parse_params(params: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs to pipeline arguments, values parsed as YAML (``3`` an int, ``true`` a bool)."""
    arguments: dict[str, Any] = {}
    for item in params:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad --param '{item}'; write it as NAME=VALUE, e.g. --param rounds=3")
        value = yaml.safe_load(text) if text.strip() else ""
        arguments[key.strip()] = value if isinstance(value, bool | int | float) else text
    return arguments
