"""A multi-GPU step's TrainJob path (``caig.orchestration.trainjob.run_step``) against a Kubernetes API
stand-in on loopback, through the real kubernetes client: the TrainJob sent, the step following it to its end
with node 0's log in the step's output, a failing job failing the step with its reason, a retry replacing the
earlier attempt's job, and SIGTERM (KFP cancelling the step) deleting the job."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy import crd_schemas
from tests.deploy.loopback import JsonHandler

from caig.errors import UserError
from caig.orchestration.trainjob import (
    PROFILE_FILE,
    STAGING_DIR,
    StepCancelled,
    TrainJobSettings,
    build_trainjob,
    job_name,
    run_step,
)
from caig.profile import load_profile

TRAINJOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/caig/trainjobs"
PODS = "/api/v1/namespaces/caig/pods"
LOG = "epoch 1 loss 0.42\nsaved checkpoint-10\n"


class FakeApiServer(ThreadingHTTPServer):
    """TrainJobs by path and a scripted Trainer: after ``polls_to_finish`` reads of a created job it writes
    ``result`` into the staged output (what node 0 would write) and sets the ``finish`` condition. Every
    request is recorded as (method, path, query, body)."""

    def __init__(self, staging_root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str, Any]] = []
        self.staging_root = staging_root
        self.polls_to_finish = 3
        self.finish: dict[str, str] = {"type": "Complete", "status": "True", "reason": "JobSetCompleted"}
        self.cancel_on_poll = False  # send SIGTERM to this process on the first read of a created job
        self.result = {"model/weights.bin": b"trained"}  # what node 0 writes into the output
        self.polls = 0

    def methods(self, prefix: str) -> list[str]:
        return [method for method, path, _, _ in self.requests if path.startswith(prefix)]


class _Handler(JsonHandler):
    server: FakeApiServer

    def _record(self, body: Any = None) -> str:
        path, _, query = self.path.partition("?")
        self.server.requests.append((self.command, path, query, body))
        return path

    def _not_found(self) -> None:
        self._send(
            404,
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404},
        )

    def do_GET(self) -> None:  # noqa: N802
        path = self._record()
        server = self.server
        if path == PODS:
            created = [o for o in server.objects.values() if o.get("kind") == "TrainJob"]
            pods = [
                {"metadata": {"name": f"{o['metadata']['name']}-node-0-0-x"}, "status": {"phase": "Running"}}
                for o in created
            ]
            self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods})
            return
        if path.startswith(PODS) and path.endswith("/log"):
            data = LOG.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        job = server.objects.get(path)
        if job is None:
            self._not_found()
            return
        if job.get("created_here"):
            server.polls += 1
            if server.cancel_on_poll:
                os.kill(os.getpid(), signal.SIGTERM)
            if server.polls >= server.polls_to_finish and "status" not in job:
                out = server.staging_root / STAGING_DIR / job["metadata"]["name"] / "out"
                for relative, data in server.result.items():
                    (out / relative).parent.mkdir(parents=True, exist_ok=True)
                    (out / relative).write_bytes(data)
                job["status"] = {"conditions": [dict(server.finish)]}
        self._send(200, {k: v for k, v in job.items() if k != "created_here"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        path = self._record(body)
        self.server.objects[f"{path}/{body['metadata']['name']}"] = {**body, "created_here": True}
        self._send(201, body)

    def do_DELETE(self) -> None:  # noqa: N802
        path = self._record()
        if self.server.objects.pop(path, None) is None:
            self._not_found()
            return
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


@contextmanager
def running_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    """The stand-in on a free loopback port, with a kubeconfig pointing at it ($KUBECONFIG); the runs
    volume at ``tmp_path/runs``."""
    server = FakeApiServer(tmp_path / "runs")
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"server": f"http://127.0.0.1:{server.server_port}"}
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": "test", "user": {"token": "test-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def api(tmp_path, monkeypatch):
    with running_api(tmp_path, monkeypatch) as server:
        yield server


def _settings(tmp_path: Path, **changes: Any) -> TrainJobSettings:
    config = load_profile(
        "production", ["orchestration.gpu.nodes=2", "orchestration.gpu.gpus_per_step=4"]
    ).orchestration
    settings = TrainJobSettings.from_config(config, "ghcr.io/caig/caig-train:test")
    settings.work_mount_path, settings.poll_s = str(tmp_path / "runs"), 0.01
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


def _step(tmp_path: Path) -> tuple[dict[str, str], str, list[str]]:
    """Two staged inputs (a directory and a file) as KFP's launcher would have downloaded them."""
    world = tmp_path / "artifacts" / "world"
    (world / "images").mkdir(parents=True)
    (world / "catalog.parquet").write_bytes(b"catalog")
    pairs = tmp_path / "artifacts" / "pairs.parquet"
    pairs.write_bytes(b"pairs")
    output = str(tmp_path / "artifacts" / "rm")
    args = [
        "rm",
        "train",
        "--profile",
        PROFILE_FILE,
        "--pairs",
        str(pairs),
        "--world",
        str(world),
        "--out",
        output,
    ]
    return {"world": str(world), "pairs": str(pairs)}, output, args


def test_trainjob_object_is_what_the_profile_asks_and_validates(tmp_path):
    settings = _settings(tmp_path)
    inputs, output, args = _step(tmp_path)
    job = build_trainjob(settings, job_name("train-rm", output), args, inputs, output)
    assert crd_schemas.errors(job) == []
    spec = job["spec"]
    assert spec["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "TrainingRuntime",
        "name": "caig-torch-deepspeed",
    }
    trainer = spec["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 4)
    # the profile's 16 CPUs and 96G per process, 4 processes (one per GPU) a node
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "64", "memory": "384G", "nvidia.com/gpu": "4"}
    assert trainer["command"] == ["torchrun", "--module", "caig"] and trainer["args"] == args
    pod = spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    assert pod["name"] == "node"
    pod = pod["template"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    # every input at its launcher path, read-only; the output writable; the base weights read-only
    assert mounts[inputs["world"]]["readOnly"] and mounts[inputs["pairs"]]["readOnly"]
    assert "readOnly" not in mounts[output] and mounts[output]["subPath"].endswith("/out")
    assert mounts["/mnt/models"]["readOnly"] and mounts[PROFILE_FILE]["readOnly"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims[mounts[output]["name"]] == "caig-runs" and claims["models"] == "caig-models"
    assert pod["nodeSelector"] == {"caig.io/node-pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    broken = json.loads(json.dumps(job))
    broken["spec"]["trainer"]["numNodes"] = "2"
    assert any("is not of type 'integer'" in e for e in crd_schemas.errors(broken))


def test_bad_settings_name_the_key(tmp_path):
    multi = ["orchestration.gpu.nodes=2", "orchestration.gpu.gpus_per_step=4"]
    with pytest.raises(UserError, match="orchestration: runs_pvc must name a ReadWriteMany PVC"):
        load_profile("production", [*multi, "orchestration.runs_pvc="])
    with pytest.raises(UserError, match="gpus_per_step 16 is above max_per_node 8"):
        load_profile("production", ["orchestration.gpu.gpus_per_step=16"])
    with pytest.raises(UserError, match="orchestration.gpu: nodes must be at least 1"):
        load_profile("production", ["orchestration.gpu.nodes=0"])


def test_step_follows_its_trainjob_to_the_end(api, tmp_path, monkeypatch):
    monkeypatch.setenv("CAIG_POD_NAME", "caig-training-abc-pretrain-1")
    monkeypatch.setenv("CAIG_POD_UID", "0b5e-uid")
    settings = _settings(tmp_path)
    inputs, output, args = _step(tmp_path)
    profile = {"name": "production", "reward": {"epochs": 1.0}}
    log = io.StringIO()
    run_step(settings, "train-rm", profile, args, inputs, output, out=log)
    name = job_name("train-rm", output)
    created = [body for method, path, _, body in api.requests if method == "POST"]
    owner = {"apiVersion": "v1", "kind": "Pod", "name": "caig-training-abc-pretrain-1", "uid": "0b5e-uid"}
    assert created == [build_trainjob(settings, name, args, inputs, output, owner=owner)]
    assert created[0]["metadata"]["ownerReferences"] == [owner]  # deleting the step's pod deletes the job
    assert crd_schemas.errors(created[0]) == []
    assert api.methods(f"{TRAINJOBS}/{name}")[0] == "GET"  # no leftover from an earlier attempt
    assert api.methods(f"{TRAINJOBS}/{name}")[-1] == "DELETE"  # a finished job is cleaned up
    assert (Path(output) / "model" / "weights.bin").read_bytes() == b"trained"
    assert LOG in log.getvalue()
    assert not (tmp_path / "runs" / STAGING_DIR / name).exists()


def test_stages_inputs_and_profile_where_the_job_mounts_them(api, tmp_path):
    settings = _settings(tmp_path)
    inputs, output, args = _step(tmp_path)
    api.finish = {"type": "Failed", "status": "True", "reason": "JobSetFailed", "message": "node-0 exited 1"}
    with pytest.raises(UserError):
        run_step(settings, "train-rm", {"name": "x", "seed": 3}, args, inputs, output, out=io.StringIO())
    staged = tmp_path / "runs" / STAGING_DIR / job_name("train-rm", output)
    job = build_trainjob(settings, job_name("train-rm", output), args, inputs, output)
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    for mount in pod["template"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]:
        if mount["name"].startswith("work"):
            assert (tmp_path / "runs" / mount["subPath"]).exists(), mount
    assert yaml.safe_load((staged / "profile.yaml").read_text()) == {"name": "x", "seed": 3}
    assert (staged / "in" / "world" / "catalog.parquet").read_bytes() == b"catalog"
    assert (staged / "in" / "pairs").read_bytes() == b"pairs"


def test_failing_trainjob_fails_the_step_with_its_reason(api, tmp_path):
    settings = _settings(tmp_path)
    inputs, output, args = _step(tmp_path)
    api.finish = {"type": "Failed", "status": "True", "reason": "JobSetFailed", "message": "node-1 OOMKilled"}
    with pytest.raises(UserError) as failed:
        run_step(settings, "train-rm", {}, args, inputs, output, out=io.StringIO())
    name = job_name("train-rm", output)
    assert str(failed.value) == f"TrainJob caig/{name} failed: JobSetFailed: node-1 OOMKilled"
    assert "DELETE" not in api.methods(TRAINJOBS)  # kept for `kubectl describe`; a retry replaces it
    assert not Path(output).exists()
    assert (tmp_path / "runs" / STAGING_DIR / name / "out" / "model").is_dir()  # checkpoints for the retry


def test_retry_replaces_the_earlier_attempt(api, tmp_path):
    settings = _settings(tmp_path)
    inputs, output, args = _step(tmp_path)
    name = job_name("train-rm", output)
    api.objects[f"{TRAINJOBS}/{name}"] = {"kind": "TrainJob", "metadata": {"name": name}, "status": {}}
    run_step(settings, "train-rm", {}, args, inputs, output, out=io.StringIO())
    methods = api.methods(f"{TRAINJOBS}/{name}")
    assert methods[:3] == ["GET", "DELETE", "GET"] and "POST" in api.methods(TRAINJOBS)


def test_sigterm_deletes_the_trainjob(api, tmp_path):
    settings = _settings(tmp_path)
    inputs, output, args = _step(tmp_path)
    api.cancel_on_poll = True
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StepCancelled):
        run_step(settings, "train-rm", {}, args, inputs, output, out=io.StringIO())
    name = job_name("train-rm", output)
    assert api.methods(f"{TRAINJOBS}/{name}")[-1] == "DELETE"
    assert f"{TRAINJOBS}/{name}" not in api.objects
    assert not (tmp_path / "runs" / STAGING_DIR / name).exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the step's own handler is restored


def test_job_names_are_labels_and_stable_per_output():
    name = job_name("train-rm", "/minio/mlpipeline/v2/artifacts/run/rm")
    assert name == job_name("train-rm", "/minio/mlpipeline/v2/artifacts/run/rm")
    assert name != job_name("train-rm", "/minio/mlpipeline/v2/artifacts/other/rm")
    assert len(job_name("x" * 80, "o")) <= 63 and name.startswith("caig-train-rm-")
