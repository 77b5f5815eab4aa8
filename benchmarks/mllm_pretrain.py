"""The tiny prompt model's e-commerce pre-training end to end on CPU, evaluated on a held-out world seed.

Builds (or reuses) a training world (seed 0) and a held-out world (seed 1) with the profile's world section,
then times ``caig mllm build`` (tiny), ``caig mllm tasks`` and ``caig pretrain --eval-world`` (products of the
held-out seed: never seen, different hidden CTR function), and also evaluates the result on the training
world's held-out products. Writes ``mllm_pretrain.json`` (figures, timings, sample descriptions).

    PYTHONPATH=src .venv/bin/python benchmarks/mllm_pretrain.py --work /tmp/mllm-bench --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from provenance import provenance

from caig.data.tasks import build_task_mix
from caig.mllm.build import build_tiny, load_model, save_model
from caig.mllm.evaluate_run import evaluation_set, run_evaluation
from caig.mllm.pretrain import run_pretrain
from caig.profile import load_profile
from caig.world.build import build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch directory (worlds, model, runs)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--profile", default="local")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=1)
    args = parser.parse_args()
    profile = load_profile(args.profile)
    timings: dict[str, float] = {}
    worlds = {}
    for name, seed in (("train", args.train_seed), ("eval", args.eval_seed)):
        directory = args.work / f"world-seed{seed}"
        if not (directory / "world.json").is_file():
            start = time.perf_counter()
            build_world(profile.world, directory, seed=seed, pair_rule=profile.data.pairs)
            timings[f"world_{name}_seconds"] = time.perf_counter() - start
        worlds[name] = directory
    start = time.perf_counter()
    model, processor = build_tiny(profile.mllm, worlds["train"])
    save_model(model, processor, args.work / "tiny")
    timings["build_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    mix = build_task_mix(
        worlds["train"], args.work / "tasks", profile.pretrain.tasks, profile.mllm.instruct_attributes
    )
    timings["tasks_seconds"] = time.perf_counter() - start
    run = args.work / "pretrain"
    if run.exists():
        raise SystemExit(f"{run} exists: remove it for a fresh timing (a rerun would resume)")
    start = time.perf_counter()
    report = run_pretrain(
        profile, args.work / "tiny", args.work / "tasks", run, eval_world_dir=worlds["eval"]
    )
    timings["pretrain_seconds"] = time.perf_counter() - start
    trained, processor = load_model(run / "model")
    torch.set_num_threads(profile.pretrain.cpu_threads or torch.get_num_threads())
    world, ids = evaluation_set(args.work / "tasks", worlds["train"], None, profile.pretrain.eval_products)
    same_world = run_evaluation(trained, processor, world, ids, profile)
    record = provenance()
    result = {
        **record,
        "benchmark": "mllm_pretrain",
        "profile": args.profile,
        "machine": {**record["machine"], "processor": platform.processor() or "cpu"},
        "cpu_threads": profile.pretrain.cpu_threads,
        "train_world_seed": args.train_seed,
        "eval_world_seed": args.eval_seed,
        "task_mix": mix["tasks"],
        "n_train_examples": mix["n_examples"]["train"],
        "global_step": report["global_step"],
        "train_seconds": report["train_seconds"],
        "loss_first": report["loss_curve"][0]["loss"],
        "loss_last": report["loss_curve"][-1]["loss"],
        "heldout_seed": {
            "before": report["before"],
            "after": report["after"],
            "match_rate_gain": report["match_rate_gain"],
        },
        "heldout_products_same_world": same_world,
        "timings": timings,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mllm_pretrain.json").write_text(json.dumps(result, indent=2))
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("heldout_seed", "heldout_products_same_world")},
            indent=2,
        )
    )
    for when in ("before", "after"):
        figures = {k: report[when][k] for k in ("category_accuracy", "colour_accuracy", "match_rate")}
        print(f"held-out seed, {when}: {figures}")


if __name__ == "__main__":
    main()
