"""caig generate: candidates written, rendered, ranked and registered with provenance; idempotent; atomic."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from PIL import Image
from tests.conftest import GENERATE, SMALL_WORLD

from caig.cli import main
from caig.errors import UserError
from caig.generate.candidates import render_candidates
from caig.generate.register import GENERATED, register
from caig.generate.run import generate_creatives
from caig.profile import load_profile
from caig.render.factory import make_renderer
from caig.render.label import read_label

LISTED = ["P00000", "P00001"]


def listed(profile, ids=LISTED):
    return dataclasses.replace(
        profile, generate=dataclasses.replace(profile.generate, products="listed", product_ids=ids)
    )


def test_generated_creatives_are_registered_with_provenance_and_priors(generate_profile, models, data_dir):
    pm, rm = models
    before = pd.read_parquet(data_dir / "creatives.parquet")
    report = generate_creatives(listed(generate_profile), data_dir, pm, rm)
    assert report["products"] == 2 and report["candidates"] == 6
    not_kept = report["not_kept"]
    assert report["kept"] + sum(not_kept.values()) == 6 and 0 < report["kept"] <= 4
    assert report["registered"] == report["kept"] and report["already_registered"] == 0
    after = pd.read_parquet(data_dir / "creatives.parquet")
    assert len(after) == len(before) + report["kept"] and list(after.columns) == list(before.columns)
    generated = pd.read_parquet(data_dir / GENERATED)
    assert set(generated["creative_id"]) == set(after["creative_id"]) - set(before["creative_id"])
    assert set(generated["product_id"]) <= set(LISTED) and (generated["pm"] == str(pm.resolve())).all()
    assert (generated["prior_alpha"] > 0).all() and (generated["prior_beta"] > 0).all()
    assert all(json.loads(r)["backend"] == "procedural" for r in generated["render"])
    for path in generated["image_path"]:
        assert read_label(data_dir / path)["AI-Generated"] == "true"  # labelled as AI-generated (paper A.6)


def test_a_rerun_with_the_same_inputs_adds_nothing(generate_profile, models, data_dir):
    pm, rm = models
    first = generate_creatives(listed(generate_profile), data_dir, pm, rm)
    table = pd.read_parquet(data_dir / "creatives.parquet")
    again = generate_creatives(listed(generate_profile), data_dir, pm, rm)
    assert again["registered"] == 0 and again["already_registered"] == first["kept"] > 0
    pd.testing.assert_frame_equal(pd.read_parquet(data_dir / "creatives.parquet"), table)


def test_a_product_without_creatives_is_chosen_and_gets_some(generate_profile, models, data_dir):
    pm, rm = models
    creatives = pd.read_parquet(data_dir / "creatives.parquet")
    creatives[creatives["product_id"] != "P00003"].to_parquet(data_dir / "creatives.parquet", index=False)
    profile = dataclasses.replace(
        generate_profile, generate=dataclasses.replace(generate_profile.generate, min_creatives=1)
    )
    report = generate_creatives(profile, data_dir, pm, rm)
    assert report["products"] == 1
    assert (
        (pd.read_parquet(data_dir / "creatives.parquet")["product_id"] == "P00003").sum()
        == report["kept"]
        > 0
    )


def test_unrenderable_and_repeated_candidates_are_counted_not_registered(generate_profile, small_world_dir):
    renderer = make_renderer(generate_profile.render)
    image = Image.open(small_world_dir / "images" / "products" / "P00000.png").convert("RGBA")
    candidates = render_candidates(renderer, "P00000", image, ["", "on a sunny beach", "on a sunny beach"], 0)
    assert [c.status for c in candidates] == ["unrenderable", "rendered", "repeated"]
    assert candidates[1].image is not None and candidates[0].image is None


def test_registration_is_all_or_nothing(data_dir):
    before = (data_dir / "creatives.parquet").read_bytes()
    rows = [{"creative_id": f"G{i:015d}", "product_id": "P00000", "description": "x"} for i in range(2)]
    images = {
        rows[0]["creative_id"]: Image.new("RGB", (8, 8)),
        rows[1]["creative_id"]: Image.new("RGB", (8, 8)),
    }
    with pytest.raises(ValueError, match="AI-generated label"):  # an unlabelled image is refused mid-way
        register(data_dir, rows, images)
    assert (data_dir / "creatives.parquet").read_bytes() == before and not (data_dir / GENERATED).exists()
    assert not list(data_dir.glob(".generate-staging-*")) and not (data_dir / "images" / "generated").exists()


def test_bad_input_is_named(generate_profile, models, data_dir, capsys):
    pm, rm = models
    with pytest.raises(UserError, match="generate: keep must be|keep between 1 and candidates"):
        load_profile("local", ["generate.candidates=2", "generate.keep=3"])
    catalog = pd.read_parquet(data_dir / "catalog.parquet")
    catalog.loc[catalog["product_id"] == "P00000", "image_path"] = "images/products/missing.png"
    catalog.to_parquet(data_dir / "catalog.parquet", index=False)
    with pytest.raises(UserError, match=r"product 'P00000' has no image at image_path="):
        generate_creatives(listed(generate_profile), data_dir, pm, rm)
    with pytest.raises(SystemExit) as done:
        main(["generate", "--data", str(data_dir), "--pm", str(rm.parent), "--rm", str(rm)])
    assert done.value.code == 2 and "holds no model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["generate", "--data", str(data_dir), "--pm", str(pm), "--rm", str(rm), "--adapter", str(rm)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "--adapter" in err and "adapter_config.json" in err
    with pytest.raises(UserError, match="online.n_impressions|n_impressions and batch_size"):
        load_profile("local", ["generate.online.n_impressions=0"])
    assert not (data_dir / GENERATED).exists()


def test_unsafe_renders_are_counted_and_never_registered(models, data_dir, tiny_sd_dir):
    """The SD safety checker (tiny, its threshold lowered so that it flags every image) rejects every
    candidate: the pass keeps none, counts them as unsafe, and registration adds nothing."""
    from caig.generate.run import Generator
    from caig.render.diffusers_models import set_safety_threshold

    pm, rm = models
    diffusers = ["render.backend=diffusers", f"render.base_model={tiny_sd_dir}", "render.steps=2",
                 "render.device=cpu", "render.channels_last=false", "render.batch_size=1"]  # fmt: skip
    profile = load_profile("local", [*SMALL_WORLD, *GENERATE, *diffusers])
    generator = Generator(profile, data_dir, pm, rm)
    set_safety_threshold(generator.renderer.pipe.safety_checker, -1.0)
    result = generator.generate(["P00001", "P00002"])
    assert result.rows == [] and result.images == {}
    assert result.not_kept["unsafe"] + result.not_kept["repeated"] == 2 * profile.generate.candidates
    assert result.not_kept["unsafe"] >= 2
    assert register(data_dir, result.rows, result.images) == {"registered": 0, "already_registered": 0}
    assert not (data_dir / GENERATED).exists()
