"""Regret of TS with RM priors vs TS without, over several traffic seeds and priors tables (issue 10's goal).

Each ``--priors NAME=PATH`` is an ``rm_priors.parquet`` (``caig rm priors``, with or without
``--calibration``); for every traffic seed, ``caig.bandit.simulate.simulate`` serves the same simulated
traffic to TS with those priors, TS with them flattened within each product, TS without priors and
MABWiser's TS. Writes ``NAME.json`` with every run and, per table, the mean and spread of the regret ratio
RM priors / no priors over seeds, and ``NAME.png`` (cumulative regret of the first seed).

    .venv/bin/python benchmarks/bandit_rm_priors.py --world WORLD_SEED1 --seeds 0,1,2 \
        --priors default=P/rm_priors.parquet --priors calibrated=PC/rm_priors.parquet --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import provenance

from caig.bandit.simulate import plot_regret, simulate
from caig.logs import setup_logging
from caig.profile import load_profile

RATIOS = (
    "regret_ratio_rm_prior_vs_no_prior",
    "regret_ratio_product_prior_vs_no_prior",
    "regret_ratio_mabwiser_vs_no_prior",
)


def _table(spec: str) -> tuple[str, Path]:
    name, _, path = spec.partition("=")
    if not path:
        raise SystemExit(f"--priors {spec}: expected NAME=PATH to an rm_priors.parquet")
    return name, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--priors", action="append", required=True, help="NAME=PATH (repeatable)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="bandit_rm_priors")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    setup_logging()
    profile = load_profile(args.profile, args.overrides)
    tables = dict(_table(spec) for spec in args.priors)
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.time()
    runs, aggregate = [], {}
    for name, path in tables.items():
        priors = pd.read_parquet(path)
        strength = float((priors["prior_alpha"] + priors["prior_beta"]).median())
        ratios = {k: [] for k in RATIOS}
        for seed in seeds:
            result = simulate(args.world, replace(profile.bandit.simulate, seed=seed), priors)
            summary = result["summary"]
            runs.append(
                {"priors": name, "seed": seed, **{k: summary[k] for k in (*RATIOS, "cumulative_regret")}}
            )
            for k in RATIOS:
                ratios[k].append(summary[k])
            if seed == seeds[0]:
                args.out.mkdir(parents=True, exist_ok=True)
                plot_regret(
                    result["curves"],
                    args.out / f"{args.name}_{name}.png",
                    f"{name} priors (strength {strength:.0f}); seed {seed}",
                )
        aggregate[name] = {"priors": str(path), "median_prior_strength": strength}
        for k, values in ratios.items():
            aggregate[name][k] = {
                "mean": float(np.mean(values)),
                "spread": float(np.ptp(values)),
                "runs": values,
            }
    result = {
        **provenance(),
        "world": args.world.name,
        "world_seed": json.loads((args.world / "world.json").read_text())["seed"],
        "profile": args.profile,
        "overrides": args.overrides,
        "seeds": seeds,
        "n_impressions": profile.bandit.simulate.n_impressions,
        "goal": "regret_ratio_rm_prior_vs_no_prior mean <= 0.7",
        "tables": aggregate,
        "runs": runs,
        "seconds": round(time.time() - started, 1),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(aggregate, indent=2))


if __name__ == "__main__":
    main()
