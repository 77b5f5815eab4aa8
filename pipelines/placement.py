"""How a step runs on the cluster: GPUs and node pool, volumes, secrets, caching, retries.

Only the compiled YAML carries these settings; the KFP local runner ignores them.
"""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

from caig.orchestration.config import OrchestrationConfig


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


def with_data(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Mount the PVC holding the data locations (the ``data`` parameter points below the mount)."""
    if config.data_pvc:
        kubernetes.mount_pvc(task, pvc_name=config.data_pvc, mount_path=config.data_mount_path)
    return task


def on_gpu(task: PipelineTask, config: OrchestrationConfig) -> PipelineTask:
    """Request GPUs on the GPU node pool: accelerator, node selector, tolerations, requests, models, secrets."""
    gpu = config.gpu
    task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.gpus_per_step)
    task.set_cpu_request(gpu.cpu_request).set_memory_request(gpu.memory_request)
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
