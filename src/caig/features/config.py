"""Config of the features stage: where the Feast repository, the store and its offline inputs live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


@dataclass
class FeaturesConfig:
    """Everything the features stage reads from the profile.

    Input paths are relative to the run directory unless absolute; ``store_dir`` too. The store directory
    receives the generated ``feature_store.yaml``, the registry, the offline parquet sources (``data/``)
    and, for the SQLite online store, ``data/online_store.db``.
    """

    project: str = "caig"  # Feast project; online keys are namespaced by it
    repo_path: str = "feature_repo"  # the declarative Feast repo (cwd first, then the source tree)
    store_dir: str = "features"  # feature_store.yaml, registry and offline sources (relative to the run)
    online_store: Literal["sqlite", "redis"] = "sqlite"  # sqlite: embedded file; redis: shared server
    redis_connection_string: str = "127.0.0.1:6379,db=0"  # Feast format host:port[,db=N][,password=..]
    registry: str = "data/registry.db"  # registry file, relative to store_dir, or an s3:// / gs:// URI
    catalog_path: str = (
        "world/catalog.parquet"  # product catalog (product_id, title, category, price, colour)
    )
    creatives_path: str = "world/creatives.parquet"  # creatives (creative_id, product_id, ...)
    stats_path: str = "data/creative_stats.parquet"  # daily stats written by `caig data ingest`
    priors_path: str = "features/rm_priors.parquet"  # RM priors from the reward stage; may be absent

    def __post_init__(self) -> None:
        if not _PROJECT_NAME.match(self.project):
            raise ValueError(
                f"project '{self.project}' must be letters, digits and underscores, not starting with '_'"
            )
        if self.online_store == "redis" and not self.redis_connection_string.strip():
            raise ValueError("redis_connection_string must be set when online_store is 'redis'")
        for name in ("repo_path", "store_dir", "registry", "catalog_path", "creatives_path", "stats_path"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty")
