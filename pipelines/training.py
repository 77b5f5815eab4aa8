"""``caig-training``: data -> features -> pre-training -> reward model -> PCPO and DPO -> evaluate -> register.

::

    as-of, configure -> world -> ingest -> validate -> rm-pairs ---------------> train-rm -> eval-rm
                                                    \\-> features                    |    \\-> rm-ablation (optional)
                                                    \\-> task-mix -> pretrain ------+
                           world -> base-model -------------/          \\-> pcpo (PCPO) --\\
                                                                        \\-> dpo (baseline) +-> evaluate -> register
                                                                                           +-> online-ab  -> report

PCPO and the DPO baseline depend on the same inputs and not on each other: a cluster runs them side by
side. ``as-of`` fixes the run's "now" once (empty ``as_of``: the run's creation time). The features step
writes the Feast store on the features volume; register publishes the run on the runs volume the model
servers load from, as ``caig-register``. No ``from __future__ import annotations`` here: KFP reads the
pipeline's type annotations at runtime.
"""

from typing import NamedTuple

from components.configure import configure_run
from components.evaluate import evaluate_runs
from components.features import materialize_features
from components.generate import online_ab_test
from components.ingest import ingest_events
from components.pairs import build_pairs
from components.pcpo import optimize_pm, optimize_pm_trainjob
from components.pretrain import build_base_model, build_tasks, pretrain_pm, pretrain_pm_trainjob
from components.register import register_models
from components.report import run_report
from components.reward import evaluate_rm, rm_ablation, train_rm, train_rm_trainjob
from components.validate import validate_stats
from components.world import build_world
from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.images import train_image
from caig.orchestration.params import default_as_of, profile_parameter
from caig.orchestration.trainjob import TrainJobSettings
from caig.profile import Profile
from pipelines.placement import (
    deterministic,
    flaky,
    launches_trainjob,
    on_cpu,
    on_gpu,
    retried,
    run_now,
    with_data,
    with_features,
    with_register_identity,
    with_runs,
)

NAME = "caig-training"


class Outputs(NamedTuple):
    """What a run leaves for the user: the report page, its Markdown summary, the flat metrics."""

    report: HTML
    summary: Markdown
    metrics: Metrics


def parameters(profile: Profile) -> dict:
    """Default parameter values for ``profile``: the profile itself, "now" (the simulated world's end, or
    empty: the run's start), and the per-run knobs as the profile sets them (so a run without overrides is
    the profile's run)."""
    return {
        "profile": profile_parameter(profile),
        "as_of": default_as_of(profile),
        "rounds": profile.pcpo.rounds,
        "beta": profile.pcpo.beta,
        "base_model": profile.mllm.model_path,
    }


def training_pipeline(config: OrchestrationConfig):
    """The training pipeline, placed on the cluster as ``config`` says."""

    def gpu(task, name: str):
        """A GPU step: placed on the GPU pool, cached, retried (preemptible nodes; the steps resume)."""
        return retried(deterministic(on_gpu(task.set_display_name(name), config), config), config)

    def cpu(task, name: str):
        """A CPU step: sized, cached."""
        return deterministic(on_cpu(task, name, config), config)

    # nodes * GPUs per step > 1: pre-training, the RM, PCPO and DPO run as Kubeflow Trainer TrainJobs
    job = TrainJobSettings.from_config(config, train_image()).to_json() if config.gpu.total > 1 else ""

    def train(in_pod, as_trainjob, name: str, **inputs):
        """A training step: in its own pod on one GPU, or a CPU step launching a TrainJob of ``job``."""
        if not job:
            return gpu(in_pod(**inputs), name)
        return retried(
            deterministic(launches_trainjob(as_trainjob(job=job, **inputs), name, config), config), config
        )

    @dsl.pipeline(
        name=NAME, description="CAIG training: data, pre-training, reward model, PCPO vs DPO, report."
    )
    def caig_training(
        profile: str,
        seed: int = 0,
        as_of: str = "",
        data: str = "",
        base_model: str = "",
        rounds: int = 5,
        beta: float = 0.5,
        rm_ablation_table: bool = False,
    ) -> Outputs:
        """Args: profile: the whole profile as JSON (caig.orchestration.params); seed: the simulated
        world's seed; as_of: "now" for the data checks (ISO-8601; empty: the run's start); data: a data
        directory in the world's layout (empty: build the simulated world, where the profile allows it);
        base_model: a LLaVA-NeXT directory to start from (empty: the profile's mllm preset); rounds, beta:
        PCPO and DPO rounds and DPO beta; rm_ablation_table: also train Table 1's RM ablation."""
        run = cpu(
            configure_run(profile=profile, rounds=rounds, beta=beta, base_model=base_model), "configure"
        )
        cfg = run.output
        now = run_now(as_of, config).output
        world = cpu(with_data(build_world(profile=cfg, seed=seed, data=data), config), "world")
        source = world.outputs["world"]
        ingest = flaky(on_cpu(ingest_events(profile=cfg, world=source, as_of=now), "ingest", config), config)
        stats = ingest.outputs["stats"]
        validate = cpu(validate_stats(profile=cfg, stats=stats, as_of=now), "validate")
        pairs = cpu(build_pairs(profile=cfg, world=source, stats=stats).after(validate), "rm-pairs")
        features = materialize_features(profile=cfg, world=source, stats=stats, as_of=now).after(validate)
        # writes the Feast store (on the features volume) and the online store: never cached
        flaky(with_features(on_cpu(features, "features", config), config), config)
        tasks = cpu(build_tasks(profile=cfg, world=source, stats=stats).after(validate), "task-mix")
        base = cpu(build_base_model(profile=cfg, world=source), "base-model")
        pretrain = train(
            pretrain_pm,
            pretrain_pm_trainjob,
            "pretrain",
            profile=cfg,
            world=source,
            base=base.outputs["model"],
            tasks=tasks.outputs["tasks"],
        )
        pm = pretrain.outputs["pm"]
        pairs_out = pairs.outputs["pairs"]
        rm_task = train(
            train_rm, train_rm_trainjob, "train-rm", profile=cfg, world=source, pairs=pairs_out, pm=pm
        )
        rm = rm_task.outputs["rm"]
        rm_eval = gpu(evaluate_rm(world=source, pairs=pairs.outputs["pairs"], rm=rm), "eval-rm")
        with dsl.If(rm_ablation_table == True):  # noqa: E712 (a KFP condition, not a Python comparison)
            ablation = rm_ablation(
                profile=cfg, world=source, pairs=pairs.outputs["pairs"], base=base.outputs["model"], pm=pm
            )
            gpu(ablation, "rm-ablation")
        optimized = {}
        for method in ("pcpo", "dpo"):
            optimized[method] = train(
                optimize_pm,
                optimize_pm_trainjob,
                method,
                profile=cfg,
                method=method,
                world=source,
                tasks=tasks.outputs["tasks"],
                pm=pm,
                rm=rm,
            )
        evaluation = gpu(
            evaluate_runs(
                profile=cfg,
                world=source,
                rm=rm,
                pcpo=optimized["pcpo"].outputs["run"],
                dpo=optimized["dpo"].outputs["run"],
            ),
            "evaluate",
        )
        online = gpu(
            online_ab_test(
                profile=cfg,
                world=source,
                pm=pm,
                rm=rm,
                pcpo=optimized["pcpo"].outputs["run"],
                dpo=optimized["dpo"].outputs["run"],
            ),
            "online-ab",
        )
        register = register_models(
            profile=cfg,
            as_of=now,
            job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pm=optimized["pcpo"].outputs["run"],
            base=pm,
            rm=rm,
        )
        register = with_register_identity(
            with_runs(on_cpu(register.after(evaluation), "register", config), config), config
        )
        flaky(register, config)  # publishes the run and patches the InferenceServices: never cached
        report = run_report(
            world=source,
            evaluation=evaluation.outputs["evaluation"],
            online=online.outputs["online"],
            pcpo=optimized["pcpo"].outputs["run"],
            dpo=optimized["dpo"].outputs["run"],
            world_summary=world.outputs["summary"],
            data_summary=ingest.outputs["summary"],
            validation_summary=validate.outputs["summary"],
            pairs_summary=pairs.outputs["summary"],
            features_summary=features.outputs["summary"],
            tasks_summary=tasks.outputs["summary"],
            pretrain_summary=pretrain.outputs["summary"],
            rm_summary=rm_eval.outputs["summary"],
            pcpo_summary=optimized["pcpo"].outputs["summary"],
            dpo_summary=optimized["dpo"].outputs["summary"],
            evaluation_summary=evaluation.outputs["summary"],
            online_summary=online.outputs["summary"],
            register_summary=register.outputs["summary"],
        )
        cpu(report, "report")
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_training
