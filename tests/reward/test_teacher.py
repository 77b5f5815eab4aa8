"""The description teacher: learns word preferences from logged pairs, labels every creative pair."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from caig.errors import UserError
from caig.pcpo.rollout import RenderedAd
from caig.reward.curriculum.ads import creatives_with_products
from caig.reward.curriculum.config import TeacherConfig
from caig.reward.curriculum.teacher import fit_teacher, teacher_pairs


def _market(n_products: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Creatives where 'neon' wins for shoes and loses for bags; logged pairs follow that rule."""
    rng = np.random.default_rng(0)
    words = ["neon glow", "soft linen", "pine forest", "studio light", "marble top"]
    rows = []
    for p in range(n_products):
        category = "shoes" if p % 2 else "bags"
        for k in range(4):
            rows.append(
                (f"C{p:03d}{k}", f"P{p:03d}", ", ".join(rng.choice(words, 2, replace=False)), category)
            )
    creatives = pd.DataFrame(rows, columns=["creative_id", "product_id", "description", "category"])
    creatives["colour"] = "red"
    creatives = creatives.set_index("creative_id")

    def score(cid: str) -> float:
        neon = "neon" in creatives.loc[cid, "description"]
        return neon if creatives.loc[cid, "category"] == "shoes" else -neon

    pairs = []
    for product, group in creatives.groupby("product_id"):
        for a, b in itertools.combinations(group.index, 2):
            if score(a) != score(b):
                pairs.append((product, a, b, "left" if score(a) > score(b) else "right"))
    return creatives, pd.DataFrame(
        pairs, columns=["product_id", "left_creative_id", "right_creative_id", "label"]
    )


def test_teacher_learns_a_category_dependent_word_preference() -> None:
    creatives, pairs = _market()
    teacher = fit_teacher(pairs, creatives, TeacherConfig(min_df=1, regularization_c=10.0))
    x = teacher.features(creatives["description"], creatives)
    index = pd.Index(creatives.index)
    p_left = teacher.prob_left(
        x[index.get_indexer(pairs.left_creative_id)], x[index.get_indexer(pairs.right_creative_id)]
    )
    assert np.mean((p_left > 0.5) == (pairs["label"] == "left").to_numpy()) == 1.0
    p_swapped = teacher.prob_left(
        x[index.get_indexer(pairs.right_creative_id)], x[index.get_indexer(pairs.left_creative_id)]
    )
    np.testing.assert_allclose(p_left + p_swapped, 1.0, atol=1e-9)  # antisymmetric: no side bias


def test_utility_parts_add_up_and_the_category_part_carries_a_category_dependent_word() -> None:
    creatives, pairs = _market()
    teacher = fit_teacher(pairs, creatives, TeacherConfig(min_df=1, regularization_c=10.0))
    parts = teacher.utility_parts(creatives["description"], creatives)
    assert list(parts) == ["words", "category x words", "colour x words"]
    np.testing.assert_allclose(
        sum(parts.values()), teacher.utility(creatives["description"], creatives), atol=1e-9
    )
    neon = creatives["description"].str.contains("neon").to_numpy()
    shoes = (creatives["category"] == "shoes").to_numpy()
    by_category = parts["category x words"]
    assert by_category[neon & shoes].mean() > 0.5 > -0.5 > by_category[neon & ~shoes].mean()
    assert abs(parts["words"][neon].mean()) < 0.5 * by_category[neon & shoes].mean()  # neon alone: no worth


def test_teacher_judges_pcpo_pairs_from_their_descriptions_for_the_product() -> None:
    creatives, pairs = _market()
    teacher = fit_teacher(pairs, creatives, TeacherConfig(min_df=1, regularization_c=10.0))
    blank = Image.new("RGB", (8, 8))
    neon, plain = RenderedAd("neon glow, soft linen", blank), RenderedAd("pine forest, soft linen", blank)
    shoes, bags = {"category": "shoes", "colour": "red"}, {"category": "bags", "colour": "red"}
    assert teacher.compare(shoes, neon, plain) > 0.8  # the logged rule: neon wins for shoes...
    assert teacher.compare(bags, neon, plain) < 0.2  # ...and loses for bags
    assert teacher.compare(shoes, neon, plain) + teacher.compare(shoes, plain, neon) == pytest.approx(1.0)


def test_teacher_pairs_cover_every_pair_of_each_product_with_logged_ctrs() -> None:
    creatives, pairs = _market(6)
    teacher = fit_teacher(pairs, creatives, TeacherConfig(min_df=1))
    totals = pd.DataFrame(
        {"creative_id": creatives.index, "impressions": 100, "clicks": range(len(creatives))}
    )
    labelled = teacher_pairs(teacher, creatives, totals, seed=1)
    assert len(labelled) == 6 * 6  # C(4, 2) pairs per product
    assert labelled["p_right"].between(0, 1).all()
    assert ((labelled["p_right"] > 0.5) == (labelled["label"] == "right")).all()
    first = labelled.iloc[0]
    assert first["left_ctr"] == totals.set_index("creative_id").loc[first["left_creative_id"], "clicks"] / 100


def test_creatives_without_descriptions_are_refused_with_the_switch_named(tmp_path) -> None:
    pd.DataFrame({"creative_id": ["C1"], "product_id": ["P1"], "description": [None]}).to_parquet(
        tmp_path / "creatives.parquet"
    )
    pd.DataFrame({"product_id": ["P1"], "category": ["shoes"], "colour": ["red"]}).to_parquet(
        tmp_path / "catalog.parquet"
    )
    with pytest.raises(UserError, match="curriculum.teacher.enabled=false"):
        creatives_with_products(tmp_path)


def test_borrowed_backgrounds_come_from_other_products_and_never_empty(tmp_path, monkeypatch) -> None:
    from PIL import Image

    from caig.render.config import RenderConfig
    from caig.render.factory import make_renderer
    from caig.reward.curriculum.ads import borrowed_creatives

    creatives, _ = _market(4)
    creatives.loc[creatives.index[::2], "description"] = " "  # half have nothing to paint
    (tmp_path / "p").mkdir()
    catalog = pd.DataFrame({"product_id": sorted(creatives["product_id"].unique())})
    catalog["image_path"] = [f"p/{p}.png" for p in catalog["product_id"]]
    for path in catalog["image_path"]:
        product = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
        product.paste((200, 30, 30, 255), (12, 12, 36, 36))  # a cut-out: opaque square, transparent around
        product.save(tmp_path / path)
    catalog.to_parquet(tmp_path / "catalog.parquet")
    renderer = make_renderer(RenderConfig(image_size=64))
    monkeypatch.chdir(tmp_path)  # a relative output folder (as `--work rm` gives) still yields absolute paths
    borrowed = borrowed_creatives(creatives, tmp_path, 2, renderer, Path("b"), seed=0)
    assert borrowed["image_path"].map(lambda p: Path(p).is_absolute()).all()
    assert len(borrowed) == 8 and borrowed["description"].str.strip().str.len().gt(0).all()
    for row in borrowed.itertuples():
        owners = creatives.loc[creatives["description"] == row.description, "product_id"]
        assert row.product_id not in set(owners)  # borrowed from another product
        assert Image.open(row.image_path).size == (64, 64)


def _logged_ctrs(creatives: pd.DataFrame, pairs: pd.DataFrame, impressions: int = 4000) -> pd.DataFrame:
    """The pairs with each side's logged CTR and impressions: 'neon' doubles a shoe's clicks and halves a
    bag's, around a click rate of each product's own (which the CTR target must not mistake for a word)."""
    rng = np.random.default_rng(1)
    base = {p: rng.uniform(0.01, 0.08) for p in creatives["product_id"].unique()}

    def ctr(cid: str) -> float:
        row = creatives.loc[cid]
        neon = "neon" in row["description"]
        lift = (2.0 if row["category"] == "shoes" else 0.5) if neon else 1.0
        return rng.binomial(impressions, base[row["product_id"]] * lift) / impressions

    ctrs = {cid: ctr(cid) for cid in creatives.index}
    return pairs.assign(
        left_ctr=pairs["left_creative_id"].map(ctrs),
        right_ctr=pairs["right_creative_id"].map(ctrs),
        left_impressions=impressions,
        right_impressions=impressions,
    )


def test_ctr_target_learns_the_preference_from_each_creatives_clicks() -> None:
    creatives, pairs = _market()
    logged = _logged_ctrs(creatives, pairs)
    teacher = fit_teacher(logged, creatives, TeacherConfig(min_df=1, target="ctr", ridge_alpha=1.0))
    blank = Image.new("RGB", (8, 8))
    neon, plain = RenderedAd("neon glow, soft linen", blank), RenderedAd("pine forest, soft linen", blank)
    shoes, bags = {"category": "shoes", "colour": "red"}, {"category": "bags", "colour": "red"}
    assert teacher.compare(shoes, neon, plain) > 0.8 and teacher.compare(bags, neon, plain) < 0.2
    utility = teacher.utility(pd.Series([neon.description, plain.description]), pd.DataFrame([shoes, shoes]))
    assert utility[0] > utility[1]
    assert teacher.compare(shoes, neon, plain) + teacher.compare(shoes, plain, neon) == pytest.approx(1.0)


def test_ctr_target_needs_impressions_and_known_creatives() -> None:
    creatives, pairs = _market()
    with pytest.raises(UserError, match="left_impressions, right_impressions missing"):
        fit_teacher(pairs.assign(left_ctr=0.1, right_ctr=0.1), creatives, TeacherConfig(target="ctr"))
    unknown = pairs.assign(left_creative_id=["X"] + list(pairs["left_creative_id"].iloc[1:]))
    with pytest.raises(UserError, match="1 training pairs name creatives without a description"):
        fit_teacher(unknown, creatives, TeacherConfig())
