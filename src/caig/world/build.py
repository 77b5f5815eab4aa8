"""``caig world build``: write a whole simulated world, deterministically for a seed."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from caig.data.config import PairRuleConfig
from caig.data.events import write_events
from caig.data.pairs import build_rm_pairs, creative_totals
from caig.typed_config import as_dict
from caig.world.catalog import build_catalog
from caig.world.config import WorldConfig
from caig.world.contact_sheet import draw_contact_sheet
from caig.world.creatives import build_creatives
from caig.world.events import simulate_events
from caig.world.loaded import load_world
from caig.world.vocabulary import TERMS

log = logging.getLogger("caig.world")


def build_world(config: WorldConfig, out: Path, seed: int, pair_rule: PairRuleConfig | None = None) -> dict:
    """Build catalog, creatives, events, world.json and the contact sheet under ``out``; return world.json.

    The catalog, creatives and logs come from one random stream of the seed; the hidden CTR effects from
    another (``oracle.HiddenParams``), re-drawn by ``load_world`` and never written to disk.
    """
    pair_rule = pair_rule or PairRuleConfig()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    catalog = build_catalog(config, out, rng)
    catalog.to_parquet(out / "catalog.parquet", index=False)
    log.info("catalog: %d products in %d categories", len(catalog), catalog.category.nunique())
    creatives = build_creatives(config, catalog, out, rng)
    creatives.to_parquet(out / "creatives.parquet", index=False)
    log.info("creatives: %d rendered", len(creatives))
    meta = {"seed": seed, "config": as_dict(config)}
    (out / "world.json").write_text(json.dumps(meta, indent=2))
    world = load_world(out)  # the oracle, from what is on disk
    ctr = np.array([[world.true_ctr(c.product_id, c.description, s) for s in config.segments]
                    for c in creatives.itertuples()])
    events = simulate_events(config, creatives, ctr, rng, seed)
    if (out / "events").exists():  # a rebuild must not leave the last build's logs beside the new ones
        shutil.rmtree(out / "events")
    write_events(events, out / "events")
    log.info("events: %d impressions, %d clicks over %d days", len(events), int(events.clicked.sum()), config.n_days)
    totals = creative_totals(events.groupby(["creative_id", "product_id"], as_index=False)
                             .agg(impressions=("clicked", "size"), clicks=("clicked", "sum")))
    pairs, pair_counts = build_rm_pairs(totals, pair_rule, seed=seed)
    meta.update({
        "n_products": len(catalog),
        "n_categories": int(catalog.category.nunique()),
        "n_background_terms": len(TERMS),
        "n_creatives": len(creatives),
        "n_events": len(events),
        "n_clicks": int(events.clicked.sum()),
        "pair_rule": as_dict(pair_rule),
        "n_pairs": pair_counts["pairs"],
        "bayes_pair_accuracy": bayes_pair_accuracy(world, creatives, pairs),
    })
    (out / "world.json").write_text(json.dumps(meta, indent=2))
    logged = totals.set_index("creative_id").eval("clicks / impressions")
    draw_contact_sheet(out, catalog, creatives, logged, config.contact_sheet_products).save(out / "contact_sheet.png")
    log.info("world seed %d written to %s in %.1f s", seed, out, time.perf_counter() - started)
    return {k: v for k, v in meta.items() if k != "config"}


def bayes_pair_accuracy(world, creatives: pd.DataFrame, pairs: pd.DataFrame) -> float | None:
    """Accuracy of a judge that knows the true CTRs, on pairs labelled by the logs: the RM's ceiling.

    Logged CTRs are noisy, so even a perfect judge disagrees with some labels; this is the best accuracy
    any reward model can reach on these pairs.
    """
    if pairs.empty:
        return None
    description = creatives.set_index("creative_id")["description"]
    truth = {cid: world.true_ctr(pid, description[cid])
             for pid, cid in {*zip(pairs.product_id, pairs.left_creative_id),
                              *zip(pairs.product_id, pairs.right_creative_id)}}
    true_left = np.array([truth[c] for c in pairs.left_creative_id])
    true_right = np.array([truth[c] for c in pairs.right_creative_id])
    judged_left = true_left > true_right
    return float(np.mean(judged_left == (pairs.label == "left").to_numpy()))
