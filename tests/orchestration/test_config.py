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
    assert config.model_pvc and config.object_store_secret


def test_overrides_and_validation():
    config = load_profile("local", ["orchestration.gpu.gpus_per_step=4"]).orchestration
    assert config.gpu.gpus_per_step == 4
    with pytest.raises(UserError, match="gpus_per_step must be at least 1"):
        load_profile("local", ["orchestration.gpu.gpus_per_step=0"])
    with pytest.raises(UserError, match="must be one of 'Exists', 'Equal'"):
        load_profile("local", ["orchestration.gpu.tolerations=[{key: a, operator: Maybe}]"])
