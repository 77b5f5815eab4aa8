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


@dsl.component(base_image=train_image(), install_kfp_package=False)
def optimize_pm_trainjob(
    job: str,
    profile: str,
    method: str,
    world: Input[Dataset],
    tasks: Input[Dataset],
    pm: Input[Model],
    rm: Input[Model],
    run: Output[Model],
    summary: Output[Metrics],
):
    """``optimize_pm`` on several GPUs or nodes: ``caig pcpo`` as a Kubeflow Trainer TrainJob with
    ``caig.orchestration.trainjob.run_step`` (``job``: its settings, fixed at compile time)."""
    import json
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_pcpo_run
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.trainjob import PROFILE_FILE, TrainJobSettings, run_step

    setup_logging()
    args = ["pcpo", "--profile", PROFILE_FILE, "--method", method, "--pm", pm.path, "--rm", rm.path]
    args += ["--tasks", tasks.path, "--world", world.path, "--out", run.path]
    inputs = {"world": world.path, "tasks": tasks.path, "pm": pm.path, "rm": rm.path}
    config = profile_from_parameter(profile).to_dict()
    run_step(TrainJobSettings.from_json(job), method, config, args, inputs, run.path)
    result = json.loads((Path(run.path) / "pcpo.json").read_text())
    record_pcpo_run(run, summary, method, result, world.path)
