"""Preference optimization of the PM (paper 3.4, Algorithm 1): PCPO, or the DPO-only baseline (GPU steps)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from caig.orchestration.images import train_image


@dsl.component(base_image=train_image(), install_kfp_package=False)
def optimize_pm(
    profile: str,
    method: str,
    world: Input[Dataset],
    tasks: Input[Dataset],
    pm: Input[Model],
    rm: Input[Model],
    run: Output[Model],
    summary: Output[Metrics],
):
    """``caig.pcpo.loop.run_pcpo`` with ``method`` (pcpo or dpo): ``run/round-NN/`` adapters and held-out
    descriptions, ``run/pcpo.json``. ``world`` is an input so that the task mix's images are on hand."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_pcpo_run
    from caig.orchestration.params import profile_from_parameter
    from caig.pcpo.loop import run_pcpo

    setup_logging()
    result = run_pcpo(
        profile_from_parameter(profile),
        Path(pm.path),
        Path(rm.path),
        Path(run.path),
        method=method,
        tasks_dir=Path(tasks.path),
    )
    record_pcpo_run(run, summary, method, result, world.path)
