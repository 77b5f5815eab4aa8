"""The online A/B of generated creatives, simulated: the paper's Table 2 analogue (evaluation only).

The paper A/B tests generated creatives on live traffic (Table 2: CTR +7.4% with PCPO, +5.7% with DPO over
the existing creatives). Here the world's users play the traffic: the prompt models of a PCPO run and of a
DPO run each generate creatives for held-out products (``caig.generate``: write K, render, rank with the RM,
keep M), and the selector's Thompson sampling (``caig.bandit.policy``, as ``caig bandit simulate`` runs it)
serves three arm sets on the same impressions and the same click draws:

- ``existing``: the logged creatives only;
- ``pcpo``: those plus the PCPO-generated ones;
- ``dpo``: those plus the DPO-generated ones.

Every arm's prior comes from one RM ranking of all of a product's creatives, logged and generated together
(the refresh's Bradley-Terry priors, anchored on the product's logged CTR), so generated and logged creatives
compete on one footing. Generation and priors read logs, images and text only; the oracle's true CTR draws
the clicks and its match judge labels what was served, and nothing else reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from caig.bandit.arena import BetaTS, draw_traffic, layout_arena, read_logged_events, run_policy
from caig.bandit.config import SimulateConfig
from caig.errors import UserError
from caig.evaluate.plots import plot_online
from caig.evaluate.rounds import load_rounds
from caig.generate.config import OnlineTestConfig
from caig.generate.run import Generation, Generator
from caig.orchestration.rm_priors import grouped_prior_means
from caig.profile import Profile

log = logging.getLogger("caig.evaluate")

ARM_SETS = ("existing", "pcpo", "dpo")


def held_out_products(runs: Mapping[str, str | Path]) -> list[str]:
    """The products every run held out of its preference rounds (``round-00/heldout.parquet``), sorted."""
    sets = [set(load_rounds(Path(run))[0]["product_id"]) for run in runs.values()]
    shared = sorted(set.intersection(*sets)) if sets else []
    if not shared:
        raise UserError("the runs share no held-out product; pass runs made on the same products")
    return shared


@dataclass
class Arms:
    """Every arm of the products under test, with its prior mean from one joint RM ranking, and the logs."""

    world: Any  # the loaded world: its oracle plays the users
    products: list[str]
    pool: pd.DataFrame  # creative_id, product_id, description, image_path, source, prior_mean
    events: pd.DataFrame  # logged product_id, clicked: the traffic's product mix


def prepare_arms(
    profile: Profile,
    world_dir: str | Path,
    pm_dir: str | Path,
    rm_dir: str | Path,
    runs: Mapping[str, str | Path],
    products: Sequence[str] | None = None,
) -> Arms:
    """Generate with each run's PM for the products under test and rank every arm of each product with the
    RM, once: the serving of any number of traffic seeds reuses it.

    Args:
        runs: ``{"pcpo": DIR, "dpo": DIR}``, `caig pcpo` outputs (their last round's adapter is used).
        products: the products under test; default: the runs' held-out products. At most the first
            ``generate.online.products`` are used. Pass every product of a world the runs never saw.
    """
    from caig.world.loaded import load_world

    config, world_dir = profile.generate.online, Path(world_dir)
    missing = [name for name in ("pcpo", "dpo") if name not in runs]
    if missing:
        raise UserError(f"the online test needs a {missing[0]} run (runs: {', '.join(runs) or 'none'})")
    world = load_world(world_dir)  # ORACLE: clicks and match labels only
    chosen = list(products) if products is not None else held_out_products(runs)
    chosen = chosen[: config.products] if config.products else chosen
    generators = {
        name: Generator(profile, world_dir, pm_dir, rm_dir, adapter=runs[name]) for name in ("pcpo", "dpo")
    }
    generated = {name: generator.generate(chosen) for name, generator in generators.items()}
    pool = _pool(world.creatives, generated, chosen)
    pool["prior_mean"] = _joint_prior_means(generators["pcpo"], world_dir, world.catalog, pool)
    events = read_logged_events(world_dir, ("product_id", "clicked"))
    return Arms(world, chosen, pool.drop(columns=["image"]), events)


def online_test(
    profile: Profile,
    world_dir: str | Path,
    pm_dir: str | Path,
    rm_dir: str | Path,
    runs: Mapping[str, str | Path],
    out: str | Path,
    products: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Generate with each run's PM, serve the three arm sets on the same simulated traffic
    (``generate.online``); write ``out/online.json``, ``out/arms.parquet`` and the figure
    ``out/online_ab.png``; return the summary."""
    arms = prepare_arms(profile, world_dir, pm_dir, rm_dir, runs, products)
    result = serve_arm_sets(arms, profile.generate.online, profile.orchestration.refresh.prior_strength)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arms.pool.to_parquet(out / "arms.parquet", index=False)
    (out / "online.json").write_text(json.dumps(result, indent=2))
    plot_online(result, out / "online_ab.png")
    log.info("online A/B over %d products: CTR %s", len(arms.products), result["ctr_by_arm_set"])
    return result


def _pool(creatives: pd.DataFrame, generated: Mapping[str, Generation], products: list[str]) -> pd.DataFrame:
    """Every arm of the products under test: ``creative_id, product_id, description, source, image``."""
    logged = creatives[creatives["product_id"].isin(products)]
    frames = [logged[["creative_id", "product_id", "description", "image_path"]].assign(source="existing")]
    for name, result in generated.items():
        rows = pd.DataFrame(result.rows, columns=["creative_id", "product_id", "description"])
        frames.append(rows.assign(image_path="", source=name))
    pool = pd.concat(frames, ignore_index=True)
    pool["image"] = [generated[s].images.get(c) if s in generated else None for c, s in
                     zip(pool["creative_id"], pool["source"])]  # fmt: skip
    return pool.drop_duplicates("creative_id").reset_index(drop=True)


def _joint_prior_means(
    generator: Generator, world_dir: Path, catalog: pd.DataFrame, pool: pd.DataFrame
) -> np.ndarray:
    """Each arm's prior CTR mean from one RM ranking of all its product's arms (logged and generated), with
    the generator's RM and its products' logged CTRs (the anchors its own priors used), as the refresh does."""
    from caig.reward.rank import rank

    products = catalog.set_index("product_id")
    scores = np.zeros(len(pool))
    for pid, arms in tqdm(
        pool.groupby("product_id", sort=False), desc="rm ranking", unit="product", leave=False
    ):
        row = {"product_id": pid, **products.loc[pid].to_dict()}
        if "tags" in row:
            row["tags"] = list(row["tags"])
        images = [
            image if image is not None else Image.open(world_dir / path).convert("RGB")
            for image, path in zip(arms["image"], arms["image_path"])
        ]
        scores[arms.index] = rank(generator.scorer, row, [i.convert("RGB") for i in images]).scores
    ctr = pool["product_id"].map(generator.ctr).fillna(generator.overall_ctr).to_numpy(float)
    return grouped_prior_means(scores, ctr, pool["product_id"].to_numpy(), generator.priors.prior_temperature)


def serve_arm_sets(arms: Arms, config: OnlineTestConfig, prior_strength: float) -> dict[str, Any]:
    """Thompson sampling over each arm set on one draw of traffic and clicks (``config.seed``); CTR, lift,
    generated share and the match rate of what was served, overall and per category."""
    world, pool, products, events = arms.world, arms.pool, arms.products, arms.events
    simulate = SimulateConfig(
        n_impressions=config.n_impressions, batch_size=config.batch_size, seed=config.seed
    )
    segments = world.segments
    weights = events.groupby("product_id").size().reindex(products, fill_value=0).to_numpy(float)
    true_ctr = {cid: [world.true_ctr(p, d, s) for s in segments] for cid, p, d in
                zip(pool["creative_id"], pool["product_id"], pool["description"])}  # fmt: skip
    matched = {cid: world.judge_match(p, d) == "match" for cid, p, d in
               zip(pool["creative_id"], pool["product_id"], pool["description"])}  # fmt: skip
    category = world.catalog.set_index("product_id")["category"].reindex(products).to_numpy()
    served: dict[str, dict[str, Any]] = {}
    ctx = u = None
    for name in ARM_SETS:
        subset = pool[pool["source"].isin({"existing", name})]
        arena = layout_arena(
            subset, products, segments, lambda pid, row: true_ctr[row.creative_id], weights, name
        )
        if ctx is None:  # the same impressions and click draws for every arm set
            ctx, u = draw_traffic(arena, world.config.segment_mix, simulate)
        mean = subset.set_index("creative_id")["prior_mean"]
        prior = np.where(
            arena.valid, mean.reindex(arena.creative_ids.ravel()).to_numpy().reshape(arena.valid.shape), 0.5
        )
        alpha = np.where(arena.valid, prior_strength * prior, 1e-9)
        beta = np.where(arena.valid, prior_strength * (1 - prior), 1e9)
        run = run_policy(BetaTS(alpha, beta, len(segments), simulate.seed), arena, ctx, u, simulate, name)
        ids = arena.creative_ids[ctx // len(segments), run["arms"]]
        source = subset.set_index("creative_id")["source"]
        served[name] = _served_figures(run["clicked"], ids, source, matched, category[ctx // len(segments)])
    return _summary(served, len(products), simulate)


def _served_figures(
    clicked: np.ndarray, ids: np.ndarray, source: pd.Series, matched: dict, category: np.ndarray
) -> dict[str, Any]:
    frame = pd.DataFrame({"clicked": clicked, "category": category,
                          "generated": source.reindex(ids).to_numpy() != "existing",
                          "matched": [matched[c] for c in ids]})  # fmt: skip
    return {
        "impressions": len(frame),
        "clicks": int(frame["clicked"].sum()),
        "ctr": float(frame["clicked"].mean()),
        "generated_share": float(frame["generated"].mean()),
        "match_rate_served": float(frame["matched"].mean()),
        "ctr_by_category": frame.groupby("category")["clicked"].mean().to_dict(),
    }


def _summary(served: dict[str, dict[str, Any]], n_products: int, simulate: SimulateConfig) -> dict[str, Any]:
    base = served["existing"]
    lift = {
        name: served[name]["ctr"] / base["ctr"] - 1.0 if base["ctr"] else None for name in ("pcpo", "dpo")
    }
    by_category = {
        cat: {
            name: served[name]["ctr_by_category"][cat] / ctr - 1.0 if ctr else None
            for name in ("pcpo", "dpo")
        }
        for cat, ctr in base["ctr_by_category"].items()
    }
    return {
        "ctr": served["pcpo"]["ctr"],  # what caig deploys: the logged creatives plus PCPO's
        "ctr_by_arm_set": {name: s["ctr"] for name, s in served.items()},
        "ctr_lift_pcpo": lift["pcpo"],
        "ctr_lift_dpo": lift["dpo"],
        "ctr_lift_by_category": by_category,
        "generated_share": served["pcpo"]["generated_share"],
        "generated_share_dpo": served["dpo"]["generated_share"],
        "match_rate_served": served["pcpo"]["match_rate_served"],
        "match_rate_served_by_arm_set": {name: s["match_rate_served"] for name, s in served.items()},
        "clicks_by_arm_set": {name: s["clicks"] for name, s in served.items()},
        "products": n_products,
        "impressions": simulate.n_impressions,
        "traffic_seed": simulate.seed,
    }


def run_online_test(
    profile: Profile,
    data_dir: str | Path,
    pm_dir: str | Path,
    rm_dir: str | Path,
    runs: Mapping[str, str | Path],
    out: str | Path,
) -> dict[str, Any]:
    """The training pipeline's online A/B: ``online_test`` on a simulated world's held-out products; on real
    logs (no ``world.json``) nothing plays the users, and the skip and its reason are returned."""
    from caig.world.marker import is_simulated

    if not is_simulated(data_dir):
        Path(out).mkdir(parents=True, exist_ok=True)
        return {"skipped": "no world.json: real logs have no simulated users; A/B the generated creatives "
                           "on live traffic (caig-generate registers them, the selector serves them)"}  # fmt: skip
    return online_test(profile, data_dir, pm_dir, rm_dir, runs, out)
