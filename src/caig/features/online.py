"""Materialize the offline sources into the online store, and answer online lookups for a product.

``materialize`` is incremental for the CTR statistics: that view loads the rows since its previous
materialization; a view never materialized starts at the earliest row of its source (Feast alone would start
at now - ttl and miss older logs). The snapshot views (product profile, product creatives, RM priors) are
restated by every apply, with timestamps that need not move forward (the catalog snapshot is stamped at the
start of the logs), so they are reloaded whole each time: small tables, and a creative registered since the
last run reaches the online store, and the running selector, even though its row is not newer. :class:`ProductFeatureReader` answers what the creative selector asks per request: the product's
profile and, for each of its creatives, the features of the ``selector_online_v1`` service.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from caig.errors import UserError
from caig.features.sources import SOURCE_FILES
from caig.features.store import feast_output_to_log
from caig.features.windows import window_columns

log = logging.getLogger("caig.features")

SELECTOR_SERVICE = "selector_online_v1"
PRODUCT_FEATURES = [f"product_profile:{name}" for name in ("title", "category", "price", "colour")]
CREATIVE_KEYS = ["creative_id", *window_columns(), "rm_score", "prior_alpha", "prior_beta"]
SNAPSHOT_VIEWS = ("product_profile", "product_creatives", "rm_prior")  # reloaded whole by every materialize


def materialize(store: Any, end: datetime | None = None) -> dict[str, str | None]:
    """Load new offline rows up to ``end`` (default now, UTC) into the online store.

    Returns:
        For each feature view, the start of the interval it loaded (ISO), or None when its source is
        still empty (it is tried again from its first row next time).
    """
    end = end or pd.Timestamp.now(tz="UTC").to_pydatetime()
    started: dict[str, str | None] = {}
    whole = []
    for view in store.list_feature_views():
        if view.most_recent_end_time is None or view.name in SNAPSHOT_VIEWS:
            whole.append(view.name)
        else:
            started[view.name] = view.most_recent_end_time.isoformat()
    with feast_output_to_log():
        for name in whole:
            start = _earliest_row(Path(store.repo_path) / "data" / SOURCE_FILES[name])
            started[name] = start.isoformat() if start is not None and start < end else None
            if started[name] is not None:
                store.materialize(start_date=start, end_date=end, feature_views=[name])
        incremental = sorted(set(started) - set(whole))
        if incremental:
            store.materialize_incremental(end_date=end, feature_views=incremental)
    log.info("materialized %d feature views up to %s", len(started), end.isoformat())
    return dict(sorted(started.items()))


class ProductFeatureReader:
    """Online reads for the creative selector: a product's profile and its creatives' features.

    Resolves the ``selector_online_v1`` service from the registry once, so each request costs two
    online-store reads and no registry work.
    """

    def __init__(self, store: Any):
        self.store = store
        self.service = store.get_feature_service(SELECTOR_SERVICE)

    def get(self, product_id: str) -> dict[str, Any]:
        """The online features of ``product_id`` and, per creative of it, the selector service's features.

        Raises:
            UserError: the product is unknown to the online store (not in the catalog or not materialized).
        """
        head = self.store.get_online_features(
            features=[*PRODUCT_FEATURES, "product_creatives:creative_ids"],
            entity_rows=[{"product_id": product_id}],
        ).to_dict()
        creative_ids = head["creative_ids"][0]
        if creative_ids is None:
            raise UserError(
                f"product '{product_id}' has no online features; check the id, or run `caig features materialize`"
            )
        profile = {ref.split(":")[1]: head[ref.split(":")[1]][0] for ref in PRODUCT_FEATURES}
        return {"product_id": product_id, **profile, "creatives": self._creatives(product_id, creative_ids)}

    def _creatives(self, product_id: str, creative_ids: list[str]) -> list[dict[str, Any]]:
        if not creative_ids:
            return []
        rows = [{"product_id": product_id, "creative_id": c} for c in creative_ids]
        table = self.store.get_online_features(features=self.service, entity_rows=rows).to_dict()
        keys = [k for k in CREATIVE_KEYS if k in table]
        return [{k: table[k][i] for k in keys} for i in range(len(rows))]


def product_features(store: Any, product_id: str) -> dict[str, Any]:
    """One-off :meth:`ProductFeatureReader.get` (a server keeps one reader instead)."""
    return ProductFeatureReader(store).get(product_id)


def _earliest_row(path: Path) -> datetime | None:
    stamps = pd.read_parquet(path, columns=["event_timestamp"])["event_timestamp"]
    if stamps.empty:
        return None
    return (stamps.min() - pd.Timedelta(seconds=1)).to_pydatetime()
