"""Run a GPU training step as a Kubeflow Trainer v2 ``TrainJob``, across nodes and GPUs, from a pipeline step.

A profile asking for more than one GPU per training step (``orchestration.gpu.nodes * gpus_per_step > 1``)
compiles the step into a small launcher that calls :func:`run_step`: it stages the step's KFP inputs on the
runs volume (``orchestration.runs_pvc``, ReadWriteMany), creates a TrainJob on the namespaced
``TrainingRuntime`` of ``manifests/trainer/`` (``orchestration.trainer_runtime``: torch policy, ``torchrun``
with the ``PET_*`` variables the Trainer sets), follows it while streaming node 0's log into the step's
log, copies the output back into the step's output artifact, and fails with the TrainJob's own reason. Each
staged input is mounted on every node at the very path it has in the launcher, and the output likewise, so the
TrainJob runs the same ``caig pretrain|rm train|pcpo`` command line the one-GPU step's code takes, with the
same paths. The staging directory is named after the output, so a retried step (preempted nodes) resumes
from the checkpoints its last TrainJob left there. SIGTERM (KFP cancels a run by deleting the step's pod)
deletes the TrainJob; so does Kubernetes' garbage collector once the launcher's pod is gone, should the
signal not reach the step (the TrainJob names that pod as its owner, from ``CAIG_POD_NAME`` /
``CAIG_POD_UID``, which the compiled step sets from the downward API).

The Kubeflow SDK (``kubeflow`` 0.5.0) is not installed in the step images; its TrainerClient neither sets
volume mounts per job nor reads a job's failure message, so this module talks to the API with the
kubernetes client's ``CustomObjectsApi``, lazily imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from caig.errors import UserError
from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.resources import scaled_quantity

log = logging.getLogger("caig.orchestration.trainjob")

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
API_VERSION = f"{GROUP}/{VERSION}"
NODE = "node"  # the Trainer's trainer job and container name (PET_* variables go there)
PATCH_MANAGER = "caig.io/launcher"  # owner of our runtimePatches entry
STAGING_DIR = ".trainjobs"  # below the runs volume's root: one directory per TrainJob
PROFILE_FILE = "/etc/caig/profile.yaml"  # where the step's profile is mounted on every node
LAUNCHER = ["torchrun", "--module", "caig"]  # torchrun reads --nnodes, --node-rank, ... from PET_*
POD_NAME_ENV, POD_UID_ENV = "CAIG_POD_NAME", "CAIG_POD_UID"  # the launcher's own pod (downward API)


@dataclass
class TrainJobSettings:
    """What the compiled launcher step knows about its TrainJob: fixed when the pipeline is compiled."""

    namespace: str
    runtime: str
    image: str
    nodes: int
    gpus_per_node: int
    accelerator: str = "nvidia.com/gpu"
    cpu_request: str = "4"
    cpu_limit: str = "8"
    memory_request: str = "32G"
    memory_limit: str = "48G"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)
    model_pvc: str = ""
    model_mount_path: str = "/mnt/models"
    work_pvc: str = ""  # the runs volume: inputs and output staged below STAGING_DIR
    work_mount_path: str = "/mnt/runs"  # where the launcher mounts it
    object_store_secret: str = ""
    object_store_env: dict[str, str] = field(default_factory=dict)
    identity_path: str = ""  # token directory of caig-trainjob-launcher; empty: the pod's own account
    poll_s: float = 10.0  # how often the launcher reads the TrainJob's status

    @classmethod
    def from_config(cls, config: OrchestrationConfig, image: str) -> TrainJobSettings:
        """The settings of ``config`` (the profile's ``orchestration``), with the training ``image``."""
        gpu = config.gpu
        return cls(
            namespace=config.serving_namespace,
            runtime=config.trainer_runtime,
            image=image,
            nodes=gpu.nodes,
            gpus_per_node=gpu.gpus_per_step,
            accelerator=gpu.accelerator,
            # per GPU in the profile: every GPU of a node runs a process that loads the model in host memory
            cpu_request=scaled_quantity(gpu.cpu_request, gpu.gpus_per_step),
            cpu_limit=scaled_quantity(gpu.cpu_limit, gpu.gpus_per_step),
            memory_request=scaled_quantity(gpu.memory_request, gpu.gpus_per_step),
            memory_limit=scaled_quantity(gpu.memory_limit, gpu.gpus_per_step),
            node_selector=dict(gpu.node_selector),
            tolerations=[_toleration(asdict(t)) for t in gpu.tolerations],
            model_pvc=config.model_pvc,
            model_mount_path=config.model_mount_path,
            work_pvc=config.runs_pvc,
            work_mount_path=config.runs_mount_path,
            object_store_secret=config.object_store_secret,
            object_store_env=dict(config.object_store_env),
            identity_path=config.trainer_identity_path if config.trainer_identity_secret else "",
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainJobSettings:
        return cls(**json.loads(text))


def _toleration(raw: dict[str, str]) -> dict[str, str]:
    """A Kubernetes toleration without the empty fields (empty key: every key; empty effect: every effect)."""
    return {k: v for k, v in raw.items() if v}


def job_name(step: str, output: str | Path) -> str:
    """``caig-<step>-<hash of the output path>``: the same for every retry of a step, so that a retry finds
    its predecessor's checkpoints; an RFC 1035 label of at most 63 characters."""
    digest = hashlib.sha256(str(output).encode()).hexdigest()[:10]
    return f"caig-{step.lower()}"[:40].rstrip("-") + f"-{digest}"


def _staged(name: str, *parts: str) -> str:
    """A staged path relative to the runs volume's root (a subPath)."""
    return "/".join((STAGING_DIR, name, *parts))


def launcher_pod() -> dict[str, Any] | None:
    """An owner reference to the launcher's own pod (None outside a compiled step): the TrainJob goes when
    the pod goes."""
    name, uid = os.environ.get(POD_NAME_ENV), os.environ.get(POD_UID_ENV)
    if not (name and uid):
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}


def build_trainjob(
    settings: TrainJobSettings,
    name: str,
    args: list[str],
    inputs: dict[str, str],
    output: str,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The TrainJob running ``caig ARGS`` under torchrun on ``settings.nodes`` nodes with
    ``settings.gpus_per_node`` GPUs each; ``inputs`` (key -> path in the launcher) are mounted read-only at
    the same paths, ``output`` read-write, the profile at ``PROFILE_FILE`` and the models volume read-only;
    ``owner``: the object whose deletion deletes the TrainJob (the launcher's pod)."""
    pod = _node_pod(settings, name, inputs, output)
    trainer = _trainer(settings, args)
    patch = {"replicatedJobs": [{"name": NODE, "template": {"spec": {"template": {"spec": pod}}}}]}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": settings.namespace,
        "labels": {"app.kubernetes.io/part-of": "caig"},
    }
    if owner:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": metadata,
        "spec": {
            "runtimeRef": {"apiGroup": GROUP, "kind": "TrainingRuntime", "name": settings.runtime},
            "trainer": trainer,
            "runtimePatches": [
                {"manager": PATCH_MANAGER, "trainingRuntimeSpec": {"template": {"spec": patch}}}
            ],
        },
    }


def _node_pod(settings: TrainJobSettings, name: str, inputs: dict[str, str], output: str) -> dict[str, Any]:
    """Each node's pod: the profile, the ``inputs`` (read-only) and the ``output`` staged on the work volume
    and mounted at their launcher paths, the models volume read-only, the GPU nodes' selector and
    tolerations."""
    staged = [(PROFILE_FILE, _staged(name, "profile.yaml"), True)]
    staged += [(path, _staged(name, "in", key), True) for key, path in sorted(inputs.items())]
    staged.append((output, _staged(name, "out"), False))
    # one volume per mount: the Trainer merges patched volume mounts by name
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for index, (path, sub_path, read_only) in enumerate(staged):
        volume = f"work-{index}"
        claim: dict[str, Any] = {"claimName": settings.work_pvc}
        volumes.append({"name": volume, "persistentVolumeClaim": claim})
        mount: dict[str, Any] = {"name": volume, "mountPath": path, "subPath": sub_path}
        mounts.append({**mount, "readOnly": True} if read_only else mount)
    if settings.model_pvc:
        claim = {"claimName": settings.model_pvc, "readOnly": True}
        volumes.append({"name": "models", "persistentVolumeClaim": claim})
        mounts.append({"name": "models", "mountPath": settings.model_mount_path, "readOnly": True})
    return {
        "volumes": volumes,
        "containers": [{"name": NODE, "volumeMounts": mounts}],
        "nodeSelector": dict(settings.node_selector),
        "tolerations": list(settings.tolerations),
    }


def _trainer(settings: TrainJobSettings, args: list[str]) -> dict[str, Any]:
    """The TrainJob's trainer: ``caig ARGS`` under the launcher on every node, with each node's resources
    and the object store's credentials from their Secret."""
    gpus = str(settings.gpus_per_node)
    trainer: dict[str, Any] = {
        "image": settings.image,
        "command": LAUNCHER,
        "args": list(args),
        "numNodes": settings.nodes,
        "numProcPerNode": settings.gpus_per_node,
        "resourcesPerNode": {
            "requests": {
                "cpu": settings.cpu_request,
                "memory": settings.memory_request,
                settings.accelerator: gpus,
            },
            "limits": {
                "cpu": settings.cpu_limit,
                "memory": settings.memory_limit,
                settings.accelerator: gpus,
            },
        },
    }
    if settings.object_store_secret:
        trainer["env"] = [
            {"name": env, "valueFrom": {"secretKeyRef": {"name": settings.object_store_secret, "key": key}}}
            for key, env in sorted(settings.object_store_env.items())
        ]
    return trainer


def outcome(job: dict[str, Any]) -> tuple[str, str] | None:
    """("Complete" | "Failed", reason: message) once the TrainJob has finished, else None."""
    for condition in job.get("status", {}).get("conditions", []):
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            text = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
            return condition["type"], text or "no reason given"
    return None


class StepCancelled(BaseException):
    """The launcher got SIGTERM: KFP deletes a cancelled step's pod."""


@contextmanager
def _cancel_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``StepCancelled`` in the main thread while the TrainJob runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum: int, frame: Any) -> None:
        raise StepCancelled(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stage_inputs(
    settings: TrainJobSettings, name: str, profile: dict[str, Any], inputs: dict[str, str]
) -> Path:
    """Copy the profile and the inputs below ``<runs volume>/.trainjobs/<name>``; keep ``out`` (a retry's
    checkpoints). Returns the staging directory."""
    root = Path(settings.work_mount_path) / STAGING_DIR / name
    (root / "out").mkdir(parents=True, exist_ok=True)
    (root / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    for key, path in inputs.items():
        target = root / "in" / key
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(path).is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
    return root


class TrainJobs:
    """The TrainJob and pod calls of one namespace, through the kubernetes client."""

    def __init__(self, namespace: str, identity_path: str = "") -> None:
        from kubernetes import client

        from caig.deploy.kubeconfig import load_kube_config

        load_kube_config(token_dir=identity_path or None)
        self.namespace = namespace
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()

    def get(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def create(self, body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)
        except ApiException as err:
            raise UserError(f"cannot create TrainJob {body['metadata']['name']}: {_reason(err)}") from None

    def delete(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, propagation_policy="Foreground"
            )
        except ApiException as err:
            if err.status != 404:
                raise

    def node0_pod(self, name: str) -> str | None:
        """The running or finished pod of node 0 of TrainJob ``name`` (its JobSet carries the same name)."""
        selector = (
            f"jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name={NODE},"
            "batch.kubernetes.io/job-completion-index=0"
        )
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        started = [p for p in pods if p.status and p.status.phase not in (None, "Pending")]
        return started[-1].metadata.name if started else None

    def stream_log(self, pod: str, out: TextIO) -> None:
        """Copy the pod's ``node`` container log to ``out`` until the container ends."""
        response = self.core.read_namespaced_pod_log(
            pod, self.namespace, container=NODE, follow=True, _preload_content=False
        )
        for chunk in response.stream(4096):
            out.write(chunk.decode(errors="replace"))
            out.flush()
        response.release_conn()


def _reason(err: Any) -> str:
    try:
        return json.loads(err.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{err.status} {err.reason}"


def _follow_logs(jobs: TrainJobs, name: str, out: TextIO, stop: threading.Event, poll_s: float) -> None:
    """Stream node 0's log; a restarted pod (a new attempt) is streamed again."""
    seen: set[str] = set()
    while not stop.is_set():
        try:
            pod = jobs.node0_pod(name)
            if pod and pod not in seen:
                seen.add(pod)
                jobs.stream_log(pod, out)
                continue
        except Exception as err:  # noqa: BLE001 (logs are a courtesy: never fail the step for them)
            log.warning("cannot read the log of TrainJob %s node 0: %s", name, err)
        stop.wait(poll_s)


def wait_for(jobs: TrainJobs, name: str, poll_s: float, timeout_s: float = 0) -> tuple[str, str]:
    """Poll the TrainJob until it has finished: (Complete | Failed, reason: message)."""
    start = time.monotonic()
    while True:
        job = jobs.get(name)
        if job is None:
            raise UserError(f"TrainJob {name} disappeared before it finished (deleted by someone else?)")
        done = outcome(job)
        if done:
            return done
        if timeout_s and time.monotonic() - start > timeout_s:
            raise UserError(f"TrainJob {name} did not finish within {timeout_s:.0f}s")
        time.sleep(poll_s)


def _remove_leftover(jobs: TrainJobs, name: str, poll_s: float) -> None:
    """Delete an earlier attempt's TrainJob of the same name and wait until it is gone."""
    if jobs.get(name) is None:
        return
    log.info("deleting the earlier attempt's TrainJob %s (its checkpoints stay)", name)
    jobs.delete(name)
    while jobs.get(name) is not None:
        time.sleep(poll_s)


def run_step(
    settings: TrainJobSettings,
    step: str,
    profile: dict[str, Any],
    args: list[str],
    inputs: dict[str, str],
    output: str,
    *,
    out: TextIO | None = None,
    connect: Callable[[str, str], TrainJobs] = TrainJobs,
) -> None:
    """Run ``caig ARGS`` (whose paths are ``inputs``' and ``output``'s) as a TrainJob and copy its output
    into ``output``. Raises ``UserError`` with the TrainJob's reason when it fails; deletes it when the step
    is cancelled (SIGTERM) and when it has succeeded."""
    name, poll_s = job_name(step, output), settings.poll_s
    jobs = connect(settings.namespace, settings.identity_path)
    staging = stage_inputs(settings, name, profile, inputs)
    body = build_trainjob(settings, name, args, inputs, output, owner=launcher_pod())
    stop = threading.Event()
    with _cancel_on_sigterm():
        try:
            _remove_leftover(jobs, name, poll_s)
            jobs.create(body)
            log.info(
                "TrainJob %s/%s: %d node(s) x %d GPU(s)",
                settings.namespace,
                name,
                settings.nodes,
                settings.gpus_per_node,
            )
            logs = threading.Thread(
                target=_follow_logs, args=(jobs, name, out or sys.stdout, stop, poll_s), daemon=True
            )
            logs.start()
            state, reason = wait_for(jobs, name, poll_s)
        except BaseException as err:
            stop.set()
            jobs.delete(name)
            log.info("deleted TrainJob %s", name)
            if isinstance(err, StepCancelled):  # no retry follows a cancelled run: free the volume
                shutil.rmtree(staging, ignore_errors=True)
            raise
        stop.set()
    logs.join(timeout=max(5 * poll_s, 1.0))
    if state == "Failed":
        raise UserError(f"TrainJob {settings.namespace}/{name} failed: {reason}")
    Path(output).mkdir(parents=True, exist_ok=True)
    shutil.copytree(staging / "out", output, dirs_exist_ok=True)
    jobs.delete(name)
    shutil.rmtree(staging, ignore_errors=True)
