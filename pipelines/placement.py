"""How a step runs on the cluster: its size, GPUs and node pool, volumes, secrets, identity, caching, retries.

Only the compiled YAML carries these settings; the KFP local runner ignores them. Every step gets CPU and
memory requests and limits and runs as the images' non-root user (``on_cpu`` or ``on_gpu``); a step that writes what a server reads mounts the
server's PVC: features (``with_features``), register (``with_runs``), generate (``with_data``). A training
step on more than one GPU is a CPU step launching a TrainJob (``launches_trainjob``).
"""

from __future__ import annotations

from components.configure import resolve_as_of
from kfp import kubernetes
from kfp.dsl import PipelineTask

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.images import IMAGE_UID
from caig.orchestration.trainjob import POD_NAME_ENV, POD_UID_ENV


def deterministic(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Same inputs, same outputs: let KFP reuse an earlier run's outputs (if caching is on)."""
    return task.set_caching_options(config.cache)


def flaky(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Talks to the network or reads data that changes: never cached, retried with exponential backoff."""
    return retried(task.set_caching_options(False), config)


def retried(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Retry with exponential backoff (network hiccups, preempted GPU nodes)."""
    retry = config.retry
    if retry.attempts:
        task.set_retry(
            num_retries=retry.attempts,
            backoff_duration=retry.backoff,
            backoff_factor=retry.backoff_factor,
            backoff_max_duration=retry.backoff_max,
        )
    return task


def with_object_store(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Object-store credentials from the Kubernetes secret, as environment variables."""
    if config.object_store_secret:
        kubernetes.use_secret_as_env(
            task, secret_name=config.object_store_secret, secret_key_to_env=dict(config.object_store_env)
        )
    return task


def with_models(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Mount the PVC holding base model weights (model paths in the profile point below the mount)."""
    if config.model_pvc:
        kubernetes.mount_pvc(task, pvc_name=config.model_pvc, mount_path=config.model_mount_path)
    return task


def with_runs(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Mount the runs PVC: register publishes trained runs there, the servers load them from it, the refresh
    and caig-generate read the registered RM / PM from it."""
    if config.runs_pvc:
        kubernetes.mount_pvc(task, pvc_name=config.runs_pvc, mount_path=config.runs_mount_path)
    return task


def with_features(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Mount the PVC of the Feast store (``features.store_dir`` lies below the mount), the one the feature
    server and the selector read, and give the step the online store's password (it materializes there)."""
    if config.features_pvc:
        kubernetes.mount_pvc(task, pvc_name=config.features_pvc, mount_path=config.features_mount_path)
    if config.online_store_secret:
        kubernetes.use_secret_as_env(
            task, secret_name=config.online_store_secret, secret_key_to_env=dict(config.online_store_env)
        )
        kubernetes.add_pod_label(task, "caig.io/redis-client", "true")  # Redis admits labelled pods only
    return task


def with_register_identity(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Mount the ``caig-register`` service-account token on this step only: the register step talks to the
    Kubernetes API as that identity (KFP sets no service account per step, only per run)."""
    if config.register_identity_secret:
        kubernetes.use_secret_as_volume(
            task, secret_name=config.register_identity_secret, mount_path=config.register_identity_path
        )
        kubernetes.add_pod_label(task, "caig.io/kube-api-client", "true")  # egress to the Kubernetes API
    return task


def launches_trainjob(task: PipelineTask, name: str, config: OrchestrationConfig) -> PipelineTask:
    """A CPU step that runs a multi-GPU training step as a Kubeflow Trainer TrainJob
    (``caig.orchestration.trainjob``): sized like a CPU step, the runs volume mounted (the inputs and output
    are staged there for the TrainJob's nodes), the ``caig-trainjob-launcher`` token if configured (create,
    get, delete TrainJobs; read node 0's log), egress to the Kubernetes API, and its own pod's name and UID
    (the TrainJob's owner: deleting the pod deletes the job)."""
    with_runs(on_cpu(task, name, config), config)
    kubernetes.use_field_path_as_env(task, env_name=POD_NAME_ENV, field_path="metadata.name")
    kubernetes.use_field_path_as_env(task, env_name=POD_UID_ENV, field_path="metadata.uid")
    if config.trainer_identity_secret:
        kubernetes.use_secret_as_volume(
            task, secret_name=config.trainer_identity_secret, mount_path=config.trainer_identity_path
        )
    kubernetes.add_pod_label(task, "caig.io/kube-api-client", "true")
    return task


def restricted(task: PipelineTask) -> PipelineTask:
    """Run the step's container as the images' non-root user (Pod Security ``restricted``, which the
    namespace enforces); KFP's backend adds the rest: no privilege escalation, no capabilities, seccomp
    ``RuntimeDefault``."""
    return kubernetes.set_security_context(
        task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True
    )


def on_cpu(task: PipelineTask, name: str, config: OrchestrationConfig) -> PipelineTask:
    """A CPU step called ``name``: requests and limits from ``orchestration.step_resources[name]``, else
    ``orchestration.cpu``."""
    size = config.resources_for(name)
    restricted(task.set_display_name(name))
    task.set_cpu_request(size.cpu_request).set_cpu_limit(size.cpu_limit)
    return task.set_memory_request(size.memory_request).set_memory_limit(size.memory_limit)


def run_now(as_of, config: OrchestrationConfig) -> PipelineTask:
    """The step that fixes the run's "now" once, for every step after it: ``as_of`` if given, else the time
    it runs. Never cached: an empty ``as_of`` means a new time on every run."""
    return on_cpu(resolve_as_of(as_of=as_of), "as-of", config).set_caching_options(False)


def with_data(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Mount the PVC holding the data locations (the ``data`` parameter points below the mount)."""
    if config.data_pvc:
        kubernetes.mount_pvc(task, pvc_name=config.data_pvc, mount_path=config.data_mount_path)
    return task


def on_gpu(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Request GPUs on the GPU node pool: accelerator, node selector, tolerations, requests, models, secrets."""
    gpu = config.gpu
    restricted(task)
    task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.gpus_per_step)
    task.set_cpu_request(gpu.cpu_request).set_memory_request(gpu.memory_request)
    task.set_cpu_limit(gpu.cpu_limit).set_memory_limit(gpu.memory_limit)
    for label, value in gpu.node_selector.items():
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
    for toleration in gpu.tolerations:
        kubernetes.add_toleration(
            task,
            key=toleration.key or None,
            operator=toleration.operator,
            value=toleration.value or None,
            effect=toleration.effect or None,
        )
    return with_object_store(with_models(task, config), config)
