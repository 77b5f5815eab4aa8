"""Which RM recipe makes ``make demo``'s reward model compare the two ads, within the demo's budget?

The demo's RM (local profile) answered "left" whatever the order: swap disagreement 0.96-1.00 on its held-out
pairs. This script trains RM recipes outside the pipeline from a finished demo run's own world, pairs and
pre-trained PM (``steps.json`` of ``caig run --local``), exactly as its ``train-rm`` step does (``caig rm
train --profile local --set ...``), and scores each both ways round as its ``eval-rm`` step does:

- ``demo_test``: the run's test pairs (its held-out products, the paper's test rule): what the demo's
  ``rm.*`` metrics report;
- ``heldout_world``: with ``--heldout-world DIR``, the test pairs of another world seed of the same market
  (built there from the profile if absent; ``--heldout-seed``, default 1).

Each attempt is ``--attempt NAME [KEY=VALUE ...]`` (``--set`` overrides of the local profile). ``--jobs N``
trains N attempts side by side (each on one thread, as the profile sets); ``--reuse`` scores an RM already
trained in ``--work/NAME`` with the same settings instead of training it again (to score the RM a ``make demo``
trained, link its ``train-rm/rm`` directory as ``--work/NAME``). Writes ``--out/NAME.json``.

    .venv/bin/python benchmarks/demo_rm_recipe.py --run runs/demo --work runs/demo-rm-recipe \\
        --heldout-world runs/heldout-world --out benchmarks/results \\
        --attempt local --attempt warmup curriculum.side_warmup.enabled=true
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from provenance import provenance

from caig.data.event_pairs import pairs_from_events
from caig.logs import setup_logging
from caig.profile import load_profile
from caig.reward.curriculum.stages import trained_curriculum
from caig.reward.data import PairSource, attach_sources, load_pair_source
from caig.reward.evaluate import score_and_measure, world_ceiling
from caig.reward.io import load_reward_config, load_reward_model
from caig.reward.scoring import RewardScorer
from caig.typed_config import as_dict
from caig.world.build import build_world

GOAL = {"swap_disagreement_max": 0.2}
ATTEMPT_FILE = "attempt.json"  # how an attempt's RM was trained, beside it
KEYS = ("pair_accuracy", "pair_accuracy_one_order", "swap_disagreement", "ceiling", "skill", "pairs")


def step_output(run: Path, step: str, output: str) -> Path:
    return Path(json.loads((run / "steps.json").read_text())[step][output])


def parse_attempts(raw: list[list[str]]) -> dict[str, list[str]]:
    attempts: dict[str, list[str]] = {}
    for name, *overrides in raw:
        if name in attempts or "=" in name or "/" in name:
            raise SystemExit(f"--attempt {name}: the first word is the attempt's name, unique, no '=' or '/'")
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise SystemExit(f"--attempt {name}: overrides are KEY=VALUE, got {bad}")
        attempts[name] = overrides
    return attempts


def train(
    name: str, overrides: list[str], inputs: dict[str, Path], work: Path, profile: str, reuse: bool
) -> dict[str, Any]:
    """``caig rm train`` of one attempt (a process of its own): its summary, and how it was trained
    (``attempt.json`` beside the RM: commit, wall seconds, the machine's load while it trained)."""
    rm_dir = work / name
    settings = load_profile(profile, overrides)
    if reuse and (rm_dir / "train.json").is_file():
        trained = (as_dict(load_reward_config(rm_dir)), as_dict(trained_curriculum(rm_dir)))
        if trained != (as_dict(settings.reward), as_dict(settings.curriculum)):
            raise SystemExit(f"--reuse: {rm_dir} was trained with other settings; remove it or rename")
        attempt = rm_dir / ATTEMPT_FILE
        how = json.loads(attempt.read_text()) if attempt.is_file() else {"commit": None}
        return {"reused": True, **how, **json.loads((rm_dir / "train.json").read_text())}
    argv = [sys.executable, "-m", "caig", "rm", "train", "--profile", profile]
    argv += [a for o in overrides for a in ("--set", o)]
    argv += ["--pairs", str(inputs["pairs"]), "--model", str(inputs["model"])]
    argv += ["--world", str(inputs["world"]), "--out", str(rm_dir)]
    rm_dir.parent.mkdir(parents=True, exist_ok=True)
    load_start, started = os.getloadavg()[0], time.perf_counter()
    with open(work / f"{name}.log", "w") as log:
        subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT)
    how = {
        "commit": provenance()["commit"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": {"start": load_start, "end": os.getloadavg()[0]},
    }
    (rm_dir / ATTEMPT_FILE).write_text(json.dumps(how, indent=2))
    return {"reused": False, **how, **json.loads((rm_dir / "train.json").read_text())}


def final_ce(stage: dict[str, Any]) -> float | None:
    ce = [e["ce"] for e in stage.get("loss_curve", []) if "ce" in e]
    return round(ce[-1], 4) if ce else None


def measure(rm_dir: Path, sets: dict[str, tuple[PairSource, float | None]]) -> dict[str, Any]:
    scorer = RewardScorer(*load_reward_model(rm_dir))
    result = {}
    for set_name, (source, ceiling) in sets.items():
        metrics, _ = score_and_measure(scorer, source, ceiling)
        result[set_name] = {
            k: (round(metrics[k], 4) if isinstance(metrics[k], float) else metrics[k]) for k in KEYS
        }
        result[set_name]["meets_goal"] = metrics["swap_disagreement"] <= GOAL["swap_disagreement_max"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `caig run --local` directory")
    parser.add_argument("--work", type=Path, required=True, help="where the attempts' RMs are trained")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="demo_rm_recipe", help="result file name (without .json)")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--heldout-world", type=Path, help="also score another world seed's test pairs")
    parser.add_argument("--heldout-seed", type=int, default=1, help="its seed, where it is built here")
    parser.add_argument("--attempt", nargs="+", action="append", required=True, metavar="NAME [KEY=VALUE]")
    parser.add_argument(
        "--base",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides in front of every attempt's: the settings the attempts start from (e.g. the demo's "
        "RM before a recipe change), so that they do not follow later edits of the profile",
    )
    parser.add_argument("--jobs", type=int, default=1, help="attempts trained side by side")
    parser.add_argument("--reuse", action="store_true", help="score RMs already trained in --work")
    args = parser.parse_args()
    setup_logging()
    attempts = parse_attempts(args.attempt)
    profile = load_profile(args.profile, [])
    inputs = {
        "world": step_output(args.run, "build-world", "world"),
        "pairs": step_output(args.run, "build-pairs", "pairs"),
        "model": step_output(args.run, "pretrain-pm", "pm") / "model",
    }
    test = load_pair_source(inputs["pairs"], inputs["world"], split="test")
    sets = {"demo_test": (test, world_ceiling(inputs["world"], test.pairs))}
    if args.heldout_world:
        if not (args.heldout_world / "world.json").is_file():
            build_world(
                profile.world, args.heldout_world, seed=args.heldout_seed, pair_rule=profile.data.pairs
            )
        pairs, _ = pairs_from_events(args.heldout_world, profile.data.pairs)
        held = attach_sources(pairs, args.heldout_world)
        sets["heldout_world"] = (held, world_ceiling(args.heldout_world, held.pairs))
    args.work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            name: pool.submit(
                train, name, [*args.base, *overrides], inputs, args.work, args.profile, args.reuse
            )
            for name, overrides in attempts.items()
        }
        trained = {name: future.result() for name, future in futures.items()}
    runs = []
    for name, overrides in attempts.items():
        summary = trained[name]
        stages = [
            {
                "stage": s["stage"],
                "pairs": s["pairs"],
                "steps": s["steps"],
                "seconds": s["seconds"],
                "learning_rate": s["learning_rate"],
                "final_ce": final_ce(s),
            }
            for s in summary["stages"]
        ]
        runs.append(
            {
                "name": name,
                "overrides": overrides,
                "train_seconds": summary["seconds"],
                "reused": summary["reused"],
                "trained": {
                    k: summary[k] for k in ("commit", "wall_seconds", "load_average", "note") if k in summary
                },
                "stages": stages,
                **measure(args.work / name, sets),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    world = json.loads((inputs["world"] / "world.json").read_text())
    result = {
        **provenance(),
        "question": "Which RM recipe makes make demo's RM compare the two ads (swap disagreement <= 0.2 on "
        "held-out pairs) within the demo's budget?",
        "goal": GOAL,
        "inputs": {
            "run": str(args.run),
            "profile": args.profile,
            "world_seed": world["seed"],
            "train_pairs": len(load_pair_source(inputs["pairs"], inputs["world"], split="train").pairs),
            "demo_test_pairs": len(test.pairs),
            "heldout_world_seed": (
                json.loads((args.heldout_world / "world.json").read_text())["seed"]
                if args.heldout_world
                else None
            ),
            "base": args.base,
            "jobs": args.jobs,
        },
        "attempts": runs,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "load_average_end": os.getloadavg()[0],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
