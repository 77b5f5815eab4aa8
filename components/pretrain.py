"""Pre-training (paper 3.2): the task mix, the base prompt model, and the multi-task SFT (a GPU step)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from caig.orchestration.images import step_image, train_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def build_tasks(
    profile: str,
    world: Input[Dataset],
    stats: Input[Dataset],
    tasks: Output[Dataset],
    summary: Output[Metrics],
):
    """The pre-training task mix with ``caig.data.tasks.build_task_mix``, high-CTR from the ingested stats."""
    from pathlib import Path

    from caig.data.tasks import build_task_mix
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    config = profile_from_parameter(profile)
    result = build_task_mix(
        Path(world.path),
        Path(tasks.path),
        config.pretrain.tasks,
        config.mllm.instruct_attributes,
        stats_path=Path(stats.path) / "creative_stats.parquet",
    )
    tasks.metadata.update(result["n_examples"])
    record_metrics(summary, "tasks", {k: result[k] for k in ("n_products", "n_examples", "tasks")})


@dsl.component(base_image=train_image(), install_kfp_package=False)  # builds or loads the MLLM: torch
def build_base_model(profile: str, world: Input[Dataset], model: Output[Model]):
    """The base prompt model with ``caig.mllm.build.build_or_load``: the tiny preset built from config
    (tokenizer trained on the world's text), or LLaVA-v1.6-7B loaded from ``mllm.model_path``."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.mllm.build import build_or_load, save_model
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    config = profile_from_parameter(profile).mllm
    built, processor = build_or_load(config, Path(world.path))
    save_model(built, processor, Path(model.path))
    model.metadata.update({"preset": config.preset, "parameters": sum(p.numel() for p in built.parameters())})


@dsl.component(base_image=train_image(), install_kfp_package=False)
def pretrain_pm(
    profile: str,
    world: Input[Dataset],
    base: Input[Model],
    tasks: Input[Dataset],
    pm: Output[Model],
    summary: Output[Metrics],
):
    """E-commerce knowledge pre-training with ``caig.mllm.pretrain.run_pretrain``; the PM in ``pm/model``."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.mllm.pretrain import headline, run_pretrain
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    report = run_pretrain(
        profile_from_parameter(profile), Path(base.path), Path(tasks.path), Path(pm.path), Path(world.path)
    )
    pm.metadata.update({"method": report["method"], "global_step": report["global_step"]})
    record_metrics(summary, "pretrain", headline(report))


@dsl.component(base_image=train_image(), install_kfp_package=False)  # headline(): the same metrics as above
def pretrain_pm_trainjob(
    job: str,
    profile: str,
    world: Input[Dataset],
    base: Input[Model],
    tasks: Input[Dataset],
    pm: Output[Model],
    summary: Output[Metrics],
):
    """``pretrain_pm`` on several GPUs or nodes: ``caig pretrain`` as a Kubeflow Trainer TrainJob with
    ``caig.orchestration.trainjob.run_step`` (``job``: its settings, fixed at compile time)."""
    import json
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.mllm.pretrain import headline
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.trainjob import PROFILE_FILE, TrainJobSettings, run_step

    setup_logging()
    args = ["pretrain", "--profile", PROFILE_FILE, "--model", base.path, "--tasks", tasks.path]
    args += ["--out", pm.path, "--world", world.path]
    inputs = {"world": world.path, "base": base.path, "tasks": tasks.path}
    config = profile_from_parameter(profile).to_dict()
    run_step(TrainJobSettings.from_json(job), "pretrain", config, args, inputs, pm.path)
    report = json.loads((Path(pm.path) / "pretrain.json").read_text())
    pm.metadata.update({"method": report["method"], "global_step": report["global_step"]})
    record_metrics(summary, "pretrain", headline(report))
