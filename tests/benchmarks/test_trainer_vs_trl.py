"""benchmarks/trainer_vs_trl.py --cpu-smoke: TRL's DPOTrainer and our DPO / PCPO steps side by side on the
tiny shape, the code the GPU run times (needs the ``bench`` extra's TRL; skipped without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "trl",
    reason="TRL is not installed: the bench extra (make venv installs it; pip install -c constraints.txt -e '.[bench]')",
)
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "trainer_vs_trl.py"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cpu_smoke_runs_trl_and_ours_on_the_same_tokens(tmp_path):
    done = run("--out", str(tmp_path), "--rounds", "2", "--steps", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "trainer_vs_trl.json").read_text())
    methods = report["methods"]
    assert set(methods) == {
        "trl_dpo",
        "ours_dpo",
        "ours_pcpo",
        "ours_dpo_unshared",
        "ours_dpo_plain",
        "ours_dpo_fp32-lora",
    }
    assert report["tokens_per_pair"]["trl"] == {"prompt": [40], "chosen": [8], "rejected": [8]}
    assert report["tokens_per_pair"]["ours"] == {"prompt": [40], "response": 8}
    batch = report["shape"]["batch"]
    assert methods["trl_dpo"]["tokens_run_per_step"] == 2 * batch * (40 + 8)
    assert methods["ours_dpo"]["tokens_unpacked_per_step"] == methods["trl_dpo"]["tokens_run_per_step"]
    assert methods["ours_dpo"]["tokens_run_per_step"] == batch * (40 + 8 + 8)  # the prompt once a pair
    assert methods["ours_pcpo"]["tokens_run_per_step"] == batch * (40 + 8 + 8 + 40 + 8)
    assert methods["ours_dpo_unshared"]["tokens_run_per_step"] == 2 * batch * (40 + 8)
    assert all(m["samples_per_s"] > 0 and len(m["step_seconds"]) == 1 for m in methods.values())
    assert {"command", "commit", "machine"} <= set(report)


def test_cpu_smoke_of_the_llava_shape_runs_trl_on_images(tmp_path):
    done = run("--shape", "llava", "--out", str(tmp_path), "--rounds", "2", "--steps", "1", "--no-ablations")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "trainer_vs_trl_llava.json").read_text())
    methods = report["methods"]
    assert set(methods) == {"trl_dpo", "ours_dpo", "ours_pcpo"}
    assert report["mismatches"] == ["textual", "visual"]
    # TRL's collator makes the sequences ours encodes: prompt (image tokens expanded) + response
    ours = {
        p + report["tokens_per_pair"]["ours"]["response"] for p in report["tokens_per_pair"]["ours"]["prompt"]
    }
    assert set(report["tokens_per_pair"]["trl"]["sequences"]) <= ours
    assert methods["ours_dpo"]["tokens_run_per_step"] < methods["trl_dpo"]["tokens_run_per_step"]
    assert methods["ours_pcpo"]["tokens_run_per_step"] < methods["trl_dpo"]["tokens_run_per_step"]


def test_cpu_smoke_does_not_write_into_the_results(tmp_path):
    done = run("--out", str(ROOT / "benchmarks" / "results"))
    assert done.returncode != 0 and "writes elsewhere" in done.stderr
