"""``caig render``: render one ad (procedural or diffusers backend); ``caig render build-tiny``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from caig.cli.options import profile_options, world_option, writable_dir
from caig.profile import Profile

_RENDER_OPTIONS = ("backend", "world_dir", "product", "description", "seed", "out")


@click.group(invoke_without_command=True)
@profile_options
@click.option(
    "--backend",
    type=click.Choice(["procedural", "diffusers"]),
    default=None,
    help="Renderer; overrides render.backend of the profile.",
)
@world_option(oracle=True, help_suffix="It holds the product.")
@click.option("--product", help="Product id, e.g. P00000.")
@click.option("--description", help="Background description, e.g. 'on white marble, soft daylight'.")
@click.option("--seed", type=int, default=None, help="Seed (default: render.seed); same seed, same image.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="PNG file to write; FILE.json beside it gets backend, model, seed, box and timing.",
)
@click.pass_context
def render(ctx: click.Context, profile: Profile, **options: object) -> None:
    """Render one ad of a world's product to --out PNG (labelled AI-generated) and a JSON sidecar."""
    given = [name for name in _RENDER_OPTIONS if options[name] is not None]
    if ctx.invoked_subcommand is not None:
        if given:
            raise click.UsageError(
                f"--{given[0].replace('_dir', '')} belongs to `caig render` itself, not to "
                f"`caig render {ctx.invoked_subcommand}`"
            )
        return
    missing = [
        f"--{n.replace('_dir', '')}"
        for n in ("world_dir", "product", "description", "out")
        if options[n] is None
    ]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    from caig.render.to_file import render_to_file

    config = profile.render
    if options["backend"] is not None:
        config.backend = options["backend"]  # type: ignore[assignment]
    seed = config.seed if options["seed"] is None else options["seed"]
    summary = render_to_file(
        config,
        options["world_dir"],
        options["product"],
        options["description"],  # type: ignore[arg-type]
        seed,
        options["out"],
    )  # type: ignore[arg-type]
    click.echo(json.dumps(summary, indent=2))


@render.command("build-tiny")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to save the tiny SD + ControlNet inpainting pipeline to.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
def build_tiny(out: Path, seed: int) -> None:
    """Build a tiny random-weight SD + ControlNet pipeline from configs (tests, demo); no download."""
    from caig.render.diffusers_models import build_tiny as build

    click.echo(json.dumps(build(writable_dir(out), seed=seed), indent=2))
