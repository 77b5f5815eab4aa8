"""Config of the orchestration stage: how pipeline steps are placed on a Kubernetes cluster.

Most settings shape the compiled pipeline YAML (node pools, GPUs, sizes, volumes, secrets, retries): they
are read when a pipeline is compiled or submitted, and ignored by the KFP local runner. ``refresh``,
``serving_namespace``, ``register_dry_run``, ``runs_pvc`` / ``runs_mount_path`` (where register publishes
and where the refresh finds the registered RM) and ``simulated_world`` are read by the steps themselves,
locally too.

Storage: pipeline runs execute in the namespace of the model servers (``serving_namespace``, the Kubeflow
profile namespace), so the steps mount the very PVCs the servers read: ``runs_pvc`` (trained runs, served as
``pvc://<runs_pvc>/<run>``), ``features_pvc`` (the Feast store) and ``data_pvc`` (the data locations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from caig.orchestration.resources import cpu_cores, memory_bytes


@dataclass
class TolerationConfig:
    """One Kubernetes toleration, so that GPU steps may run on the tainted GPU node pool."""

    key: str = "nvidia.com/gpu"  # taint key; empty matches every key (operator must then be Exists)
    operator: Literal["Exists", "Equal"] = "Exists"  # Exists ignores value
    value: str = ""  # taint value, for operator Equal
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = "NoSchedule"  # empty: any effect

    def __post_init__(self) -> None:
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration with an empty key must use operator Exists")
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists must not set a value")


@dataclass
class GpuPoolConfig:
    """Where and with what GPU steps (pre-training, RM, PCPO, DPO) run."""

    accelerator: str = "nvidia.com/gpu"  # resource name requested with set_accelerator_type
    gpus_per_step: int = 1  # accelerators of each GPU step, per node
    nodes: int = 1  # nodes of each GPU training step; nodes * gpus_per_step > 1 runs it as a TrainJob
    max_per_node: int = 8  # GPUs one node of the pool has: gpus_per_step above it is refused at compile
    node_selector: dict[str, str] = field(default_factory=lambda: {"caig.io/node-pool": "gpu"})  # pool labels
    tolerations: list[TolerationConfig] = field(default_factory=lambda: [TolerationConfig()])  # pool taints
    cpu_request: str = "4"  # CPU request of a GPU step's process (Kubernetes quantity); a TrainJob node runs
    # one process per GPU and asks gpus_per_step times each figure
    memory_request: str = "32G"  # memory request per process (each loads the model in host memory first)
    cpu_limit: str = "8"  # CPU limit per process
    memory_limit: str = "48G"  # memory limit per process (a 7B model in bf16 passes through host memory)

    def __post_init__(self) -> None:
        if not self.accelerator:
            raise ValueError("accelerator must name a resource, e.g. nvidia.com/gpu")
        if self.gpus_per_step < 1:
            raise ValueError("gpus_per_step must be at least 1")
        if self.nodes < 1:
            raise ValueError("nodes must be at least 1")
        if self.gpus_per_step > self.max_per_node:
            raise ValueError(
                f"gpus_per_step {self.gpus_per_step} is above max_per_node {self.max_per_node} (the GPUs one "
                "node has): lower gpus_per_step and raise nodes"
            )
        check_sizes(self.cpu_request, self.cpu_limit, self.memory_request, self.memory_limit)

    @property
    def total(self) -> int:
        """GPUs of one training step across all its nodes."""
        return self.nodes * self.gpus_per_step


@dataclass
class StepResources:
    """Requests and limits of one CPU pipeline step (Kubernetes quantities: '500m', '2', '4G', '512Mi')."""

    cpu_request: str = "500m"  # CPU request of the step
    cpu_limit: str = "2"  # CPU limit of the step
    memory_request: str = "2G"  # memory request of the step
    memory_limit: str = "4G"  # memory limit of the step

    def __post_init__(self) -> None:
        check_sizes(self.cpu_request, self.cpu_limit, self.memory_request, self.memory_limit)


def check_sizes(cpu_request: str, cpu_limit: str, memory_request: str, memory_limit: str) -> None:
    """ValueError unless every quantity parses and each request is at most its limit."""
    if cpu_cores(cpu_request) > cpu_cores(cpu_limit):
        raise ValueError(f"cpu_request {cpu_request} is above cpu_limit {cpu_limit}")
    if memory_bytes(memory_request) > memory_bytes(memory_limit):
        raise ValueError(f"memory_request {memory_request} is above memory_limit {memory_limit}")


@dataclass
class RetryConfig:
    """Retries with exponential backoff for steps that talk to the network (object store, registry)."""

    attempts: int = 3  # retries after the first failure
    backoff: str = "30s"  # wait before the first retry
    backoff_factor: float = 2.0  # each further wait is this many times longer
    backoff_max: str = "3600s"  # give up retrying after this long

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("attempts must be >= 0")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be >= 1")


PRIOR_CALIBRATION_OBJECTIVES = ("regret", "likelihood")  # `caig rm calibrate-priors --objective`


@dataclass
class RefreshConfig:
    """The ``caig-refresh`` pipeline's re-ranking: how RM scores become the selector's Beta priors."""

    prior_strength: float = 50.0  # pseudo-impressions behind each creative's RM prior
    prior_temperature: float = 1.0  # scales the RM's log-strengths; `caig rm calibrate-priors` fits both
    max_products: int = 0  # re-rank only the first N catalog products (0: all); the rest are counted

    def __post_init__(self) -> None:
        if self.prior_strength <= 0:
            raise ValueError("prior_strength must be > 0 (pseudo-impressions)")
        if self.prior_temperature < 0:
            raise ValueError("prior_temperature must be >= 0 (0: every creative at its product's CTR)")
        if self.max_products < 0:
            raise ValueError("max_products must be >= 0 (0: every product)")


@dataclass
class OrchestrationConfig:
    """Everything the pipelines read from the profile when they are compiled or submitted."""

    gpu: GpuPoolConfig = field(default_factory=GpuPoolConfig)  # the GPU node pool of the GPU steps
    cpu: StepResources = field(default_factory=StepResources)  # every CPU step not in step_resources
    step_resources: dict[str, StepResources] = field(default_factory=dict)  # by step name (e.g. ingest)
    retry: RetryConfig = field(default_factory=RetryConfig)  # retries of the steps with side effects
    cache: bool = True  # cache deterministic steps (same inputs, same outputs); flaky steps never cache
    model_pvc: str = "caig-models"  # existing PVC holding base model weights, mounted on GPU steps
    model_mount_path: str = "/mnt/models"  # where model_pvc is mounted; base model paths point below it
    data_pvc: str = ""  # PVC holding the data locations (the pipelines' `data`), mounted where they are read
    # (world step) or written (generate step); empty: the location is reachable without a mount
    data_mount_path: str = "/mnt/data"  # where data_pvc is mounted; `data` paths point below it
    # PVC the register step publishes trained runs to, the servers loading pvc://<runs_pvc>/<run>; empty: no
    # run is published, so register refuses a cluster run's artifacts and records local paths (caig run --local)
    runs_pvc: str = ""
    runs_mount_path: str = "/mnt/runs"  # where runs_pvc is mounted (register writes, refresh/generate read)
    features_pvc: str = ""  # PVC holding features.store_dir (the Feast server's volume), mounted on the
    # features step; empty: the store directory is inside the step's output
    features_mount_path: str = "/mnt/features"  # where features_pvc is mounted; features.store_dir below it
    simulated_world: bool = True  # empty `data` builds the simulated world; false: a run must name its data
    object_store_secret: str = ""  # Kubernetes secret with object-store credentials for GPU steps (empty:
    # none; KFP's launcher moves artifacts with its own credentials)
    object_store_env: dict[str, str] = field(  # secret key -> environment variable in the step
        default_factory=lambda: {"access_key": "AWS_ACCESS_KEY_ID", "secret_key": "AWS_SECRET_ACCESS_KEY"}
    )
    online_store_secret: str = ""  # Secret with the online store's (Redis) password, as env on the features
    # step, which materializes into it (features.redis_connection_string names ${VAR}); empty: none
    online_store_env: dict[str, str] = field(  # secret key -> environment variable in the features step
        default_factory=lambda: {"password": "CAIG_REDIS_PASSWORD"}
    )
    refresh: RefreshConfig = field(default_factory=RefreshConfig)  # caig-refresh: RM priors
    serving_namespace: str = "caig"  # namespace of the InferenceServices the register step patches
    register_dry_run: bool = False  # register step: compute the canary patch only, change nothing
    register_identity_secret: str = ""  # service-account token Secret of caig-register, mounted on the
    # register step only (KFP cannot set a service account per step); empty: the run's own identity
    register_identity_path: str = "/var/run/secrets/caig.io/register"  # where that Secret is mounted
    # Multi-GPU training steps (gpu.nodes * gpu.gpus_per_step > 1) run as Kubeflow Trainer TrainJobs on this
    # namespaced TrainingRuntime (manifests/trainer/), staged through runs_pvc
    trainer_runtime: str = "caig-torch-deepspeed"
    trainer_identity_secret: str = ""  # token Secret of caig-trainjob-launcher (create/get/delete TrainJobs,
    # read pod logs), mounted on the launcher steps only; empty: the run's own identity
    trainer_identity_path: str = "/var/run/secrets/caig.io/trainer"  # where that Secret is mounted

    def __post_init__(self) -> None:
        for name in (
            "data_mount_path",
            "model_mount_path",
            "runs_mount_path",
            "features_mount_path",
            "register_identity_path",
            "trainer_identity_path",
        ):
            if not getattr(self, name).startswith("/"):
                raise ValueError(f"{name} must be an absolute path inside the container, e.g. /mnt/data")
        if not self.serving_namespace:
            raise ValueError("serving_namespace must name the namespace of the InferenceServices, e.g. caig")
        if self.object_store_secret and not self.object_store_env:
            raise ValueError("object_store_env must map at least one secret key to an env variable")
        if self.online_store_secret and not self.online_store_env:
            raise ValueError("online_store_env must map at least one secret key to an env variable")
        if self.gpu.total > 1 and not self.trainer_runtime:
            raise ValueError("trainer_runtime must name the TrainingRuntime of multi-GPU steps")
        if self.gpu.total > 1 and not self.runs_pvc:
            raise ValueError(
                "runs_pvc must name a ReadWriteMany PVC: a multi-GPU step's TrainJob nodes read their inputs "
                "and write their output there (orchestration.gpu.nodes * gpus_per_step > 1)"
            )

    def resources_for(self, step: str) -> StepResources:
        """Requests and limits of the CPU step called ``step``: its own entry, else ``cpu``."""
        return self.step_resources.get(step, self.cpu)
