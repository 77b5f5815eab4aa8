"""Point-in-time historical retrieval for reward-model training (the ``rm_training_v1`` service).

For each entity row (a creative of a product at a time), Feast joins the latest feature row whose
``event_timestamp`` is at or before that time and within the view's ttl: values recorded later never leak
into a training example.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from caig.errors import UserError

RM_TRAINING_SERVICE = "rm_training_v1"
ENTITY_COLUMNS = ("creative_id", "product_id", "event_timestamp")


def training_features(
    store: Any, entity_df: pd.DataFrame, service: str = RM_TRAINING_SERVICE
) -> pd.DataFrame:
    """Join the service's features onto ``entity_df`` (creative_id, product_id, event_timestamp in UTC).

    Returns:
        ``entity_df``'s rows and columns plus one column per feature; null where no row is in range.
    """
    missing = [c for c in ENTITY_COLUMNS if c not in entity_df.columns]
    if missing:
        raise UserError(f"entity rows lack column(s) {', '.join(missing)}; give {', '.join(ENTITY_COLUMNS)}")
    stamps = pd.to_datetime(entity_df["event_timestamp"])
    if stamps.dt.tz is None:
        raise UserError("entity rows: event_timestamp must be timezone-aware (UTC)")
    frame = entity_df.assign(event_timestamp=stamps.dt.tz_convert("UTC"))
    job = store.get_historical_features(entity_df=frame, features=store.get_feature_service(service))
    return job.to_df()
