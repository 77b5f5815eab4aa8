"""The tiny RM's whole curriculum on the GPU against the CPU, side by side in one job (issue 6, "fast on GPUs").

Builds a small train world, a held-out test world and the tiny base model, then runs ``rm_skill.py`` twice at
once with the same RM settings (the README's best curriculum: perception on borrowed backgrounds, ad utility,
teacher, logged pairs): once on the GPU, once with the GPU hidden (``CUDA_VISIBLE_DEVICES=``; torch on
``reward.cpu_threads`` threads, the setting CPU nodes use). Writes ``rm_curriculum_gpu.json``: per-stage and
total seconds on each, their ratio, and both runs' pair accuracy and skill (not equal: the GPU's kernels and
random streams are not the CPU's, so they are two training runs of one seed, not one run twice).

    PYTHONPATH=src python3 benchmarks/rm_curriculum_gpu.py --work /tmp/rm-curriculum --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from prepare import BEST  # the best curriculum setting measured on 2 CPU cores (Table 1 row 5)
from provenance import provenance

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--products", type=int, default=150, help="products of each world")
    parser.add_argument("--seed", type=int, default=0, help="training seed of both runs")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each run may take")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    worlds = {
        name: build_world(args.work / name, seed, args.products)
        for name, seed in (("train", 10), ("test", 1))
    }
    model = args.work / "base"
    if not (model / "config.json").is_file():
        caig("mllm", "build", "--preset", "tiny", "--world", str(worlds["train"]), "--out", str(model))
    setup_seconds = time.perf_counter() - started
    overrides = [*BEST, *args.overrides]
    runs = {
        device: start_run(device, model, worlds, args.work / device, args.seed, overrides, args.out)
        for device in ("cuda", "cpu")
    }
    results = {
        device: finish_run(device, process, args.out, args.timeout) for device, process in runs.items()
    }
    result = {**provenance(), **compare(results)}
    result |= {
        "world_seeds": {"train": 10, "test": 1},
        "training_seed": args.seed,
        "products_per_world": args.products,
        "setup_seconds": round(setup_seconds, 1),
        "overrides": overrides,
        "cpu_count": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.out / "rm_curriculum_gpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def caig(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "caig", *argv], check=True)


def build_world(directory: Path, seed: int, products: int) -> Path:
    if not (directory / "world.json").is_file():
        caig("world", "build", "--profile", "local", "--seed", str(seed), "--set", f"world.n_products={products}",
             "--out", str(directory))  # fmt: skip
    return directory


def start_run(
    device: str, model: Path, worlds: dict[str, Path], work: Path, seed: int, overrides: list[str], out: Path
) -> subprocess.Popen:
    """``rm_skill.py`` for one seed on ``device`` (the GPU hidden for ``cpu``), its log in ``out``."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"} | ({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})
    command = [
        sys.executable, str(HERE / "rm_skill.py"), "--model", str(model), "--train-world", str(worlds["train"]),
        "--test-world", str(worlds["test"]), "--work", str(work), "--out", str(out), "--seeds", str(seed),
        "--name", f"rm_curriculum_{device}", *(a for o in overrides for a in ("--set", o)),
    ]  # fmt: skip
    log = (out / f"rm_curriculum_{device}.log").open("w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish_run(device: str, process: subprocess.Popen, out: Path, timeout: float) -> dict | None:
    """The run's ``rm_skill`` result, or None when it failed or ran out of time (its log says why)."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return None
    path = out / f"rm_curriculum_{device}.json"
    return json.loads(path.read_text()) if code == 0 and path.is_file() else None


def compare(results: dict[str, dict | None]) -> dict:
    """Per-stage seconds on each device and the CPU/GPU ratio of each stage and of the whole training."""
    table: dict = {"devices": {}}
    for device, result in results.items():
        if result is None:
            table["devices"][device] = None
            continue
        run = result["runs"][0]
        table["devices"][device] = {
            "device_name": result.get("device"),
            "train_seconds": run["train_seconds"],
            "stage_seconds": {s["stage"]: s["seconds"] for s in run["stages"]},
            "stage_steps": {s["stage"]: s.get("steps") for s in run["stages"]},
            "pair_accuracy": run["pair_accuracy"],
            "skill": run["skill"],
            "broad_pair_accuracy": run.get("broad_pair_accuracy"),
            "train_pairs": result["train_pairs"],
            "test_pairs": result["test_pairs"],
        }
    gpu, cpu = table["devices"].get("cuda"), table["devices"].get("cpu")
    if gpu and cpu:
        table["cpu_over_gpu"] = {
            "train": round(cpu["train_seconds"] / gpu["train_seconds"], 2),
            **{
                stage: round(seconds / gpu["stage_seconds"][stage], 2)
                for stage, seconds in cpu["stage_seconds"].items()
                if gpu["stage_seconds"].get(stage)
            },
        }
    return table


if __name__ == "__main__":
    main()
