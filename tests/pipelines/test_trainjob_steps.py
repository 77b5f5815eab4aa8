"""A profile asking for more than one GPU per training step compiles pre-training, the RM and PCPO / DPO into
CPU steps that launch Kubeflow Trainer TrainJobs, with the node count and GPUs of the profile; a one-GPU
profile (production's default) keeps them in their own GPU pods."""

import json
from pathlib import Path

import pytest
import yaml

from caig.errors import UserError
from caig.orchestration.source import ensure_importable

ROOT = ensure_importable()

from pipelines.compile import compile_pipeline  # noqa: E402

from caig.orchestration.trainjob import TrainJobSettings, build_trainjob  # noqa: E402
from caig.profile import load_profile  # noqa: E402

TRAINING_STEPS = {
    "pretrain": "pretrain-pm",
    "train-rm": "train-rm",
    "pcpo": "optimize-pm",
    "dpo": "optimize-pm",
}
MULTI = ["orchestration.gpu.nodes=2", "orchestration.gpu.gpus_per_step=4"]


def _compile(tmp_path: Path, overrides: list[str]) -> tuple[dict, dict]:
    path = compile_pipeline(
        "caig-training", load_profile("production", overrides), tmp_path / "training.yaml"
    )
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _by_display_name(spec: dict) -> dict[str, tuple[str, dict]]:
    tasks = spec["root"]["dag"]["tasks"]
    return {t["taskInfo"]["name"]: (key, t) for key, t in tasks.items() if not key.startswith("condition")}


def test_multi_gpu_profile_launches_trainjobs(tmp_path):
    spec, k8s = _compile(tmp_path, MULTI)
    executors = spec["deploymentSpec"]["executors"]
    shown = _by_display_name(spec)
    for step, component in TRAINING_STEPS.items():
        key, task = shown[step]
        assert task["componentRef"]["name"].startswith(f"comp-{component}-trainjob"), step
        executor = task["componentRef"]["name"].replace("comp-", "exec-", 1)
        resources = executors[executor]["container"]["resources"]
        assert "accelerator" not in resources, step  # the launcher itself needs no GPU
        assert resources["resourceMemoryLimit"] == "4G", step  # sized as a CPU step (orchestration.cpu)
        job = json.loads(task["inputs"]["parameters"]["job"]["runtimeValue"]["constant"])
        settings = TrainJobSettings(**job)
        assert (settings.nodes, settings.gpus_per_node, settings.runtime) == (2, 4, "caig-torch-deepspeed")
        assert (settings.namespace, settings.work_pvc, settings.model_pvc) == (
            "caig",
            "caig-runs",
            "caig-models",
        )
        assert (
            settings.image == "ghcr.io/caig/caig-train:0.1.0" and settings.memory_limit == "384G"
        )  # 96G per process, 4 a node
        body = build_trainjob(settings, "caig-x-0", ["pretrain"], {}, "/out")
        assert body["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "4"
        placed = k8s[executor]
        assert placed["pvcMount"][0]["mountPath"] == "/mnt/runs" and "nodeSelector" not in placed, step
        assert placed["podMetadata"]["labels"] == {"caig.io/kube-api-client": "true"}, step
        fields = {e["name"]: e["fieldPath"] for e in placed["fieldPathAsEnv"]}
        assert fields == {"CAIG_POD_NAME": "metadata.name", "CAIG_POD_UID": "metadata.uid"}, step
        assert task["retryPolicy"]["maxRetryCount"] == 3, step  # a retry resumes from the staged checkpoints
    # steps that do not train stay in one GPU pod each
    key, task = shown["eval-rm"]
    executor = task["componentRef"]["name"].replace("comp-", "exec-", 1)
    assert executors[executor]["container"]["resources"]["accelerator"]["resourceCount"] == "4"


def test_trainer_identity_is_mounted_on_the_launchers_only(tmp_path):
    spec, k8s = _compile(
        tmp_path, [*MULTI, "orchestration.trainer_identity_secret=caig-trainjob-launcher-token"]
    )
    shown = _by_display_name(spec)
    mounted = set()
    for step, (_key, task) in shown.items():
        executor = task["componentRef"]["name"].replace("comp-", "exec-", 1)
        for secret in k8s.get(executor, {}).get("secretAsVolume", []):
            if secret["secretName"] == "caig-trainjob-launcher-token":
                assert secret["mountPath"] == "/var/run/secrets/caig.io/trainer"
                mounted.add(step)
    assert mounted == set(TRAINING_STEPS)
    job = json.loads(shown["pretrain"][1]["inputs"]["parameters"]["job"]["runtimeValue"]["constant"])
    assert job["identity_path"] == "/var/run/secrets/caig.io/trainer"


def test_one_gpu_profile_keeps_the_in_pod_steps():
    """Production's default (the checked-in YAML, which test_compile.py keeps equal to the code)."""
    compiled = ROOT / "pipelines" / "compiled" / "caig-training.yaml"
    spec = next(yaml.safe_load_all(compiled.read_text()))
    components = {t["componentRef"]["name"] for _, t in _by_display_name(spec).values()}
    assert not any("trainjob" in name for name in components)
    assert {"comp-pretrain-pm", "comp-train-rm", "comp-optimize-pm"} <= components


def test_multi_gpu_without_a_staging_volume_is_refused_at_compile(tmp_path):
    with pytest.raises(UserError, match="orchestration: runs_pvc must name a ReadWriteMany PVC"):
        _compile(tmp_path, [*MULTI, "orchestration.runs_pvc="])


def test_train_rm_launcher_step_runs_its_trainjob(tmp_path, monkeypatch):
    """The compiled launcher's own code (the component's function, as KFP's executor calls it) against the
    Kubernetes stand-in: the TrainJob runs `caig rm train` with the step's paths, and the RM the job wrote
    becomes the step's output with the in-pod step's metadata."""
    from components.reward import train_rm_trainjob
    from kfp.dsl import Dataset, Model
    from tests.orchestration.test_trainjob import running_api

    from caig.orchestration.params import profile_parameter

    profile = load_profile("production", MULTI)
    settings = TrainJobSettings.from_config(profile.orchestration, "ghcr.io/caig/caig-train:test")
    settings.work_mount_path, settings.poll_s = str(tmp_path / "runs"), 0.01
    world, pairs, pm = (tmp_path / "artifacts" / name for name in ("world", "pairs", "pm"))
    for directory in (world, pairs, pm / "model"):
        directory.mkdir(parents=True)
    summary = {"pairs": 120, "steps": 15, "train_loss": 0.61, "method": "full", "head": "classification"}
    rm = Model(uri=str(tmp_path / "artifacts" / "rm"))
    with running_api(tmp_path, monkeypatch) as api:
        api.result = {"train.json": json.dumps(summary).encode(), "rm.json": b"{}"}
        train_rm_trainjob.python_func(
            job=settings.to_json(),
            profile=profile_parameter(profile),
            world=Dataset(uri=str(world)),
            pairs=Dataset(uri=str(pairs)),
            pm=Model(uri=str(pm)),
            rm=rm,
        )
    (created,) = [body for method, _, _, body in api.requests if method == "POST"]
    assert created["spec"]["trainer"]["args"] == [
        "rm",
        "train",
        "--profile",
        "/etc/caig/profile.yaml",
        "--pairs",
        str(pairs),
        "--model",
        str(pm / "model"),
        "--world",
        str(world),
        "--out",
        rm.path,
    ]
    assert rm.metadata == summary and (Path(rm.path) / "rm.json").is_file()


def test_pcpo_launcher_step_runs_its_trainjob(tmp_path, monkeypatch):
    """The PCPO launcher: the TrainJob runs `caig pcpo` with the method and the step's paths (the task mix's
    world named, since it is staged elsewhere), and the run it wrote becomes the step's output and metrics."""
    from components.pcpo import optimize_pm_trainjob
    from kfp.dsl import Dataset, Metrics, Model
    from tests.orchestration.test_trainjob import running_api

    from caig.orchestration.params import profile_parameter

    profile = load_profile("production", MULTI)
    settings = TrainJobSettings.from_config(profile.orchestration, "ghcr.io/caig/caig-train:test")
    settings.work_mount_path, settings.poll_s = str(tmp_path / "runs"), 0.01
    world, tasks, pm, rm = (tmp_path / "artifacts" / name for name in ("world", "tasks", "pm", "rm"))
    for directory in (world, tasks, pm, rm):
        directory.mkdir(parents=True)
    rounds = [{"training": {"loss": 0.6}, "rollout": {"pairs": 7}, "seconds": 3.0}]
    run, summary = Model(uri=str(tmp_path / "artifacts" / "run")), Metrics(uri=str(tmp_path / "m"))
    with running_api(tmp_path, monkeypatch) as api:
        api.result = {"pcpo.json": json.dumps({"method": "dpo", "rounds": rounds}).encode()}
        optimize_pm_trainjob.python_func(
            job=settings.to_json(),
            profile=profile_parameter(profile),
            method="dpo",
            world=Dataset(uri=str(world)),
            tasks=Dataset(uri=str(tasks)),
            pm=Model(uri=str(pm)),
            rm=Model(uri=str(rm)),
            run=run,
            summary=summary,
        )
    (created,) = [body for method, _, _, body in api.requests if method == "POST"]
    args = created["spec"]["trainer"]["args"]
    assert args[:4] == ["pcpo", "--profile", "/etc/caig/profile.yaml", "--method"] and args[4] == "dpo"
    assert dict(zip(args[5::2], args[6::2], strict=True)) == {
        "--pm": str(pm),
        "--rm": str(rm),
        "--tasks": str(tasks),
        "--world": str(world),
        "--out": run.path,
    }
    assert run.metadata["method"] == "dpo" and run.metadata["rounds"] == 1
    assert json.loads(Path(summary.path).read_text())["dpo.train.pairs_by_round"] == [7]
