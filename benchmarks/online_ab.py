"""Table 2's analogue at scale: a demo run's PCPO and DPO prompt models generate for a held-out world, and the
selector serves the logged creatives alone, plus PCPO's, plus DPO's, on the same simulated traffic for
several traffic seeds (EVALUATION ONLY: the held-out world's oracle plays the users).

The held-out world is built from the run's profile with another seed and more products than the demo's test,
so every product is new to both prompt models. Generation and the RM's ranking happen once; each traffic seed
draws new impressions and clicks for all three arm sets alike.

Writes ``--out`` and, beside it, ``NAME_seedS.png``: CTR by arm set and lift by category, first traffic seed.

    .venv/bin/python benchmarks/online_ab.py --run runs/demo --world-seed 1 --products 150 \\
        --seeds 0 1 2 --out benchmarks/results/online_ab.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import provenance

from caig.evaluate.online import prepare_arms, serve_arm_sets
from caig.evaluate.plots import plot_online
from caig.profile import load_profile
from caig.world.build import build_world


def step_output(run: Path, step: str, output: str) -> Path:
    return Path(json.loads((run / "steps.json").read_text())[step][output])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a `caig run --local` directory (make demo)")
    parser.add_argument(
        "--world-seed", type=int, default=1, help="the held-out world's seed (the run used 0)"
    )
    parser.add_argument("--world", type=Path, default=Path("runs/heldout-world"), help="where it is built")
    parser.add_argument("--products", type=int, default=150, help="products under test")
    parser.add_argument("--impressions", type=int, default=200_000, help="impressions per traffic seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="traffic seeds")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    overrides = [
        f"generate.online.products={args.products}",
        f"generate.online.n_impressions={args.impressions}",
    ]
    profile = load_profile(args.profile, overrides)
    if not (args.world / "world.json").is_file():
        build_world(profile.world, args.world, seed=args.world_seed, pair_rule=profile.data.pairs)
    runs = {m: step_output(args.run, f"optimize-pm{s}", "run") for m, s in (("pcpo", ""), ("dpo", "-2"))}
    pm, rm = step_output(args.run, "pretrain-pm", "pm"), step_output(args.run, "train-rm", "rm")
    started = time.perf_counter()
    products = sorted(pd.read_parquet(args.world / "catalog.parquet")["product_id"])
    arms = prepare_arms(profile, args.world, pm, rm, runs, products)
    prepared = time.perf_counter() - started
    by_seed = {}
    for seed in args.seeds:
        config = dataclasses.replace(profile.generate.online, seed=seed)
        by_seed[seed] = serve_arm_sets(arms, config, profile.orchestration.refresh.prior_strength)
    record = {
        **provenance(),
        "inputs": {
            "run": str(args.run),
            "world_seed": args.world_seed,
            "profile": args.profile,
            "overrides": overrides,
            "traffic_seeds": args.seeds,
        },  # fmt: skip
        "seconds": {
            "generate_and_rank": round(prepared, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "arms": arms.pool["source"].value_counts().to_dict(),
        "mean": {
            key: float(np.mean([r[key] for r in by_seed.values()]))
            for key in (
                "ctr_lift_pcpo",
                "ctr_lift_dpo",
                "generated_share",
                "generated_share_dpo",
                "match_rate_served",
            )
        },  # fmt: skip
        "ctr_by_arm_set_mean": {
            name: float(np.mean([r["ctr_by_arm_set"][name] for r in by_seed.values()]))
            for name in ("existing", "pcpo", "dpo")
        },
        "by_seed": by_seed,
    }
    args.out.write_text(json.dumps(record, indent=2))
    first = args.seeds[0]  # the figure of the first traffic seed, beside the JSON
    plot_online(by_seed[first], args.out.with_name(f"{args.out.stem}_seed{first}.png"))
    print(json.dumps({k: record[k] for k in ("seconds", "arms", "mean", "ctr_by_arm_set_mean")}, indent=2))


if __name__ == "__main__":
    main()
