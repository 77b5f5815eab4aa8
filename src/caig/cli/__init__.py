"""The ``caig`` command line: a thin door into the library. ``caig --help`` lists the commands."""

from __future__ import annotations

import os
import sys

import click

from caig import __version__
from caig.errors import UserError
from caig.logs import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="caig")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """caig: CTR-driven ad image generation (CAIG) on Kubeflow, KServe and Feast."""
    setup_logging(verbose)


def _register() -> None:
    # Each command group lives in its own module; importing registers nothing globally.
    from caig.cli import (
        bandit,
        client,
        data,
        deploy,
        evaluate,
        features,
        generate,
        mllm,
        pcpo,
        pipeline,
        render,
        review,
        rm,
        run,
        serve,
        world,
    )
    from caig.cli import pretrain as pretrain_cli

    for command in (
        world.world,
        run.run,
        run.smoke_production,
        data.data,
        mllm.mllm,
        bandit.bandit,
        features.features,
        render.render,
        pipeline.compile_command,
        pipeline.submit_command,
        serve.serve,
        client.client,
        deploy.deploy,
        deploy.promote,
        deploy.release,
        pcpo.pcpo,
        generate.generate,
        evaluate.evaluate,
        review.review,
        rm.rm,
        pretrain_cli.pretrain,
    ):
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (CAIG_DEBUG=1 for tracebacks)."""
    try:
        cli.main(args=argv, prog_name="caig", standalone_mode=False)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        if os.environ.get("CAIG_DEBUG"):
            raise
        hint = " (see --help)" if isinstance(err, click.UsageError) else ""
        click.echo(f"error: {err.format_message()}{hint}", err=True)
        sys.exit(2)
    except UserError as err:
        if os.environ.get("CAIG_DEBUG"):
            raise
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
