"""The orchestration section of a profile: loads, validates, reaches --set."""

from __future__ import annotations

import pytest

from caig.errors import UserError
from caig.profile import load_profile


def test_production_places_gpu_steps_on_a_tainted_pool():
    config = load_profile("production").orchestration
    assert config.gpu.accelerator == "nvidia.com/gpu"
    assert config.gpu.node_selector == {"caig.io/node-pool": "gpu"}
    assert config.gpu.tolerations[0].key == "nvidia.com/gpu"
    assert config.model_pvc and not config.object_store_secret  # steps read no object store themselves


def test_production_storage_and_sizes():
    config = load_profile("production").orchestration
    assert (config.runs_pvc, config.features_pvc, config.data_pvc) == (
        "caig-runs",
        "caig-features",
        "caig-data",
    )
    assert config.simulated_world is False and config.register_identity_secret == "caig-register-token"
    assert config.online_store_secret == "caig-redis-auth"  # the features step materializes into Redis
    assert config.resources_for("ingest").memory_limit == "12G"
    assert config.resources_for("report") == config.cpu  # not named: the CPU default
    local = load_profile("local").orchestration
    assert local.simulated_world and not local.runs_pvc and not local.features_pvc


def test_sizes_are_checked_when_the_profile_loads():
    with pytest.raises(UserError, match="memory quantity '4GB'"):
        load_profile("local", ["orchestration.cpu.memory_limit=4GB"])
    with pytest.raises(UserError, match="memory_request 8G is above memory_limit 4G"):
        load_profile("local", ["orchestration.cpu.memory_request=8G"])
    with pytest.raises(UserError, match="CPU quantity '2 cores'"):
        load_profile("local", ["orchestration.gpu.cpu_limit=2 cores"])
    with pytest.raises(UserError, match="runs_mount_path must be an absolute path"):
        load_profile("local", ["orchestration.runs_mount_path=runs"])


def test_overrides_and_validation():
    config = load_profile(
        "local", ["orchestration.gpu.gpus_per_step=4", "orchestration.runs_pvc=runs"]
    ).orchestration
    assert config.gpu.gpus_per_step == 4
    with pytest.raises(UserError, match="gpus_per_step must be at least 1"):
        load_profile("local", ["orchestration.gpu.gpus_per_step=0"])
    with pytest.raises(UserError, match="must be one of 'Exists', 'Equal'"):
        load_profile("local", ["orchestration.gpu.tolerations=[{key: a, operator: Maybe}]"])


def test_refresh_and_register_settings_validate():
    config = load_profile("local", ["orchestration.refresh.prior_strength=20"]).orchestration
    assert config.refresh.prior_strength == 20.0 and config.serving_namespace == "caig"
    with pytest.raises(UserError, match="prior_strength must be > 0"):
        load_profile("local", ["orchestration.refresh.prior_strength=0"])
    with pytest.raises(UserError, match="max_products must be >= 0"):
        load_profile("local", ["orchestration.refresh.max_products=-1"])
    with pytest.raises(UserError, match="serving_namespace must name"):
        load_profile("local", ["orchestration.serving_namespace="])
