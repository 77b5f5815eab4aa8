"""Config of the deploy stage: where the manifests are, how rollouts wait, and the KFP recurring run."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    pipelines_dir: str = "pipelines/compiled"  # compiled pipeline YAML files to upload
    experiment: str = "caig"  # KFP experiment holding the recurring run
    recurring_pipeline: str = "caig-refresh"  # pipeline run on a schedule
    recurring_cron: str = "0 0 3 * * *"  # KFP cron (seconds first): daily at 03:00 UTC
    recurring_max_concurrency: int = 1  # never two refresh runs at once

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
