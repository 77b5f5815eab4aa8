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


TORCH_CPU_STEPS = {"build-base-model"}  # builds or loads the MLLM (torch) on a CPU node: the train image
GPU_STEPS = {
    "pretrain-pm",
    "train-rm",
    "evaluate-rm",
    "optimize-pm",
    "optimize-pm-2",
    "evaluate-runs",
    "online-ab-test",
}


def _mount(claim: str, path: str) -> dict:
    """A PVC mount as kfp-kubernetes compiles it."""
    return {"constant": claim, "mountPath": path, "pvcNameParameter": {"runtimeValue": {"constant": claim}}}


DATA_MOUNT = [_mount("caig-data", "/mnt/data")]


def _executor(spec: dict, task: dict) -> str:
    return task["componentRef"]["name"].replace("comp-", "exec-", 1)


def test_training_pipeline_parameters_and_images():
    spec, _ = _load(COMPILED / "caig-training.yaml")
    assert spec["pipelineInfo"]["name"] == "caig-training"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["profile"]["parameterType"] == "STRING"
    assert '"name": "production"' in params["profile"]["defaultValue"]
    assert params["seed"]["defaultValue"] == 0
    assert params["as_of"]["defaultValue"] == ""  # production: "now" is each run's start, not compile time
    # the per-run knobs default to the production profile's values
    assert params["rounds"]["defaultValue"] == 5 and params["beta"]["defaultValue"] == 0.5
    assert params["base_model"]["defaultValue"] == "/mnt/models/llava-v1.6-vicuna-7b-hf"
    assert params["data"]["defaultValue"] == "" and params["rm_ablation_table"]["defaultValue"] is False
    executors = spec["deploymentSpec"]["executors"]
    for name, task in _tasks(spec).items():
        if name.startswith("condition"):
            continue
        image = executors[_executor(spec, task)]["container"]["image"]
        expected = "caig-train" if name in GPU_STEPS | TORCH_CPU_STEPS else "caig-step"
        assert image == f"ghcr.io/caig/{expected}:0.1.0", name
    assert set(spec["root"]["outputDefinitions"]["artifacts"]) == {"report", "summary", "metrics"}


def test_training_has_every_stage_in_order():
    tasks = _tasks(_load(COMPILED / "caig-training.yaml")[0])
    shown = {t["taskInfo"]["name"]: name for name, t in tasks.items()}
    assert set(shown) == {
        "as-of",
        "configure",
        "world",
        "ingest",
        "validate",
        "rm-pairs",
        "features",
        "task-mix",
        "base-model",
        "pretrain",
        "train-rm",
        "eval-rm",
        "condition-1",
        "pcpo",
        "dpo",
        "evaluate",
        "online-ab",
        "register",
        "report",
    }

    def deps(step: str) -> set[str]:
        return set(tasks[shown[step]].get("dependentTasks", []))

    assert {"build-base-model", "build-tasks"} <= deps("pretrain")
    assert {"pretrain-pm", "build-pairs"} <= deps("train-rm")
    # PCPO and the DPO baseline need the PM and the RM, and not each other: they run side by side
    for method, other in (("pcpo", "optimize-pm-2"), ("dpo", "optimize-pm")):
        assert {"pretrain-pm", "train-rm", "build-tasks"} <= deps(method) and other not in deps(method)
    assert {"optimize-pm", "optimize-pm-2"} <= deps("evaluate")
    assert "evaluate-runs" in deps("register") and "register-models" in deps("report")
    assert {"pretrain-pm", "train-rm", "optimize-pm", "optimize-pm-2"} <= deps("online-ab")
    assert "online-ab-test" in deps("report")
    # "now" is fixed once, at run time, by the as-of step, which is never cached: a new "now" per run
    assert tasks["resolve-as-of"]["inputs"]["parameters"]["as_of"]["componentInputParameter"] == "as_of"
    assert tasks["resolve-as-of"]["cachingOptions"] == {}
    for name in ("ingest-events", "validate-stats", "materialize-features", "register-models"):
        channel = tasks[name]["inputs"]["parameters"]["as_of"]["taskOutputParameter"]
        assert channel["producerTask"] == "resolve-as-of", name
    # the run's knobs reach the profile once, in configure, and every step reads its output
    configure = tasks["configure-run"]["inputs"]["parameters"]
    assert {k: v["componentInputParameter"] for k, v in configure.items() if k != "profile"} == {
        "rounds": "rounds",
        "beta": "beta",
        "base_model": "base_model",
    }
    for name, task in tasks.items():
        if name != "configure-run" and "profile" in task.get("inputs", {}).get("parameters", {}):
            assert (
                task["inputs"]["parameters"]["profile"]["taskOutputParameter"]["producerTask"]
                == "configure-run"
            )


def test_the_rm_ablation_runs_only_when_asked():
    spec, platform = _load(COMPILED / "caig-training.yaml")
    condition = _tasks(spec)["condition-1"]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--rm_ablation_table'] == true"
    )
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["rm-ablation"] and inner["rm-ablation"]["retryPolicy"]["maxRetryCount"] == 3
    assert "exec-rm-ablation" in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_training_caches_deterministic_steps_and_retries_flaky_ones():
    tasks = _tasks(_load(COMPILED / "caig-training.yaml")[0])
    for name in (
        "configure-run",
        "build-world",
        "run-report",
        "validate-stats",
        "build-pairs",
        "build-tasks",
        "build-base-model",
        *GPU_STEPS,
    ):
        assert tasks[name]["cachingOptions"] == {"enableCache": True}, name
    retry = {
        "maxRetryCount": 3,
        "backoffDuration": "60s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "3600s",
    }
    for name in ("ingest-events", "materialize-features", "register-models"):  # data, online store, cluster
        assert tasks[name]["cachingOptions"] == {}, name  # KFP writes enableCache: false as an empty message
        assert tasks[name]["retryPolicy"] == retry, name
    for name in GPU_STEPS:  # preemptible GPU nodes; the training steps resume from their checkpoints
        assert tasks[name]["retryPolicy"] == retry, name
    assert "retryPolicy" not in tasks["build-world"]
    assert tasks["ingest-events"]["dependentTasks"] == ["build-world", "configure-run", "resolve-as-of"]


# CPU steps with Kubernetes settings: the volumes they read or write, the register step's identity.
CPU_STEP_PLATFORM = {
    "build-world": {"pvcMount": DATA_MOUNT},  # reads the data location on the data volume
    "materialize-features": {  # the Feast store on the features volume; materializes into Redis as user caig
        "pvcMount": [_mount("caig-features", "/mnt/features")],
        "secretAsEnv": [
            {
                "keyToEnv": [{"envVar": "CAIG_REDIS_PASSWORD", "secretKey": "password"}],
                "optional": False,
                "secretName": "caig-redis-auth",
                "secretNameParameter": {"runtimeValue": {"constant": "caig-redis-auth"}},
            }
        ],
        "podMetadata": {"labels": {"caig.io/redis-client": "true"}},  # Redis admits labelled pods only
    },
    "register-models": {  # publishes the run on the runs volume, as caig-register
        "pvcMount": [_mount("caig-runs", "/mnt/runs")],
        "secretAsVolume": [
            {
                "mountPath": "/var/run/secrets/caig.io/register",
                "optional": False,
                "secretName": "caig-register-token",
                "secretNameParameter": {"runtimeValue": {"constant": "caig-register-token"}},
            }
        ],
        "podMetadata": {"labels": {"caig.io/kube-api-client": "true"}},  # egress to the Kubernetes API
    },
}


def _placed(k8s: dict, executor: str) -> dict:
    """An executor's Kubernetes settings beyond the non-root user every step gets
    (tests/pipelines/test_step_resources.py checks that)."""
    return {k: v for k, v in k8s.get(executor, {}).items() if k != "securityContext"}


def test_training_gpu_steps_are_placed_on_the_gpu_pool():
    spec, platform = _load(COMPILED / "caig-training.yaml")
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = _tasks(spec)
    for name, task in tasks.items():
        if name.startswith("condition"):
            continue
        executor = _executor(spec, task)
        resources = executors[executor]["container"].get("resources", {})
        if name in GPU_STEPS:
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu", name
            assert resources["accelerator"]["resourceCount"] == "1", name
            assert resources["cpuRequest"] == 8 and resources["memoryRequest"] == 64
            assert resources["resourceCpuLimit"] == "16" and resources["resourceMemoryLimit"] == "96G"
            assert k8s[executor]["nodeSelector"]["labels"] == {"caig.io/node-pool": "gpu"}
            assert k8s[executor]["tolerations"][0]["key"] == "nvidia.com/gpu"
            assert k8s[executor]["pvcMount"][0]["mountPath"] == "/mnt/models"
            assert "secretAsEnv" not in k8s[executor]  # production reads no object store in its steps
        elif name in CPU_STEP_PLATFORM:
            assert "accelerator" not in resources and _placed(k8s, executor) == CPU_STEP_PLATFORM[name], name
        else:
            assert "accelerator" not in resources and _placed(k8s, executor) == {}, name


def test_refresh_pipeline_ranks_with_the_registered_rm_from_the_runs_volume():
    spec, platform = _load(COMPILED / "caig-refresh.yaml")
    assert spec["pipelineInfo"]["name"] == "caig-refresh"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["rm"]["defaultValue"] == ""  # empty: the RM of the run caig-training registered last
    assert params["as_of"]["defaultValue"] == ""  # production: each run's start
    assert set(params) == {"profile", "rm", "seed", "as_of", "data"}
    tasks = _tasks(spec)
    assert {t["taskInfo"]["name"] for t in tasks.values()} == {
        "as-of",
        "new-logs",
        "ingest",
        "validate",
        "rank-creatives",
        "features",
        "report",
    }
    assert not any("importer" in e for e in spec["deploymentSpec"]["executors"].values())
    rank = tasks["rank-creatives"]
    assert rank["inputs"]["parameters"]["rm"]["componentInputParameter"] == "rm"  # resolved by the step
    assert {"resolve-as-of", "validate-stats", "ingest-events"} <= set(rank["dependentTasks"])
    assert "rank-creatives" in tasks["materialize-features"]["dependentTasks"]
    assert rank["cachingOptions"] == {"enableCache": True} and rank["retryPolicy"]["maxRetryCount"] == 3
    for name in ("build-world", "ingest-events", "materialize-features"):  # new data, online store
        assert tasks[name]["cachingOptions"] == {} and tasks[name]["retryPolicy"]["maxRetryCount"] == 3
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    placed = sorted(e for e in k8s if _placed(k8s, e))
    assert placed == ["exec-build-world", "exec-materialize-features", "exec-rank-creatives"]
    assert _placed(k8s, "exec-build-world") == {"pvcMount": DATA_MOUNT}
    assert _placed(k8s, "exec-materialize-features") == CPU_STEP_PLATFORM["materialize-features"]
    assert {m["mountPath"]: m["constant"] for m in k8s["exec-rank-creatives"]["pvcMount"]} == {
        "/mnt/models": "caig-models",
        "/mnt/runs": "caig-runs",
    }
    accelerator = spec["deploymentSpec"]["executors"]["exec-rank-creatives"]["container"]["resources"]
    assert accelerator["accelerator"]["resourceType"] == "nvidia.com/gpu"


def test_gpu_placement_reaches_the_yaml(tmp_path):
    """``on_gpu`` as a GPU step gets it: accelerator, node selector, tolerations, model PVC, secret."""
    overrides = ["orchestration.gpu.gpus_per_step=2", "orchestration.object_store_secret=caig-object-store"]
    config = load_profile("production", overrides).orchestration

    @dsl.pipeline(name="gpu-placement")
    def placed(profile: str):
        flaky(on_gpu(build_world(profile=profile, seed=0, data=""), config), config)

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
        if "importer" in executor:  # the KFP importer runs in KFP's own launcher, no container of ours
            continue
        assert "pip install" not in " ".join(executor["container"]["command"])


def test_generate_pipeline_registers_on_the_gpu_then_refreshes():
    spec, platform = _load(COMPILED / "caig-generate.yaml")
    assert spec["pipelineInfo"]["name"] == "caig-generate"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) == {"profile", "data", "pm", "optimized", "rm", "as_of"}
    assert "defaultValue" not in params["data"]  # a run names the location it registers into
    # empty: the run caig-training registered last, looked up on the runs volume when the step runs
    assert all(params[p]["defaultValue"] == "" for p in ("pm", "optimized", "rm"))
    tasks = _tasks(spec)
    shown = {t["taskInfo"]["name"]: name for name, t in tasks.items()}
    assert set(shown) == {
        "generate", "as-of", "new-logs", "ingest", "validate", "rank-creatives", "features", "report",
    }  # fmt: skip
    generate = tasks["generate-creatives"]
    assert {k: v["componentInputParameter"] for k, v in generate["inputs"]["parameters"].items()} == {
        "profile": "profile",
        "data": "data",
        "pm": "pm",
        "optimized": "optimized",
        "rm": "rm",
    }
    assert generate["cachingOptions"] == {} and generate["retryPolicy"]["maxRetryCount"] == 3
    assert "generate-creatives" in tasks["build-world"]["dependentTasks"]  # the copy holds the new creatives
    assert "generate-creatives" in tasks["refresh-report"]["dependentTasks"]
    executors = spec["deploymentSpec"]["executors"]
    resources = executors["exec-generate-creatives"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert executors["exec-generate-creatives"]["container"]["image"] == "ghcr.io/caig/caig-train:0.1.0"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-generate-creatives"]
    assert k8s["nodeSelector"]["labels"] == {"caig.io/node-pool": "gpu"}
    assert {m["mountPath"] for m in k8s["pvcMount"]} == {"/mnt/models", "/mnt/data", "/mnt/runs"}
