"""``caig deploy``, ``caig promote`` and ``caig release``: roll models out to a cluster, sync pipelines to
Kubeflow, build and pin the images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from caig.cli.options import profile_options
from caig.deploy.targets import TARGETS
from caig.orchestration.images import RELEASE_IMAGES
from caig.profile import Profile

_output = click.option(
    "--output",
    "-o",
    type=click.Choice(["json", "yaml"]),
    default="json",
    show_default=True,
    help="Format of what is printed (the plan, and the result when applied).",
)
_dry_run = click.option(
    "--dry-run",
    is_flag=True,
    help="Print the exact objects and patches, and (pm, rm, render) check the cluster's Knative feature "
    "flags when it can be read; change nothing.",
)
_overlay = click.option(
    "--overlay", default=None, help="Overlay in manifests/overlays/ [default: deploy.overlay]."
)
_kubeconfig = click.option(
    "--kubeconfig", default=None, help="Kubeconfig file [default: $KUBECONFIG, in-cluster]."
)
_wait = click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait up to deploy.ready_timeout_s for the new revision to be ready.",
)


def _echo(result: dict[str, Any], output: str) -> None:
    click.echo(json.dumps(result, indent=2) if output == "json" else yaml.safe_dump(result, sort_keys=False))


@click.group()
def deploy() -> None:
    """Roll a model out without GitOps (KServe canary for pm/rm/render), or sync pipelines to KFP."""


def _target_command(name: str) -> click.Command:
    canary_help = "Send PERCENT of the traffic to the new model, the rest to the current one; omit for 100%."

    @profile_options
    @_overlay
    @click.option(
        "--model-uri", required=True, help="Run directory to serve, e.g. s3://caig-runs/2026-11-20."
    )
    @click.option(
        "--canary",
        type=int,
        default=None,
        metavar="PERCENT",
        help=canary_help if TARGETS[name].canary else "Not available for the selector.",
    )
    @_dry_run
    @_wait
    @_kubeconfig
    @_output
    def command(
        profile: Profile,
        overlay: str | None,
        model_uri: str,
        canary: int | None,
        dry_run: bool,
        wait: bool,
        kubeconfig: str | None,
        output: str,
    ) -> None:
        from caig.deploy.rollout import deploy as run_deploy

        result = run_deploy(profile.deploy, name, model_uri, canary, overlay, dry_run, wait, kubeconfig)
        _echo(result, output)

    what = {
        "pm": "the prompt model",
        "rm": "the reward model",
        "render": "the background generator",
        "selector": "the creative selector",
    }[name]
    command.__doc__ = f"Serve MODEL_URI as {what} ({TARGETS[name].kind} {TARGETS[name].object_name})."
    return click.command(name)(command)


for _name in TARGETS:
    deploy.add_command(_target_command(_name))


@deploy.command("pipelines")
@profile_options
@click.option("--host", default=None, help="KFP API [default: deploy.kfp_host].")
@click.option(
    "--dir",
    "pipelines_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Compiled pipelines [default: deploy.pipelines_dir].",
)
@_dry_run
@_output
def pipelines(
    profile: Profile, host: str | None, pipelines_dir: Path | None, dry_run: bool, output: str
) -> None:
    """Upload compiled pipelines as new versions and keep the recurring run of deploy.recurring_pipeline."""
    from caig.deploy.rollout import sync_pipelines

    _echo(sync_pipelines(profile.deploy, pipelines_dir, host, dry_run), output)


@click.command()
@profile_options
@click.argument("target", type=click.Choice([n for n, t in TARGETS.items() if t.canary]))
@_overlay
@click.option("--rollback", is_flag=True, help="Send all traffic back to the previous model instead.")
@_dry_run
@_wait
@_kubeconfig
@_output
def promote(
    profile: Profile,
    target: str,
    overlay: str | None,
    rollback: bool,
    dry_run: bool,
    wait: bool,
    kubeconfig: str | None,
    output: str,
) -> None:
    """Give TARGET's canary all the traffic (or, with --rollback, none)."""
    from caig.deploy.rollout import promote as run_promote

    _echo(run_promote(profile.deploy, target, overlay, rollback, dry_run, wait, kubeconfig), output)


@click.command()
@profile_options
@click.option(
    "--tool",
    type=click.Choice(["docker", "podman", "buildah"]),
    default=None,
    help="Container tool [default: the first of docker, podman, buildah on PATH].",
)
@click.option(
    "--image",
    "names",
    multiple=True,
    type=click.Choice(RELEASE_IMAGES),
    help="Image to build and pin (repeatable) [default: all].",
)
@_overlay
@click.option("--dry-run", is_flag=True, help="Print the build and push commands; run and write nothing.")
@_output
def release(
    profile: Profile,
    tool: str | None,
    names: tuple[str, ...],
    overlay: str | None,
    dry_run: bool,
    output: str,
) -> None:
    """Build and push the images ($CAIG_IMAGE_REGISTRY/<name>:$CAIG_IMAGE_TAG) and pin their digests in the
    overlay's kustomization.yaml (its images: block only)."""
    from caig.deploy.overlay import overlay_dir
    from caig.deploy.release import release as run_release
    from caig.orchestration.source import checkout_root

    config = profile.deploy
    kustomization = overlay_dir(config.manifests_dir, overlay or config.overlay) / "kustomization.yaml"
    _echo(run_release(checkout_root(), kustomization, tool, names or None, dry_run), output)
