"""Point-in-time historical retrieval for reward-model training (the ``rm_training_v1`` service).

For each entity row (a creative of a product at a time), Feast joins the latest feature row whose
``event_timestamp`` is at or before that time and within the view's ttl: values recorded later never leak
into a training example.

Feast 0.67's file offline store (dask) loses entity rows in two cases: a row whose entity has feature rows,
but none in [time - ttl, time], is dropped instead of getting nulls; and rows sharing a view's join keys and
time (two creatives of one product at one time) collapse into one. So each view is queried with its own
unique (join keys, time) rows and left-joined back: every input row comes out once, in input order.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from caig.errors import UserError

RM_TRAINING_SERVICE = "rm_training_v1"
ENTITY_COLUMNS = ("creative_id", "product_id", "event_timestamp")
TIME = "event_timestamp"


def training_features(
    store: Any, entity_df: pd.DataFrame, service: str = RM_TRAINING_SERVICE
) -> pd.DataFrame:
    """Join the service's features onto ``entity_df`` (creative_id, product_id, event_timestamp in UTC).

    Returns:
        ``entity_df``'s rows (same order) and columns plus one column per feature; null where no feature
        row lies at or before the entity's time within the view's ttl.
    """
    missing = [c for c in ENTITY_COLUMNS if c not in entity_df.columns]
    if missing:
        raise UserError(f"entity rows lack column(s) {', '.join(missing)}; give {', '.join(ENTITY_COLUMNS)}")
    frame = entity_df.reset_index(drop=True).assign(**{TIME: _utc(entity_df[TIME])})
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        keys = [column.name for column in view.entity_columns]
        refs = [f"{projection.name_to_use()}:{feature.name}" for feature in projection.features]
        rows = frame[[*keys, TIME]].drop_duplicates()
        found = store.get_historical_features(entity_df=rows, features=refs).to_df()
        found = found[[*keys, TIME, *(f.name for f in projection.features)]]
        frame = frame.merge(found.assign(**{TIME: _utc(found[TIME])}), on=[*keys, TIME], how="left")
    return frame


def _utc(stamps: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(stamps)
    if stamps.dt.tz is None:
        raise UserError("entity rows: event_timestamp must be timezone-aware (UTC)")
    return stamps.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
