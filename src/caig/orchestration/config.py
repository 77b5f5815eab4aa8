"""Config of the orchestration stage: how pipeline steps are placed on a Kubernetes cluster.

Most settings shape the compiled pipeline YAML (node pools, GPUs, volumes, secrets, retries): they are read
when a pipeline is compiled or submitted, and ignored by the KFP local runner. ``refresh``,
``serving_namespace`` and ``register_dry_run`` are read by the steps themselves, locally too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


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
    gpus_per_step: int = 1  # accelerator limit of each GPU step
    node_selector: dict[str, str] = field(default_factory=lambda: {"caig.io/node-pool": "gpu"})  # pool labels
    tolerations: list[TolerationConfig] = field(default_factory=lambda: [TolerationConfig()])  # pool taints
    cpu_request: str = "4"  # CPU request of a GPU step (Kubernetes quantity)
    memory_request: str = "32G"  # memory request of a GPU step (Kubernetes quantity)

    def __post_init__(self) -> None:
        if not self.accelerator:
            raise ValueError("accelerator must name a resource, e.g. nvidia.com/gpu")
        if self.gpus_per_step < 1:
            raise ValueError("gpus_per_step must be at least 1")


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

    gpu: GpuPoolConfig = field(default_factory=GpuPoolConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    cache: bool = True  # cache deterministic steps (same inputs, same outputs); flaky steps never cache
    model_pvc: str = "caig-models"  # existing PVC holding base model weights, mounted on GPU steps
    model_mount_path: str = "/mnt/models"  # where model_pvc is mounted; base model paths point below it
    data_pvc: str = ""  # PVC holding the data locations (the pipelines' `data`), mounted where they are read
    # (world step) or written (generate step); empty: the location is reachable without a mount
    data_mount_path: str = "/mnt/data"  # where data_pvc is mounted; `data` paths point below it
    object_store_secret: str = "caig-object-store"  # Kubernetes secret with object-store credentials
    object_store_env: dict[str, str] = field(  # secret key -> environment variable in the step
        default_factory=lambda: {"access_key": "AWS_ACCESS_KEY_ID", "secret_key": "AWS_SECRET_ACCESS_KEY"}
    )
    refresh: RefreshConfig = field(default_factory=RefreshConfig)  # caig-refresh: RM priors
    serving_namespace: str = "caig"  # namespace of the InferenceServices the register step patches
    register_dry_run: bool = False  # register step: compute the canary patch only, change nothing

    def __post_init__(self) -> None:
        if not self.data_mount_path.startswith("/"):
            raise ValueError("data_mount_path must be an absolute path inside the container, e.g. /mnt/data")
        if not self.model_mount_path.startswith("/"):
            raise ValueError(
                "model_mount_path must be an absolute path inside the container, e.g. /mnt/models"
            )
        if not self.serving_namespace:
            raise ValueError("serving_namespace must name the namespace of the InferenceServices, e.g. caig")
        if self.object_store_secret and not self.object_store_env:
            raise ValueError("object_store_env must map at least one secret key to an env variable")
