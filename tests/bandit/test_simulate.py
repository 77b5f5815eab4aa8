"""``caig bandit simulate`` on the small world: priors cut regret; the three policies see the same traffic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from caig.bandit.arena import read_logged_events
from caig.bandit.config import SimulateConfig
from caig.bandit.simulate import empirical_priors, product_level_priors, simulate
from caig.cli import main


@pytest.fixture(scope="module")
def result(small_world_dir: Path) -> dict:
    return simulate(small_world_dir, SimulateConfig(n_impressions=30000, batch_size=300))


def test_rm_like_priors_cut_regret_and_mabwiser_matches_our_no_prior_ts(result):
    s = result["summary"]
    regret = s["cumulative_regret"]
    assert regret["ts_rm_prior"] < 0.85 * regret["ts_no_prior"]
    assert 0.8 < regret["mabwiser_ts"] / regret["ts_no_prior"] < 1.25  # same algorithm, other implementation
    assert s["clicks"]["ts_rm_prior"] > s["clicks"]["ts_no_prior"]
    for curve in result["curves"].values():
        assert len(curve) == 30000 and np.all(np.diff(curve) >= -1e-12)


def test_off_policy_estimates_from_the_logs_land_near_the_true_value(result):
    for target in result["summary"]["off_policy_evaluation_from_ts_no_prior_logs"].values():
        for name in ("ips", "snips", "dr"):
            assert abs(target[name]["value"] - target["true_value"]) < 4 * target[name]["stderr"] + 2e-3


def test_empirical_priors_have_the_rm_priors_schema_and_shrink_to_the_product(small_world_dir: Path):
    events = read_logged_events(small_world_dir)
    priors = empirical_priors(events, SimulateConfig(prior_strength=50), np.random.default_rng(0))
    assert list(priors.columns) == [
        "creative_id",
        "product_id",
        "rm_score",
        "prior_alpha",
        "prior_beta",
        "event_timestamp",
    ]
    assert np.allclose(priors.prior_alpha + priors.prior_beta, 50)
    assert priors.rm_score.between(0, 1).all()


def test_cli_writes_json_and_plot_and_accepts_a_priors_table(small_world_dir: Path, tmp_path: Path, capsys):
    events = read_logged_events(small_world_dir)
    priors = empirical_priors(events, SimulateConfig(), np.random.default_rng(5))
    priors.to_parquet(tmp_path / "rm_priors.parquet")
    main(
        [
            "bandit",
            "simulate",
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path / "sim"),
            "--priors",
            str(tmp_path / "rm_priors.parquet"),
            "--set",
            "bandit.simulate.n_impressions=3000",
        ]
    )
    summary = json.loads((tmp_path / "sim" / "simulate.json").read_text())
    assert summary["prior_source"] == "rm_priors table" and summary["n_impressions"] == 3000
    assert (tmp_path / "sim" / "regret.png").stat().st_size > 1000
    assert "regret_ratio_rm_prior_vs_no_prior" in capsys.readouterr().out


def test_cli_rejects_a_directory_without_a_world(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["bandit", "simulate", "--world", str(tmp_path), "--out", str(tmp_path / "o")])
    assert done.value.code == 2 and "world.json" in capsys.readouterr().err


def test_priors_table_without_prior_columns_is_refused(tmp_path: Path):
    from caig.bandit.providers import TableProvider
    from caig.errors import UserError

    with pytest.raises(UserError, match="prior_alpha"):
        TableProvider(
            pd.DataFrame({"creative_id": ["A"], "product_id": ["P"]}), pd.DataFrame({"creative_id": ["A"]})
        )


def test_product_level_priors_keep_strength_and_mean_but_not_the_ranking() -> None:
    alpha = np.array([[2.0, 6.0, 1.0], [3.0, 3.0, 9.0]])
    beta = np.array([[8.0, 4.0, 1.0], [7.0, 7.0, 1.0]])
    valid = np.array([[True, True, False], [True, True, True]])
    flat_alpha, flat_beta = product_level_priors(alpha, beta, valid)
    np.testing.assert_allclose(flat_alpha + flat_beta, alpha + beta)
    np.testing.assert_allclose(flat_alpha[0, :2] / 10.0, [0.4, 0.4])  # mean of 0.2 and 0.6
    np.testing.assert_allclose(flat_alpha[1] / 10.0, [(0.3 + 0.3 + 0.9) / 3] * 3)
    assert flat_alpha[0, 2] == 1.0 and flat_beta[0, 2] == 1.0  # padding untouched


def test_simulate_to_is_the_cli_door_and_refuses_a_missing_priors_table(
    small_world_dir: Path, tmp_path: Path
):
    from caig.bandit.simulate import simulate_to
    from caig.errors import UserError

    with pytest.raises(UserError, match="--priors .*none.parquet does not exist"):
        simulate_to(small_world_dir, SimulateConfig(), tmp_path / "o", tmp_path / "none.parquet")
    summary = simulate_to(small_world_dir, SimulateConfig(n_impressions=2000), tmp_path / "sim")
    assert summary["prior_source"] == "empirical Bayes on the logs" and summary["n_impressions"] == 2000
    assert json.loads((tmp_path / "sim" / "simulate.json").read_text()) == summary
    assert (tmp_path / "sim" / "regret.png").stat().st_size > 1000
