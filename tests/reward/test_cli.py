"""`caig rm train` and `caig rm eval` end to end on the small world; user errors exit 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from caig.cli import main
from caig.data.event_pairs import pairs_from_events
from caig.features.priors import read_rm_priors
from caig.world.build import bayes_pair_accuracy
from caig.world.loaded import load_world

SMALL = [
    "--set",
    "reward.image_side=32",
    "--set",
    "reward.epochs=1.0",
    "--set",
    "reward.batch_size=8",
    "--set",
    "reward.recipe.train_both_orders=false",
]


def _run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_train_then_eval(tmp_path, capsys, tiny_model_dir, small_world_dir, small_profile) -> None:
    train, _ = pairs_from_events(small_world_dir, small_profile.reward.train_pairs, seed=0)
    train.iloc[:24].to_parquet(tmp_path / "train.parquet")
    test, _ = pairs_from_events(small_world_dir, small_profile.data.pairs, seed=1)
    assert len(test) >= 5
    test.to_parquet(tmp_path / "test.parquet")
    main(
        [
            "rm",
            "train",
            "--pairs",
            str(tmp_path / "train.parquet"),
            "--model",
            str(tiny_model_dir),
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path / "rm"),
            *SMALL,
        ]
    )
    capsys.readouterr()
    main(
        [
            "rm",
            "eval",
            "--rm",
            str(tmp_path / "rm"),
            "--pairs",
            str(tmp_path),
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    report = json.loads((tmp_path / "eval" / "rm_eval.json").read_text())
    assert report["pairs"] == len(test)
    world = load_world(small_world_dir)
    assert report["ceiling"] == pytest.approx(bayes_pair_accuracy(world, world.creatives, test), abs=1e-4)
    assert report["skill"] == pytest.approx(
        (report["pair_accuracy"] - 0.5) / (report["ceiling"] - 0.5), abs=2e-3
    )
    for key in ("pair_accuracy", "pair_accuracy_one_order", "swap_disagreement"):
        assert 0.0 <= report[key] <= 1.0
    assert (tmp_path / "eval" / "rm_scores.parquet").is_file()
    capsys.readouterr()
    rm_priors_argv = ["rm", "priors", "--rm", str(tmp_path / "rm"), "--world", str(small_world_dir)]
    main(
        [*rm_priors_argv, "--out", str(tmp_path / "priors"), "--set", "orchestration.refresh.max_products=4"]
    )
    counts = json.loads(capsys.readouterr().out)
    priors = read_rm_priors(tmp_path / "priors" / "rm_priors.parquet")
    assert counts["products_scored"] == 4 and counts["products_not_scored"] == 44 and len(priors) == 20
    assert (priors["prior_alpha"] + priors["prior_beta"]).round(6).eq(50.0).all()
    assert priors.groupby("product_id")["rm_score"].mean().round(6).eq(0.5).all()  # mean win share of K
    calibrate_argv = ["rm", "calibrate-priors", "--rm", str(tmp_path / "rm"), "--world", str(small_world_dir)]
    small_replay = [
        "--set",
        "orchestration.refresh.max_products=4",
        "--set",
        "bandit.simulate.n_impressions=2000",
    ]
    main([*calibrate_argv, "--out", str(tmp_path / "cal"), *small_replay])
    fitted = json.loads((tmp_path / "cal" / "prior_calibration.json").read_text())
    assert fitted["likelihood"]["products"] == 4 and fitted["likelihood"]["creatives"] == 20
    assert fitted["objective"] == "regret" and len(fitted["regret"]["grid"]) == 42
    assert (fitted["prior_temperature"], fitted["prior_strength"]) == (
        fitted["regret"]["prior_temperature"],
        fitted["regret"]["prior_strength"],
    )
    capsys.readouterr()
    calibrated = ["--calibration", str(tmp_path / "cal" / "prior_calibration.json")]
    main(
        [
            *rm_priors_argv,
            *calibrated,
            "--out",
            str(tmp_path / "p2"),
            "--set",
            "orchestration.refresh.max_products=4",
        ]
    )
    assert json.loads(capsys.readouterr().out)["prior_temperature"] == pytest.approx(
        fitted["prior_temperature"]
    )
    strengths = read_rm_priors(tmp_path / "p2" / "rm_priors.parquet").eval("prior_alpha + prior_beta")
    np.testing.assert_allclose(strengths, fitted["prior_strength"])
    for text, named in (
        ("{}", "prior_temperature"),
        ("not json", "is not JSON"),
        ('{"prior_temperature": 1, "prior_strength": -5}', "prior_strength must be > 0"),
        ('{"prior_temperature": "hot", "prior_strength": 5}', "hot"),
    ):
        (tmp_path / "bad.json").write_text(text)
        code, _, err = _run(
            [*rm_priors_argv, "--calibration", str(tmp_path / "bad.json"), "--out", str(tmp_path / "p3")],
            capsys,
        )
        assert code == 2 and named in err and "calibrate-priors" in err and "Traceback" not in err


def test_eval_of_a_directory_without_an_rm_is_a_user_error(tmp_path, capsys, small_world_dir) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _run(
        [
            "rm",
            "eval",
            "--rm",
            str(tmp_path / "empty"),
            "--pairs",
            str(tmp_path),
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path / "eval"),
        ],
        capsys,
    )
    assert (
        code == 2
        and err.startswith("error: ")
        and "caig rm train" in err
        and len(err.strip().splitlines()) == 1
    )


def test_train_with_missing_pairs_file_is_a_user_error(
    tmp_path, capsys, tiny_model_dir, small_world_dir
) -> None:
    code, _, err = _run(
        [
            "rm",
            "train",
            "--pairs",
            str(tmp_path),
            "--model",
            str(tiny_model_dir),
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path / "rm"),
        ],
        capsys,
    )
    assert code == 2 and "train.parquet does not exist" in err
