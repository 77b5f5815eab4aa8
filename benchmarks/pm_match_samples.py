"""A demo run's pre-trained PM re-evaluated on its held-out products with many samples (EVALUATION ONLY).

The demo's own match rate rests on 120 descriptions (60 products x 2), about +-0.045 of sampling noise: too
coarse to compare two task mixes. This draws ``--samples`` descriptions per held-out product from the run's
pre-trained PM (the same prompts and temperature as ``caig pretrain``'s evaluation) and asks the world's oracle.

    .venv/bin/python benchmarks/pm_match_samples.py --run runs/demo --samples 32 --out results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
from provenance import provenance

from caig.mllm.build import load_model
from caig.mllm.evaluate import evaluate_pm
from caig.profile import load_profile
from caig.world.loaded import load_world


def step_output(run: Path, step: str, output: str) -> Path:
    return Path(json.loads((run / "steps.json").read_text())[step][output])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a `caig run --local` directory")
    parser.add_argument("--samples", type=int, default=32, help="descriptions per held-out product")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    profile = load_profile("local")
    model, processor = load_model(step_output(args.run, "pretrain-pm", "pm") / "model")
    world = load_world(step_output(args.run, "build-world", "world"))
    products = pd.read_parquet(step_output(args.run, "build-tasks", "tasks") / "products.parquet")
    heldout = products.loc[products["split"] == "heldout", "product_id"].tolist()
    started = time.perf_counter()
    result = evaluate_pm(
        model, processor, world, heldout, profile.mllm.instruct_attributes, samples_per_product=args.samples,
        seed=args.seed,
    )  # fmt: skip
    result.pop("samples")
    record = {
        **provenance(),
        "run": str(args.run),
        "samples_per_product": args.samples,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        **result,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
