"""The profile as one pipeline parameter: JSON text round trip, Struct-style floats, clear errors."""

from __future__ import annotations

import json

import pytest

from caig.errors import UserError
from caig.orchestration.params import (
    profile_from_parameter,
    profile_parameter,
    restore_ints,
    with_run_parameters,
)
from caig.profile import Profile, load_profile


def test_json_parameter_round_trips_the_profile(small_profile):
    text = profile_parameter(small_profile)
    assert isinstance(text, str)
    assert profile_from_parameter(text) == small_profile


def test_null_values_survive(small_profile):
    profile = load_profile("production")
    assert profile.reward.train_pairs.max_ratio is None and profile.mllm.random_weights is None
    assert profile_from_parameter(profile_parameter(profile)) == profile


def test_dict_with_struct_doubles_gets_ints_back(small_profile):
    # What a KFP Struct parameter delivers: every number a double.
    doubled = json.loads(json.dumps(small_profile.to_dict()), parse_int=float)
    assert doubled["world"]["n_products"] == 48.0
    profile = profile_from_parameter(doubled)
    assert profile.world.n_products == 48 and isinstance(profile.world.n_products, int)
    assert profile == small_profile


def test_restore_ints_leaves_real_floats_and_float_fields_alone():
    data = {"world": {"n_products": 10.0, "base_ctr": 1.0, "segment_mix": [0.5, 0.5]}}
    restored = restore_ints(Profile, data)
    assert restored["world"]["n_products"] == 10 and isinstance(restored["world"]["n_products"], int)
    assert isinstance(restored["world"]["base_ctr"], float)


def test_non_integral_float_for_an_int_field_is_still_an_error():
    with pytest.raises(UserError, match=r"world\.n_products' must be int"):
        profile_from_parameter({"world": {"n_products": 10.5}})


def test_bad_json_names_the_parameter():
    with pytest.raises(UserError, match="parameter 'profile': not valid JSON"):
        profile_from_parameter("{not json")
    with pytest.raises(UserError, match="must be a mapping"):
        profile_from_parameter("[1, 2]")


def test_run_parameters_land_in_the_profile(small_profile):
    profile = with_run_parameters(small_profile, rounds=2, beta=0.1, base_model="")
    assert (profile.pcpo.rounds, profile.pcpo.beta) == (2, 0.1)
    assert profile.mllm == small_profile.mllm  # empty base model: the profile's own preset
    assert profile.world == small_profile.world and small_profile.pcpo.rounds != 2


def test_a_base_model_path_switches_to_loading_it(small_profile):
    profile = with_run_parameters(small_profile, 4, 0.5, "/mnt/models/llava")
    assert (profile.mllm.preset, profile.mllm.model_path) == ("llava-v1.6-7b", "/mnt/models/llava")


def test_bad_run_parameters_are_user_errors_naming_the_field(small_profile):
    with pytest.raises(UserError, match="rounds / beta / base_model.*rounds and products_per_round"):
        with_run_parameters(small_profile, rounds=0, beta=0.5, base_model="")
    with pytest.raises(UserError, match="beta and beta_p must be > 0"):
        with_run_parameters(small_profile, rounds=1, beta=0.0, base_model="")


def test_as_of_defaults_to_the_world_end_only_where_a_world_is_built():
    from caig.orchestration.params import default_as_of, world_as_of

    local = load_profile("local")
    assert default_as_of(local) == world_as_of(local.world)
    assert default_as_of(load_profile("production")) == ""  # resolved when a run starts


def test_as_of_is_resolved_at_run_time():
    from datetime import UTC, datetime, timedelta

    from caig.orchestration.params import resolve_as_of

    assert resolve_as_of("2026-10-29") == "2026-10-29T00:00:00+00:00"  # naive means UTC
    assert resolve_as_of("2026-10-29T05:00:00+02:00") == "2026-10-29T05:00:00+02:00"
    before = datetime.now(UTC).replace(microsecond=0)
    now = datetime.fromisoformat(resolve_as_of(""))
    assert before <= now <= datetime.now(UTC) + timedelta(seconds=1) and now.tzinfo is not None
    with pytest.raises(UserError, match="as_of 'yesterday' is not an ISO-8601 time"):
        resolve_as_of("yesterday")
