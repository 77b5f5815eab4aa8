"""Profiles: typed loading, unknown keys and wrong types named with their file, --set overrides."""

from __future__ import annotations

import pytest
import yaml

from caig.errors import UserError
from caig.profile import load_profile, profile_from_dict


def test_local_and_production_profiles_load():
    local = load_profile("local")
    production = load_profile("production")
    assert local.name == "local" and production.name == "production"
    assert local.world.n_products < production.world.n_products
    # the paper's test rule for the RM's test pairs, its train rule for the training pairs
    assert (production.data.pairs.min_impressions, production.data.pairs.max_ratio) == (1000, 1.2)
    assert (production.reward.train_pairs.min_impressions, production.reward.train_pairs.max_ratio) == (
        50,
        None,
    )


def test_an_overlay_extends_a_profile_and_changes_only_what_it_says(tmp_path):
    smoke, production = load_profile("smoke-production"), load_profile("production")
    assert smoke.name == "smoke-production" and smoke.mllm.random_weights is not None
    assert smoke.mllm.system_prompt == production.mllm.system_prompt
    assert (smoke.pretrain.lora_r, smoke.pretrain.max_length) == (production.pretrain.lora_r, 4096)
    assert smoke.pretrain.deepspeed_config == production.pretrain.deepspeed_config
    assert smoke.render.image_size == production.render.image_size == 512
    (tmp_path / "mine.yaml").write_text("extends: smoke-production\npcpo:\n  rounds: 3\n")
    mine = load_profile(str(tmp_path / "mine.yaml"))
    assert mine.pcpo.rounds == 3 and mine.pcpo.products_per_round == smoke.pcpo.products_per_round
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(UserError, match="loops back"):
        load_profile(str(tmp_path / "loop.yaml"))


def test_override_sets_a_nested_value():
    profile = load_profile("local", ["world.n_products=50", "data.pairs.min_ratio_gap=0.1"])
    assert profile.world.n_products == 50
    assert profile.data.pairs.min_ratio_gap == pytest.approx(0.1)


def test_float_in_scientific_notation_without_a_dot_is_a_float():
    profile = load_profile("local", ["reward.learning_rate=1e-4", "curriculum.side_warmup.enabled=true"])
    assert profile.reward.learning_rate == pytest.approx(1e-4) and profile.curriculum.side_warmup.enabled
    with pytest.raises(UserError, match=r"reward\.learning_rate' must be float, got str 'fast'"):
        load_profile("local", ["reward.learning_rate=fast"])


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("world:\n  n_productz: 5\n")
    with pytest.raises(UserError, match=r"bad\.yaml.*world\.n_productz"):
        load_profile(str(path))


def test_wrong_type_names_key_and_expected_type(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("world:\n  n_products: many\n")
    with pytest.raises(UserError, match=r"world\.n_products' must be int"):
        load_profile(str(path))


def test_bad_override_key_is_named():
    with pytest.raises(UserError, match=r"unknown key 'world\.nope'"):
        load_profile("local", ["world.nope=3"])


@pytest.mark.parametrize("old", ["perception", "ad_utility", "side_warmup", "teacher"])
def test_a_moved_key_names_its_new_place_in_one_line(tmp_path, old):
    """The RM's curriculum left the reward section: a profile or an override that still sets it is told where."""
    path = tmp_path / "old.yaml"
    path.write_text(f"extends: local\nreward:\n  learning_rate: 0.001\n  {old}:\n    enabled: true\n")
    for make in (
        lambda: load_profile(str(path)),
        lambda: load_profile("local", [f"reward.{old}.enabled=true"]),
    ):
        with pytest.raises(UserError) as err:
            make()
        message = str(err.value)
        assert f"'reward.{old}' has moved to 'curriculum.{old}'" in message and len(message.splitlines()) == 1
    assert "old.yaml" in _message(lambda: load_profile(str(path)))
    assert "--set" not in _message(lambda: load_profile(str(path)))
    assert f"bad override 'reward.{old}.enabled=true'" in _message(
        lambda: load_profile("local", [f"reward.{old}.enabled=true"])
    )
    assert getattr(load_profile("local", [f"curriculum.{old}.enabled=true"]).curriculum, old).enabled


@pytest.mark.parametrize(
    ("old", "value"),
    [
        ("image_position", "after_text"),
        ("train_both_orders", "true"),
        ("swap_consistent_training", "true"),
        ("ctr_scale", "10.0"),
        ("head_lr_scale", "10"),
    ],
)
def test_a_recipe_key_at_the_top_of_reward_names_reward_recipe_in_one_line(tmp_path, old, value):
    """The switches beyond the paper left the top of the reward section for ``reward.recipe``."""
    path = tmp_path / "old.yaml"
    path.write_text(f"extends: local\nreward:\n  {old}: {value}\n")
    for make in (lambda: load_profile(str(path)), lambda: load_profile("local", [f"reward.{old}={value}"])):
        message = _message(make)
        assert (
            f"'reward.{old}' has moved to 'reward.recipe.{old}'" in message and len(message.splitlines()) == 1
        )
    overrides = [f"reward.recipe.{old}={value}"]
    if old == "swap_consistent_training":
        overrides.append("reward.recipe.train_both_orders=false")  # the local profile trains both orders
    assert getattr(load_profile("local", overrides).reward.recipe, old) == yaml.safe_load(value)


def test_the_curriculum_is_checked_against_the_reward_section():
    with pytest.raises(UserError, match="head 'text' has no CTR branch") as err:
        load_profile(
            "local", ["reward.head=text", "reward.point_weight=0", "curriculum.ad_utility.enabled=true"]
        )
    assert len(str(err.value).splitlines()) == 1 and ": : " not in str(err.value)
    assert load_profile("local", ["reward.head=text", "reward.point_weight=0"]).reward.head == "text"


def _message(load) -> str:
    with pytest.raises(UserError) as err:
        load()
    return str(err.value)


def test_override_without_equals_explains_the_form():
    with pytest.raises(UserError, match="section.key=value"):
        load_profile("local", ["world.n_products"])


def test_invalid_value_is_rejected_by_post_init():
    with pytest.raises(UserError, match="segment_mix"):
        load_profile("local", ["world.segment_mix=[0.5, 0.1, 0.1, 0.1]"])


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown profile 'nosuch'.*local"):
        load_profile("nosuch")


def test_profile_round_trips_through_a_dict():
    profile = load_profile("local", ["world.n_products=42"])
    assert profile_from_dict(profile.to_dict()) == profile
