"""``--gpus N`` on the training commands: N > 1 runs the same command once per GPU under ``torchrun``.

The command is re-launched as it was parsed (every option it got, the same values), so each process runs the
same library function and the HF Trainer / DeepSpeed see the launcher's RANK / WORLD_SIZE. A launched process
(LOCAL_RANK set) never launches again, and leaves its process group when its command ends. Where no GPU is,
``CAIG_ALLOW_CPU_DISTRIBUTED=1`` allows N CPU processes (gloo): the tests run the multi-process path that way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from caig.distributed import ALLOW_CPU, check_gpus, launched, leave_process_group, relaunch


def gpus_option(
    check: Callable[[Any, int, dict[str, Any]], None],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``--gpus N``; ``check(profile, gpus, params)`` refuses what the stage cannot run on ``gpus``
    processes (its DeepSpeed config) before any process starts."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @click.option(
            "--gpus",
            type=int,
            default=1,
            show_default=True,
            help=f"Processes on this machine, one per GPU (torchrun); {ALLOW_CPU}=1 allows CPU processes.",
        )
        @functools.wraps(func)
        def wrapper(*args: Any, gpus: int, **kwargs: Any) -> Any:
            check_gpus(gpus)
            check(kwargs["profile"], gpus, kwargs)
            if launched():
                try:
                    return func(*args, **kwargs)
                finally:
                    leave_process_group()
            if gpus == 1:
                return func(*args, **kwargs)
            code = relaunch(gpus, command_argv(click.get_current_context()))
            if code:  # SystemExit, not click's Exit: click returns that code from main() and it was lost
                raise SystemExit(code)
            return None

        return wrapper

    return decorate


def command_argv(ctx: click.Context) -> list[str]:
    """The arguments that run ``ctx``'s command again with the values it parsed (``--gpus`` left out)."""
    names = []
    node: click.Context | None = ctx
    while node is not None and node.parent is not None:
        names.append(node.info_name or "")
        node = node.parent
    argv = list(reversed(names))
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if not isinstance(param, click.Option) or param.name == "gpus" or value is None:
            continue
        flag = param.opts[0]
        if param.is_flag:
            if value != param.default:
                argv.append(flag if value else (param.secondary_opts or [flag])[0])
            continue
        for item in value if param.multiple else [value]:
            argv += [flag, str(item.resolve() if isinstance(item, Path) else item)]
    return argv
