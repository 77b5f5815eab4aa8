"""How well trained RMs' CTR heads follow the description teacher's utility of single ads, on the same ads.

``train.json``'s ``held_out_utility_corr`` is measured on the held-out products' ads borrowed backgrounds
included, so two RMs trained with different ``teacher.borrowed_per_product`` are measured on different ads.
This scores every ``--rm`` again on one set: the held-out products of the RM's own seed (the split the stage
used), the teacher refitted on ``--train-world``'s logged pairs (logs and descriptions, never the oracle),
and reports ``caig.reward.curriculum.ad_utility.held_out_fit``: all held-out ads with ``--borrowed`` borrowed
backgrounds per product, their own creatives only, and within each product; and how the teacher's utility of
the world's own creatives splits into words alone, category x words and colour x words
(``DescriptionTeacher.utility_parts``). Writes ``NAME.json``.

    .venv/bin/python benchmarks/rm_ad_utility_fit.py --rm RM_A RM_B --train-world TRAIN_WORLD \
        --out benchmarks/results --name rm_ad_utility_fit [--shared SHARED] [--borrowed 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import provenance

from caig.data.event_pairs import pairs_from_events
from caig.logs import setup_logging
from caig.reward.curriculum.ad_utility import ad_utility_source, held_out_fit
from caig.reward.curriculum.stages import teacher_and_ads, trained_curriculum
from caig.reward.curriculum.teacher import DescriptionTeacher
from caig.reward.data import attach_sources
from caig.reward.io import load_reward_model
from caig.typed_config import as_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rm", type=Path, nargs="+", required=True, help="RM directories (caig rm train --out)"
    )
    parser.add_argument("--train-world", type=Path, required=True, help="the world the RMs were trained on")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="rm_ad_utility_fit", help="result file name (without .json)")
    parser.add_argument("--borrowed", type=int, default=8, help="borrowed backgrounds per product in the set")
    parser.add_argument(
        "--shared", type=Path, help="borrowed renders kept by earlier runs (--shared of rm_skill)"
    )
    args = parser.parse_args()
    setup_logging()
    results, teacher_utility, fitted = [], None, {}
    with tempfile.TemporaryDirectory() as scratch:
        for rm_dir in args.rm:
            model, processor, config = load_reward_model(rm_dir)
            trained = trained_curriculum(rm_dir)
            curriculum = replace(
                trained, teacher=replace(trained.teacher, borrowed_per_product=args.borrowed)
            )
            # RMs of one seed and pair rule share the training pairs, the fitted teacher and its ads
            key = json.dumps([as_dict(config.train_pairs), as_dict(curriculum.teacher), config.seed])
            if key not in fitted:
                pairs, _ = pairs_from_events(args.train_world, config.train_pairs)
                source = attach_sources(pairs, args.train_world)
                fitted[key] = (
                    source,
                    *teacher_and_ads(
                        source, config, curriculum, args.train_world, Path(scratch), args.shared
                    ),
                )
            source, teacher, ads = fitted[key]
            held_out_share = curriculum.ad_utility.held_out_share
            ads_source = ad_utility_source(teacher, ads, source.products, held_out_share, config.seed)
            fit = held_out_fit(model, ads_source, processor, config)
            teacher_utility = teacher_utility or utility_variance(teacher, ads[~ads["borrowed"]])
            train = json.loads((rm_dir / "train.json").read_text())
            results.append(
                {
                    "rm": f"{rm_dir.parent.name}/{rm_dir.name}",
                    "start_model": Path(train["model"]).parent.name,
                    "seed": config.seed,
                    "ad_utility": as_dict(trained.ad_utility),
                    "trained_with_borrowed_per_product": trained.teacher.borrowed_per_product,
                    "held_out_ads": int(ads_source.ads["held_out"].sum()),
                    **{k: round(v, 4) for k, v in fit.items()},
                    "stages": [
                        {k: v for k, v in s.items() if k not in ("loss_curve", "after_stage")}
                        | {"final_loss": final_loss(s)}
                        for s in train["stages"]
                    ],
                }
            )
            print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {**provenance(), "train_world": json.loads((args.train_world / "world.json").read_text())["seed"],
              "borrowed_per_product": args.borrowed, "teacher_utility": teacher_utility,
              "runs": results}  # fmt: skip
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))


def final_loss(stage: dict) -> float | None:
    """Mean training loss of a stage's last 50 logged steps (its fit at the end, not over the whole stage)."""
    losses = [e["loss"] for e in stage.get("loss_curve", [])][-50:]
    return round(float(np.mean(losses)), 4) if losses else None


def utility_variance(teacher: DescriptionTeacher, creatives: pd.DataFrame) -> dict[str, float]:
    """Where the teacher's utility of the world's own creatives varies: each part's share of its variance
    (``DescriptionTeacher.utility_parts``; with their covariances they add up to 1) and the share left
    within products (what pairs of one product compare)."""
    parts = teacher.utility_parts(creatives["description"], creatives)
    utility = sum(parts.values())
    within = utility - pd.Series(utility).groupby(creatives["product_id"].to_numpy()).transform("mean")
    return {
        **{f"variance_share_{name.replace(' ', '_')}": round(float(np.var(x) / np.var(utility)), 3)
           for name, x in parts.items()},
        "variance_share_within_product": round(float(np.var(within) / np.var(utility)), 3),
        "creatives": len(creatives),
    }  # fmt: skip


if __name__ == "__main__":
    main()
