"""The automatic A.2 judge: answer parsing, agreement figures against hand-computed values, and real runs
of a tiny (untrained) MLLM built from config, on a world (vs its oracle) and on a review batch."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from caig.cli import main
from caig.errors import UserError
from caig.evaluate.judge_agreement import UNPARSED, agreement, cohen_kappa, match_auc
from caig.evaluate.mllm_judge import (
    JudgeSettings,
    judge_batch,
    judge_question,
    parse_judgement,
    run_world_judge,
)
from caig.evaluate.review import ANSWERS
from caig.evaluate.review_aggregate import import_batch
from caig.evaluate.review_export import export_batch
from caig.mllm.build import build_tiny, save_model
from caig.world.loaded import load_world


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("match", "match"),
        ("Scene mismatch.", "scene"),
        ("a COLOR clash", "colour"),
        ("colour", "colour"),
        ("available", "match"),
        ("it matches well", "match"),
        ("the scale is off, scene too", "scale"),
        ("no match", None),
        ("doesn't match", None),
        ("mismatch", None),
        ("in a photo studio, soft daylight", None),
        ("", None),
    ],
)
def test_parse_judgement(text, kind):
    assert parse_judgement(text) == kind


def test_agreement_against_hand_computed_values():
    oracle = ["match", "match", "scene", "scale"]
    judged = ["match", "scene", "scene", "match"]
    a = agreement(judged, oracle)
    # p_o = 2/4; p_e = P(match) 2/4*2/4 + P(scene) 2/4*1/4 = 0.375; kappa = 0.125 / 0.625
    assert a["accuracy"] == pytest.approx(0.5) and a["kappa"] == pytest.approx(0.2)
    # match/mismatch: judge M x x M, oracle M M x x: p_o = 0.5, p_e = 0.5, kappa 0
    assert a["match_accuracy"] == pytest.approx(0.5) and a["match_kappa"] == pytest.approx(0.0)
    assert a["match_rate_judge"] == a["match_rate_oracle"] == pytest.approx(0.5)
    assert a["confusion"]["match"] == {"match": 1, "scale": 0, "scene": 1, "colour": 0}
    assert a["confusion"]["scale"]["match"] == 1 and a["confusion"]["scene"]["scene"] == 1
    assert a["n"] == 4 and a["unparsed"] == 0


def test_match_auc_against_hand_computed_values():
    assert match_auc([3, 1, 2, 0], ["match", "scene", "match", "scale"]) == pytest.approx(1.0)
    # positives {0, 2} vs negatives {1, 3}: only 2 > 1 of the four pairs
    assert match_auc([0, 2, 1, 3], ["match", "match", "scene", "scale"]) == pytest.approx(0.25)
    assert match_auc([1, 1], ["match", "colour"]) == pytest.approx(0.5)  # a tie counts half
    assert match_auc([1, 2], ["match", "match"]) is None
    a = agreement(["match", "scene"], ["match", "scene"], match_margin=[0.5, -0.5])
    assert a["match_auc"] == pytest.approx(1.0) and agreement(["match"], ["match"])["match_auc"] is None


def test_unparsed_answers_count_as_disagreement():
    a = agreement(["match", UNPARSED], ["match", "colour"])
    assert a["accuracy"] == pytest.approx(0.5) and a["unparsed"] == 1
    assert a["confusion"]["colour"][UNPARSED] == 1


def test_cohen_kappa_edges():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement 1: undefined
    assert cohen_kappa([], []) is None


def test_question_carries_the_a2_kinds_and_the_product():
    q = judge_question({"title": "red sofa", "category": "sofa"}, "in a 'living' room", ("title", "colour"))
    assert "scale" in q and "scene" in q and "colour" in q
    assert "Background: 'in a living room'" in q and "Product Title: 'red sofa'" in q
    assert "Colour:" not in q  # attributes the product lacks are left out


def test_settings_reject_an_unknown_mode():
    with pytest.raises(UserError, match="judge mode 'vote'"):
        JudgeSettings(mode="vote")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_judge_dir(tmp_path_factory, small_profile, small_world_dir):
    """An untrained tiny MLLM built from the local profile's config (the judge's plumbing, not its skill)."""
    model, processor = build_tiny(small_profile.mllm, small_world_dir)
    return save_model(model, processor, tmp_path_factory.mktemp("judge-mllm") / "model").parent


def test_world_judge_writes_agreement_with_the_oracle(tiny_judge_dir, small_world_dir, tmp_path):
    report = run_world_judge(tiny_judge_dir, small_world_dir, tmp_path, JudgeSettings(batch_size=4), limit=10)
    saved = json.loads((tmp_path / "judge.json").read_text())
    assert saved["agreement"] == report["agreement"] and saved["agreement"]["n"] == 10
    rows = pd.read_parquet(tmp_path / "judgements.parquet")
    world = load_world(small_world_dir)
    assert len(rows) == 10 and set(rows["judge"]) <= set(ANSWERS)
    for row in rows.itertuples():
        assert row.oracle == world.judge_match(row.product_id, row.description)
        scores = json.loads(row.raw)
        assert all(math.isfinite(v) and v < 0 for v in scores.values())
        assert row.judge == max(scores, key=scores.get)  # choice mode: the likeliest answer
        assert row.match_margin == pytest.approx(
            scores["match"] - max(scores[k] for k in ANSWERS[1:]), abs=1e-3
        )
    assert report["agreement"]["accuracy"] == pytest.approx((rows["judge"] == rows["oracle"]).mean())
    assert report["agreement"]["match_auc"] == match_auc(rows["match_margin"], rows["oracle"].tolist())


def test_generate_mode_parses_or_marks_unparsed(tiny_judge_dir, small_world_dir, tmp_path):
    report = run_world_judge(
        tiny_judge_dir, small_world_dir, tmp_path, JudgeSettings(mode="generate", max_new_tokens=4), limit=6
    )
    rows = pd.read_parquet(tmp_path / "judgements.parquet")
    assert set(rows["judge"]) <= {*ANSWERS, UNPARSED}
    assert report["agreement"]["unparsed"] == int((rows["judge"] == UNPARSED).sum())
    assert [parse_judgement(t) or UNPARSED for t in rows["raw"]] == rows["judge"].tolist()


def test_judge_answers_a_batch_that_import_reads(tiny_judge_dir, small_profile, small_world_dir, tmp_path):
    from caig.render.factory import make_renderer

    world = load_world(small_world_dir)
    pids = world.catalog.product_id.tolist()[:4]
    for r in range(2):
        folder = tmp_path / "run" / f"round-{r:02d}"
        folder.mkdir(parents=True)
        texts = [world.creatives.loc[world.creatives.product_id == p, "description"].iloc[r] for p in pids]
        pd.DataFrame({"product_id": pids, "description": texts}).to_parquet(folder / "heldout.parquet")
    export_batch(make_renderer(small_profile.render), {"pcpo": tmp_path / "run"}, small_world_dir,
                 tmp_path / "batch", "j1", per_cell=4)  # fmt: skip
    made = judge_batch(tiny_judge_dir, tmp_path / "batch", tmp_path / "judge", JudgeSettings(batch_size=4))
    assert (made["items"], made["answered"], made["unparsed"]) == (8, 8, 0)
    result = import_batch(tmp_path / "batch", [made["answers"]])
    assert result["reviewers"] == ["mllm-judge"] and result["n_accepted"] == 8
    assert [c["judged"] for c in result["cells"]] == [4, 4]


def test_cli_judge_needs_exactly_one_source(tiny_judge_dir, small_world_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["review", "judge", "--model", str(tiny_judge_dir), "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "exactly one of --world" in capsys.readouterr().err
    main(["review", "judge", "--model", str(tiny_judge_dir), "--world", str(small_world_dir),
          "--out", str(tmp_path), "--limit", "3"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n"] == 3
    assert json.loads((tmp_path / "judge.json").read_text())["agreement"]["n"] == 3
