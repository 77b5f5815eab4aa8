"""Config of the deploy stage: where the manifests are, how rollouts wait, and the KFP recurring run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_CRON_FIELDS = 6  # KFP cron expressions have a leading seconds field


@dataclass
class DeployConfig:
    """Settings of ``caig deploy`` and ``caig promote``; the objects themselves live in ``manifests/``."""

    manifests_dir: str = "manifests"  # kustomize tree with overlays/<name>/ (relative to the cwd)
    overlay: str = "production"  # overlay used when --overlay is not given
    canary_percent: int = 10  # traffic share of a new PM/RM registered by the training pipeline
    ready_timeout_s: int = 900  # how long `caig deploy` waits for a model server to become ready
    field_manager: str = "caig-deploy"  # server-side field manager name recorded on every write
    kfp_host: str = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"  # KFP API for `deploy pipelines`
    # multi-user Kubeflow: the profile namespace runs execute in (caig); empty: single-user (runs execute in
    # KFP's own namespace, which must then be the servers' namespace)
    kfp_namespace: str = ""
    pipelines_dir: str = "pipelines/compiled"  # compiled pipeline YAML files to upload
    experiment: str = "caig"  # KFP experiment holding the recurring run
    recurring_pipeline: str = "caig-refresh"  # pipeline run on a schedule
    recurring_cron: str = "0 0 3 * * *"  # KFP cron (seconds first): daily at 03:00 UTC
    recurring_max_concurrency: int = 1  # never two refresh runs at once
    recurring_parameters: dict[str, Any] = field(default_factory=dict)  # arguments of each scheduled run;
    # `as_of` is never set here: it is left empty, so each run resolves "now" when it starts
    knative_namespace: str = "knative-serving"  # where Knative's config-features ConfigMap lives

    def __post_init__(self) -> None:
        if not 0 < self.canary_percent < 100:
            raise ValueError("canary_percent must be between 1 and 99 (100 is a full rollout)")
        if self.ready_timeout_s < 0:
            raise ValueError("ready_timeout_s must be >= 0 (0: do not wait)")
        if len(self.recurring_cron.split()) != _CRON_FIELDS:
            raise ValueError(
                f"recurring_cron must have {_CRON_FIELDS} fields (seconds minutes hours day month weekday), "
                f"e.g. '0 0 3 * * *'; got '{self.recurring_cron}'"
            )
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", self.recurring_pipeline):
            raise ValueError("recurring_pipeline must be a pipeline name such as caig-refresh")
        if self.recurring_max_concurrency < 1:
            raise ValueError("recurring_max_concurrency must be at least 1")
        if self.recurring_parameters.get("as_of"):
            raise ValueError(
                "recurring_parameters.as_of must not be set: a scheduled run takes the time it starts as "
                "'now' (a fixed as_of would check every day's logs against the same day)"
            )
