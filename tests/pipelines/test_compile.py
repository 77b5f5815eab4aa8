"""Compiled pipelines: checked-in YAML matches the code, and carries caching, retries and GPU placement."""

# No `from __future__ import annotations`: KFP reads the test pipeline's annotations at runtime.

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from caig.orchestration.source import ensure_importable

ROOT = ensure_importable()
COMPILED = ROOT / "pipelines" / "compiled"

from components.world import build_world  # noqa: E402
from kfp import compiler, dsl  # noqa: E402
from pipelines.compile import PIPELINES  # noqa: E402
from pipelines.placement import flaky, on_gpu  # noqa: E402

from caig.profile import load_profile  # noqa: E402


def _load(path: Path) -> tuple[dict, dict]:
    """The pipeline spec and the platform (Kubernetes) spec of a compiled YAML file."""
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def _tasks(spec: dict) -> dict:
    return spec["root"]["dag"]["tasks"]


def test_checked_in_yaml_matches_the_code(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CAIG_IMAGE_REGISTRY", "CAIG_IMAGE_TAG")}
    subprocess.run(
        [sys.executable, "-m", "caig", "compile", "--out", str(tmp_path)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    fresh = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert fresh == sorted(f"{name}.yaml" for name in PIPELINES)
    assert sorted(p.name for p in COMPILED.glob("*.yaml")) == fresh
    for name in fresh:
        assert (tmp_path / name).read_text() == (COMPILED / name).read_text(), (
            f"pipelines/compiled/{name} is out of date; run `caig compile` and commit pipelines/compiled/"
        )


def test_training_pipeline_parameters_and_images():
    spec, _ = _load(COMPILED / "caig-training.yaml")
    assert spec["pipelineInfo"]["name"] == "caig-training"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["profile"]["parameterType"] == "STRING"
    assert '"name": "production"' in params["profile"]["defaultValue"]
    assert params["seed"]["defaultValue"] == 0
    assert params["as_of"]["defaultValue"] == "2026-10-29T00:00:00+00:00"  # the production world's end
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"ghcr.io/caig/caig-step:0.1.0"}
    assert set(spec["root"]["outputDefinitions"]["artifacts"]) == {"report", "summary", "metrics"}


def test_training_caches_deterministic_steps_and_retries_flaky_ones():
    tasks = _tasks(_load(COMPILED / "caig-training.yaml")[0])
    assert tasks["build-world"]["cachingOptions"] == {"enableCache": True}
    for name in ("run-report", "validate-stats", "build-pairs"):
        assert tasks[name]["cachingOptions"] == {"enableCache": True}
    ingest = tasks["ingest-events"]
    assert ingest["cachingOptions"] == {}  # KFP writes enableCache: false as an empty message
    assert ingest["retryPolicy"] == {
        "maxRetryCount": 3,
        "backoffDuration": "60s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "3600s",
    }
    assert "retryPolicy" not in tasks["build-world"]
    assert ingest["dependentTasks"] == ["build-world"]
    assert sorted(tasks["build-pairs"]["dependentTasks"]) == [
        "build-world",
        "ingest-events",
        "validate-stats",
    ]


def test_gpu_placement_reaches_the_yaml(tmp_path):
    """``on_gpu`` as a GPU step gets it: accelerator, node selector, tolerations, model PVC, secret."""
    config = load_profile("production", ["orchestration.gpu.gpus_per_step=2"]).orchestration

    @dsl.pipeline(name="gpu-placement")
    def placed(profile: str):
        flaky(on_gpu(build_world(profile=profile, seed=0), config), config)

    path = tmp_path / "gpu.yaml"
    compiler.Compiler().compile(placed, str(path))
    spec, platform = _load(path)
    resources = spec["deploymentSpec"]["executors"]["exec-build-world"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "2"
    assert resources["cpuRequest"] == 8 and resources["memoryRequest"] == 64
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-build-world"]
    assert k8s["nodeSelector"]["labels"] == {"caig.io/node-pool": "gpu"}
    assert k8s["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert k8s["pvcMount"][0]["mountPath"] == "/mnt/models"
    assert k8s["pvcMount"][0]["pvcNameParameter"]["runtimeValue"]["constant"] == "caig-models"
    assert k8s["secretAsEnv"][0]["secretName"] == "caig-object-store"
    assert {e["envVar"] for e in k8s["secretAsEnv"][0]["keyToEnv"]} == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert _tasks(spec)["build-world"]["retryPolicy"]["maxRetryCount"] == 3


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_component_skips_the_runtime_kfp_install(name):
    """Images ship kfp; a step must not pip-install anything at run time (no network on GPU nodes)."""
    spec, _ = _load(COMPILED / f"{name}.yaml")
    for executor in spec["deploymentSpec"]["executors"].values():
        assert "pip install" not in " ".join(executor["container"]["command"])
