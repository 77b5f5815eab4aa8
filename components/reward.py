"""Reward model (paper 3.3): train the pairwise RM from the pre-trained PM (a GPU step), then evaluate it."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from caig.orchestration.images import train_image


@dsl.component(base_image=train_image(), install_kfp_package=False)
def train_rm(profile: str, world: Input[Dataset], pairs: Input[Dataset], pm: Input[Model], rm: Output[Model]):
    """``caig.reward.curriculum.jobs.train_rm`` (``caig rm train``) on the train pairs, starting from the
    pre-trained PM."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.params import profile_from_parameter
    from caig.reward.curriculum.jobs import train_rm

    setup_logging()
    config = profile_from_parameter(profile)
    result = train_rm(
        Path(pm.path) / "model",
        Path(pairs.path),
        Path(world.path),
        config.reward,
        config.curriculum,
        Path(rm.path),
    )
    rm.metadata.update({k: result[k] for k in ("pairs", "steps", "train_loss", "method", "head")})


@dsl.component(base_image=train_image(), install_kfp_package=False)
def evaluate_rm(
    world: Input[Dataset],
    pairs: Input[Dataset],
    rm: Input[Model],
    evaluation: Output[Dataset],
    summary: Output[Metrics],
):
    """``caig.reward.evaluate.evaluate_rm`` on the test pairs: pair accuracy (both orders) vs the ceiling."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.reward.evaluate import evaluate_rm as evaluate

    setup_logging()
    result = evaluate(Path(rm.path), Path(pairs.path), Path(world.path), Path(evaluation.path))
    keys = ("pair_accuracy", "pair_accuracy_one_order", "swap_disagreement", "ceiling", "skill", "pairs")
    record_metrics(summary, "rm", {k: result[k] for k in keys if k in result})


@dsl.component(base_image=train_image(), install_kfp_package=False)
def rm_ablation(
    profile: str,
    world: Input[Dataset],
    pairs: Input[Dataset],
    base: Input[Model],
    pm: Input[Model],
    table: Output[Dataset],
    summary: Output[Metrics],
):
    """Table 1's analogue with ``caig.reward.curriculum.jobs.rm_ablation`` (``caig rm ablation``):
    ``reward.ablation_rows`` x ``reward.ablation_seeds``."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.reward.curriculum.jobs import rm_ablation

    setup_logging()
    config = profile_from_parameter(profile)
    pairs_dir, world_dir = Path(pairs.path), Path(world.path)
    result = rm_ablation(
        config.reward,
        config.curriculum,
        Path(base.path),
        Path(pm.path) / "model",
        pairs_dir,
        pairs_dir,
        world_dir,
        Path(table.path),
    )
    rows = {f"row{r['index']}": r["pair_accuracy_mean"] for r in result["rows"]}
    record_metrics(
        summary,
        "rm.ablation",
        {
            "pair_accuracy_mean": rows,
            "full_minus_base": result["full_minus_base"],
            "max_seed_spread": result["max_seed_spread"],
            "full_beats_base_beyond_spread": result["full_beats_base_beyond_spread"],
        },
    )


@dsl.component(base_image=train_image(), install_kfp_package=False)
def train_rm_trainjob(
    job: str, profile: str, world: Input[Dataset], pairs: Input[Dataset], pm: Input[Model], rm: Output[Model]
):
    """``train_rm`` on several GPUs or nodes: ``caig rm train`` as a Kubeflow Trainer TrainJob with
    ``caig.orchestration.trainjob.run_step`` (``job``: its settings, fixed at compile time)."""
    import json
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.trainjob import PROFILE_FILE, TrainJobSettings, run_step

    setup_logging()
    args = ["rm", "train", "--profile", PROFILE_FILE, "--pairs", pairs.path]
    args += ["--model", str(Path(pm.path) / "model"), "--world", world.path, "--out", rm.path]
    inputs = {"world": world.path, "pairs": pairs.path, "pm": pm.path}
    config = profile_from_parameter(profile).to_dict()
    run_step(TrainJobSettings.from_json(job), "train-rm", config, args, inputs, rm.path)
    result = json.loads((Path(rm.path) / "train.json").read_text())
    rm.metadata.update({k: result[k] for k in ("pairs", "steps", "train_loss", "method", "head")})
