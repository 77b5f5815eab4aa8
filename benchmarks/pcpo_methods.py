"""PCPO vs DPO vs the two ablations on a held-out world seed (issue 7's must-show; paper Figure 4).

For each training seed and method: `run_pcpo` from the same pre-trained PM and frozen RM, held-out
descriptions written for the products of ``--eval-world`` after every round, then `run_evaluation` judges
them with that world's oracle (evaluation only). Writes ``pcpo_methods.json`` with, per method, the mean and
spread over seeds of the final match rate, the true-CTR uplift over the pre-trained PM and the match rate by
round, plus every run's figures; and ``pcpo_methods.png`` (match rate by round, mean over seeds).

    PYTHONPATH=src .venv/bin/python benchmarks/pcpo_methods.py --pm PRETRAIN_DIR --rm RM_DIR \
        --eval-world WORLD_SEED1 --work /tmp/pcpo-methods --out benchmarks/results [--set pcpo.rounds=5] \
        [--jobs 4]

Each run also records, per round, how the RM's choices sit with the training world's oracle: the share of
decisive pairs (one description matches, the other not) where the RM chose the matching one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
import transformers
from provenance import provenance

from caig.data.event_pairs import pairs_from_events
from caig.evaluate.plots import plot_by_round
from caig.evaluate.run import choices_by_round, load_round_pairs, run_evaluation
from caig.logs import setup_logging
from caig.pcpo.config import METHODS
from caig.pcpo.loop import run_pcpo
from caig.profile import load_profile
from caig.reward.curriculum.ads import creatives_with_products
from caig.reward.curriculum.teacher import fit_teacher
from caig.world.loaded import load_world

# the oracle's view of the RM's choices per round (caig.evaluate.metrics.judge_choices)
CHOICE_KEYS = ("rm_prefers_match", "chosen_match_share", "chosen_eye_catching_share")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pm", type=Path, required=True)
    parser.add_argument("--rm", type=Path, help="the frozen RM that judges the pairs (the paper's judge)")
    parser.add_argument(
        "--judge-world",
        type=Path,
        help="instead of --rm: the description teacher fitted on this world's logged pairs judges (a diagnostic)",
    )
    parser.add_argument("--eval-world", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--name", default="pcpo_methods", help="result file names (without .json / .png)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs (seed x method) in parallel, one process each"
    )
    args = parser.parse_args()
    if (args.rm is None) == (args.judge_world is None):
        parser.error("give one judge: --rm RM_DIR or --judge-world WORLD")
    setup_logging()
    profile = load_profile(args.profile, args.overrides)
    judge = _description_teacher(args.judge_world, profile) if args.judge_world else None
    runs: dict[str, list[dict]] = {}
    started = time.perf_counter()
    methods = args.methods.split(",")
    pairs = [(int(seed), method) for seed in args.seeds.split(",") for method in methods]
    job = partial(_one_run, profile, args.pm, args.rm, judge, args.eval_world, args.work)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for (_, method), record in zip(pairs, pool.map(job, pairs)):
            runs.setdefault(method, []).append(record)
    summary = {m: _aggregate(r) for m, r in runs.items()}
    result = {
        **provenance(),
        "benchmark": "pcpo_methods",
        # names only: a result file in the repository holds no path of the machine that made it
        "pm": args.pm.name,
        "rm": args.rm.name if args.rm else None,
        "judge": f"description teacher fitted on {args.judge_world.name}" if args.judge_world else "rm",
        "eval_world": args.eval_world.name,
        "eval_world_seed": json.loads((args.eval_world / "world.json").read_text())["seed"],
        "judge_world_seed": (
            json.loads((args.judge_world / "world.json").read_text())["seed"] if args.judge_world else None
        ),
        "profile": args.profile,
        "overrides": args.overrides,
        "seeds": args.seeds,
        "rounds": profile.pcpo.rounds,
        "seconds": round(time.perf_counter() - started),
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "methods": summary,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot_by_round(
        {m: s["match_rate_by_round_mean"] for m, s in summary.items()},
        "match rate (mean of seeds)",
        "Match rate by round, held-out world",
        args.out / f"{args.name}.png",
    )
    print(
        json.dumps(
            {m: {k: v for k, v in s.items() if not k.endswith("by_round_mean")} for m, s in summary.items()},
            indent=2,
        )
    )


def _one_run(
    profile, pm: Path, rm: Path | None, judge, eval_world: Path, work: Path, seed_method: tuple[int, str]
) -> dict:
    """One method from one training seed, judged on the held-out world; the RM's choices judged on the
    training world (the products the rounds sampled). Evaluation only: the oracle reads finished runs."""
    seed, method = seed_method
    torch.set_num_threads(1)
    setup_logging()
    seeded = replace(profile, pcpo=replace(profile.pcpo, seed=seed))
    folder = work / f"seed{seed}" / method
    run_pcpo(seeded, pm, rm, folder, method=method, eval_world_dir=eval_world, judge=judge)
    metrics = run_evaluation(
        seeded, eval_world, {method: folder}, None, work / f"seed{seed}" / f"eval-{method}"
    )
    choices = choices_by_round(load_world(_training_world_dir(pm)), load_round_pairs(folder)) or []
    return {
        "seed": seed,
        **{k.split(".", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{method}.")},
        **{f"{key}_by_round": [c[key] for c in choices] for key in CHOICE_KEYS},
    }


def _description_teacher(world: Path, profile):
    """The description teacher (``caig.reward.curriculum.teacher``) fitted on ``world``'s logged pairs by the RM's
    training rule: a judge of the descriptions learned from the logs, as the RM's curriculum fits it."""
    pairs, _ = pairs_from_events(world, profile.reward.train_pairs)
    return fit_teacher(pairs, creatives_with_products(world), profile.curriculum.teacher)


def _training_world_dir(pm: Path) -> Path:
    tasks = Path(json.loads((pm / "pretrain.json").read_text())["tasks"])
    return Path(json.loads((tasks / "tasks.json").read_text())["world_dir"])


def _aggregate(runs: list[dict]) -> dict:
    out = {}
    for key in ("match_rate", "ctr_uplift", "eye_catching_share"):
        values = np.array([r[key] for r in runs], dtype=float)
        out[f"{key}_mean"], out[f"{key}_spread"] = float(values.mean()), float(values.max() - values.min())
    out["match_rate_by_round_mean"] = np.mean([r["match_rate_by_round"] for r in runs], axis=0).tolist()
    for key in CHOICE_KEYS:
        values = [r[f"{key}_by_round"] for r in runs if r.get(f"{key}_by_round")]
        if values:
            out[f"{key}_by_round_mean"] = np.nanmean(values, axis=0).tolist()
    return out


if __name__ == "__main__":
    main()
