"""The training commands on real-format data: a release imported with `caig data import`, no world.json, and
no command ever importing the simulator's oracle (checked in every process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.oracle_audit import audit_env, audit_reports

from caig.world.release import export_release

FAST = [
    "data.pairs.min_impressions=800",
    "pretrain.epochs=1",
    "pretrain.batch_size=8",
    "pretrain.eval_products=4",
    "pretrain.cpu_threads=1",
    "reward.image_side=32",
    "reward.epochs=1",
    "reward.batch_size=8",
    "reward.logging_steps=2",
    "pcpo.rounds=1",
    "pcpo.products_per_round=4",
    "pcpo.eval_products=4",
    "pcpo.max_new_tokens=8",
    "pcpo.batch_size=4",
    "pcpo.lora_r=4",
    "pcpo.lora_alpha=8",
    "render.image_size=64",
]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path):
    """The release of the small world imported into DATA; returns a runner of audited `caig` commands."""
    root = tmp_path_factory.mktemp("real-data")
    export_release(small_world_dir, root / "release")
    env = audit_env(root / "audit")

    def caig(*args: str) -> dict | None:
        sets = [x for s in FAST for x in ("--set", s)]
        done = subprocess.run(
            [sys.executable, "-m", "caig", *args, *sets], capture_output=True, text=True, env=env, timeout=900
        )
        assert done.returncode == 0, f"caig {' '.join(args)}: {done.stderr[-3000:]}"
        return json.loads(done.stdout) if done.stdout.strip().startswith("{") else None

    release = root / "release"
    caig(
        "data", "import", "--clicks", str(release / "click_data.json"), "--captions",
        str(release / "caption_public.json"), "--images", str(release / "images"), "--products",
        str(release / "products.json"), "--product-images", str(release / "product_images"),
        "--date", "2026-10-07", "--out", str(root / "data"),
    )  # fmt: skip
    return root, caig


def test_pretrain_rm_and_pcpo_run_on_imported_logs_without_the_oracle(audited):
    root, caig = audited
    data = root / "data"
    assert not (data / "world.json").exists()
    caig("mllm", "build", "--world", str(data), "--out", str(root / "base"))
    caig("mllm", "tasks", "--world", str(data), "--out", str(root / "mix"))
    caig("pretrain", "--model", str(root / "base"), "--tasks", str(root / "mix"), "--out", str(root / "pm"))
    report = json.loads((root / "pm" / "pretrain.json").read_text())
    assert report["global_step"] > 0 and "no world.json" in report["evaluation"]["skipped"]
    ingest = [
        "data",
        "ingest",
        "--events",
        str(data / "events"),
        "--creatives",
        str(data / "creatives.parquet"),
    ]
    caig(*ingest, "--out", str(root / "ds"), "--as-of", "2026-10-08")
    caig("data", "pairs", "--stats", str(root / "ds"), "--creatives", str(data / "creatives.parquet"),
         "--out", str(root / "pairs"))  # fmt: skip
    caig("rm", "train", "--pairs", str(root / "pairs"), "--model", str(root / "pm"), "--world", str(data),
         "--out", str(root / "rm"))  # fmt: skip
    evaluation = caig("rm", "eval", "--rm", str(root / "rm"), "--pairs", str(root / "pairs"), "--world",
                      str(data), "--out", str(root / "rm-eval"))  # fmt: skip
    assert evaluation["pairs"] > 0 and 0 <= evaluation["pair_accuracy"] <= 1
    assert evaluation["ceiling"] is None  # the oracle's ceiling exists only in the simulator
    summary = caig("pcpo", "--pm", str(root / "pm"), "--rm", str(root / "rm"), "--out", str(root / "pcpo"))
    assert summary["rounds"] == 1 and (root / "pcpo" / "round-01" / "heldout.parquet").is_file()
    reports = audit_reports(root / "audit")
    commands = {" ".join(r["argv"][1:3]) for r in reports}
    assert {"mllm build", "pretrain --model", "rm train", "rm eval", "pcpo --pm"} <= commands, commands
    assert [r for r in reports if r["oracle"]] == []


def test_the_audit_sees_an_oracle_import(tmp_path: Path):
    env = audit_env(tmp_path)
    for code in ("import caig.mllm.pretrain", "import caig.world.loaded"):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert sorted(tuple(r["oracle"]) for r in audit_reports(tmp_path)) == [
        (),
        ("caig.world.oracle", "caig.world.loaded"),
    ]
