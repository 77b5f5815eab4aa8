"""`make smoke-production`: both pipelines with the production profile on an imported release, no oracle.

Minutes long, so it runs in `make smoke-production` (and .ci/run), not in `make test` (marker ``smoke``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from tests.oracle_audit import audit_env, audit_reports

pytestmark = [pytest.mark.smoke, pytest.mark.timeout(1800)]
# The child processes that MAKE the release from a simulated world: they alone may load the oracle.
FIXTURE_COMMANDS = (["world", "build"], ["world", "export-release"])
REDIS_DB = 13  # configs/smoke-production.yaml's features and bandit database
TRAINING_STEPS = {
    "resolve-as-of", "configure-run", "build-world", "build-base-model", "ingest-events", "validate-stats",
    "build-pairs", "build-tasks", "pretrain-pm", "materialize-features", "train-rm", "evaluate-rm", "optimize-pm",
    "optimize-pm-2", "evaluate-runs", "online-ab-test", "register-models", "run-report",
}  # fmt: skip
REFRESH_STEPS = {
    "resolve-as-of", "build-world", "ingest-events", "validate-stats", "rank-creatives", "materialize-features",
    "refresh-report",
}  # fmt: skip
GENERATE_STEPS = REFRESH_STEPS | {"generate-creatives"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    """The smoke run, every process audited for oracle imports; Redis db 13 flushed afterwards."""
    import redis

    root = tmp_path_factory.mktemp("smoke")
    env = audit_env(root / "audit")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "caig", "smoke-production", "--out", str(root / "run")],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        yield root, json.loads((root / "run" / "metrics.json").read_text())
    finally:
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


def test_every_step_of_both_pipelines_ran(smoke):
    _, metrics = smoke
    assert set(metrics["seconds"]["training"]) == TRAINING_STEPS
    assert set(metrics["seconds"]["refresh"]) == REFRESH_STEPS
    assert set(metrics["seconds"]["generate"]) == GENERATE_STEPS
    assert metrics["refresh"]["priors.products_scored"] == metrics["training"]["world.n_products"] > 0


def test_oracle_steps_are_skipped_with_their_reason_and_the_judge_runs_instead(smoke):
    _, metrics = smoke
    training = metrics["training"]
    assert "no world.json" in training["pretrain.evaluation_skipped"]
    assert "simulator" in training["evaluate.skipped.match_rate"]
    assert "simulator" in training["evaluate.skipped.ctr_uplift"]
    assert training["rm.ceiling"] is None and training["rm.pairs"] > 0
    assert "no world.json" in training["online.skipped"]
    for method in ("pcpo", "dpo"):
        assert len(training[f"{method}.judge_match_rate_by_round"]) == 2  # round 0 and the one round
        assert 0 <= training[f"{method}.judge_match_rate"] <= 1
        assert 0 <= training[f"{method}.rm_win_rate"] <= 1


def test_production_switches_ran(smoke):
    root, _ = smoke
    pretrain = json.loads(
        next((root / "run" / "training" / "pipeline").glob("*/pretrain-pm/pm/pretrain.json")).read_text()
    )
    assert pretrain["method"] == "lora"
    assert pretrain["distributed"] == {"deepspeed": True, "zero_stage": 2, "world_size": 1}
    config = json.loads(
        next((root / "run" / "training" / "pipeline").glob("*/pretrain-pm/pm/model/config.json")).read_text()
    )
    assert config["vision_config"]["image_size"] == 336 and config["vision_config"]["patch_size"] == 14
    assert config["image_grid_pinpoints"] == [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def test_no_step_imported_the_oracle(smoke):
    root, _ = smoke
    reports = audit_reports(root / "audit")
    steps = [r for r in reports if any("executor_main" in a or "ephemeral_component" in a for a in r["argv"])]
    assert len(steps) >= len(TRAINING_STEPS) + len(REFRESH_STEPS) - 1, [r["argv"][:2] for r in reports]
    offenders = [r["argv"][:3] for r in reports if r["oracle"] and r["argv"][1:3] not in FIXTURE_COMMANDS]
    assert offenders == []


def test_generate_registers_a_creative_per_product_and_the_refresh_after_it_ranks_them(smoke):
    root, metrics = smoke
    generate = metrics["generate"]
    products = 4  # generate.product_ids of configs/smoke-production.yaml
    assert generate["generate.products"] == products and generate["generate.registered"] == products
    assert generate["generate.not_kept.ranked_below_keep"] + generate["generate.not_kept.unsafe"] + generate[
        "generate.not_kept.repeated"] + generate["generate.not_kept.unrenderable"] == products  # fmt: skip
    assert generate["priors.creatives_scored"] == metrics["refresh"]["priors.creatives_scored"] + products
    generated = pd.read_parquet(root / "run" / "data" / "generated.parquet")
    assert len(generated) == products and generated["pm"].str.contains("adapter").all()
    assert json.loads(generated["render"].iloc[0])["backend"] == "diffusers"  # production's renderer
