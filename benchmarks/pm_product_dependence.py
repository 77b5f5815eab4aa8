"""How much the prompt model's descriptions depend on the product: PCPO's term has nothing to keep otherwise.

For held-out products of ``--world``, the PM writes one description each (its PM template, temperature 1.0);
then the summed log-probability of that SAME description is taken under the true product and under PCPO's two
mismatched inputs (``caig.pcpo.mismatch``: 75% of the image's patches blacked out; another category's text).
The drops ``log p(y | x) - log p(y | x_mis)`` are what PCPO's term (Eq. 11) rewards; near zero, the term has
no contrast to work with. Also the world's match rate of the descriptions (oracle, evaluation only).
Writes ``pm_product_dependence.json``.

    .venv/bin/python benchmarks/pm_product_dependence.py --pm PRETRAIN_DIR --world WORLD_SEED1 \
        --out benchmarks/results --name pm_product_dependence [--products 120]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from provenance import provenance

from caig.logs import setup_logging
from caig.mllm.build import load_model, model_dir_of
from caig.mllm.templates import PM_TEMPLATES
from caig.pcpo.logprobs import response_logprobs
from caig.pcpo.loop import heldout_descriptions, load_products
from caig.pcpo.mismatch import textual_mismatch, visual_mismatch
from caig.pcpo.rollout import question
from caig.profile import load_profile
from caig.world.loaded import load_world


def _summary(drops: np.ndarray) -> dict:
    return {
        "mean_drop_nats": float(drops.mean()),
        "median_drop_nats": float(np.median(drops)),
        "share_positive": float((drops > 0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pm", type=Path, required=True, help="`caig pretrain` output directory")
    parser.add_argument("--world", type=Path, required=True, help="held-out world (another seed)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="pm_product_dependence")
    parser.add_argument("--products", type=int, default=120)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    setup_logging()
    profile = load_profile(args.profile, args.overrides)
    config = profile.pcpo
    started = time.time()
    _, products = load_products(args.pm, eval_world_dir=args.world)
    products = products[: args.products]
    attributes = list(profile.mllm.instruct_attributes)
    torch.manual_seed(config.seed)
    model, processor = load_model(model_dir_of(args.pm), dtype="float32")
    model.eval()
    described = heldout_descriptions(model, processor, products, config, attributes)
    answers = described["description"].tolist()
    rng = np.random.default_rng(config.seed)
    questions = [question(p, i % len(PM_TEMPLATES), attributes) for i, p in enumerate(products)]
    inputs = {
        "true": (products, questions),
        "visual": (
            [visual_mismatch(p, rng, config.mask_ratio, config.mask_patch) for p in products],
            questions,
        ),
    }
    swapped = [textual_mismatch(p, products, rng) for p in products]
    inputs["textual"] = (
        swapped,
        [question(p, i % len(PM_TEMPLATES), attributes) for i, p in enumerate(swapped)],
    )
    logp = {
        name: response_logprobs(
            model, processor, [p.image for p in ps], qs, answers, config.batch_size, config.max_length
        ).numpy()
        for name, (ps, qs) in inputs.items()
    }
    world = load_world(args.world)
    verdicts = [world.judge_match(p.product_id, d) for p, d in zip(products, answers, strict=True)]
    result = {
        **provenance(),
        "pm": args.pm.name,
        "world": args.world.name,
        "world_seed": json.loads((args.world / "world.json").read_text())["seed"],
        "profile": args.profile,
        "products": len(products),
        "mean_logprob_true": float(logp["true"].mean()),
        "visual_mismatch": _summary(logp["true"] - logp["visual"]),
        "textual_mismatch": _summary(logp["true"] - logp["textual"]),
        "match_rate": float(np.mean([v == "match" for v in verdicts])),
        "seconds": round(time.time() - started, 1),
        "overrides": args.overrides,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
