"""What encoding RM examples up front costs against encoding each batch as it is drawn (``reward.encode_up_front_gb``).

For the first ``--pairs`` training pairs of ``--world`` (both orders, as the logged-pairs stage trains), each
mode in its own process (so that one's memory does not hide the other's): the resident memory the stage's
examples add, the seconds to prepare them, and the seconds to collate one training batch. Writes
``rm_encoding_memory.json``.

    .venv/bin/python benchmarks/rm_encoding_memory.py --model PM/model --world WORLD --out benchmarks/results \
        --set reward.image_side=128
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
from provenance import provenance


def measure(model: Path, world: Path, pairs: int, overrides: list[str], per_batch: bool) -> dict:
    """One mode, in this process."""
    from caig.data.event_pairs import pairs_from_events
    from caig.mllm.build import load_model
    from caig.profile import load_profile
    from caig.reward.data import attach_sources
    from caig.reward.trainer import pair_examples

    config = load_profile("local", overrides).reward
    if per_batch:
        config = dataclasses.replace(config, encode_up_front_gb=0.0)
    _, processor = load_model(model)
    table, _ = pairs_from_events(world, config.train_pairs)
    source = attach_sources(table.head(pairs), world)
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    examples, collate = pair_examples(source, processor, config)
    prepare = time.perf_counter() - started
    added = process.memory_info().rss - before
    batches = range(0, min(len(examples), 16 * config.batch_size), config.batch_size)
    started = time.perf_counter()
    for start in batches:
        collate(examples[start : start + config.batch_size])
    return {
        "mode": "per_batch" if per_batch else "up_front",
        "examples": len(examples),
        "batch_size": config.batch_size,
        "rss_gb_added": round(added / 1e9, 3),
        "prepare_s": round(prepare, 2),
        "collate_batch_s": round((time.perf_counter() - started) / len(batches), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--mode", choices=["up_front", "per_batch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # a child: one mode
        print(
            json.dumps(measure(args.model, args.world, args.pairs, args.overrides, args.mode == "per_batch"))
        )
        return
    rows = []
    for mode in ("up_front", "per_batch"):
        command = [sys.executable, __file__, "--model", str(args.model), "--world", str(args.world)]
        command += ["--pairs", str(args.pairs), "--mode", mode] + [f"--set={o}" for o in args.overrides]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    result = {
        **provenance(),
        "world_seed": json.loads((args.world / "world.json").read_text())["seed"],
        "model": args.model.name,
        "pairs": args.pairs,
        "overrides": args.overrides,
        "modes": rows,
        "memory_ratio_up_front_over_per_batch": round(
            rows[0]["rss_gb_added"] / max(rows[1]["rss_gb_added"], 1e-3), 1
        ),
        "cpu_count": os.cpu_count(),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "measured_at": time.strftime("%Y-%m-%d"),
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "rm_encoding_memory.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
