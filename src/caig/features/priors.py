"""The RM prior per creative: the table the reward stage writes and the bandit selector starts from.

``rm_priors.parquet`` holds one row per creative and scoring time: ``creative_id, product_id, rm_score``
(the reward model's score of the creative, in [0, 1]), ``prior_alpha, prior_beta`` (the Beta prior on its
CTR that the selector's Thompson sampling starts from, both > 0) and ``event_timestamp`` (UTC, when the RM
scored it). The reward stage produces it with :func:`write_rm_priors`; until a reward model has run, the
feature store holds an empty table and the selector sees null priors.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from caig.errors import UserError

RM_PRIOR_SCHEMA = pa.schema(
    [
        ("creative_id", pa.string()),
        ("product_id", pa.string()),
        ("rm_score", pa.float64()),
        ("prior_alpha", pa.float64()),
        ("prior_beta", pa.float64()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ]
)


def write_rm_priors(priors: pd.DataFrame, path: Path) -> Path:
    """Check ``priors`` against :data:`RM_PRIOR_SCHEMA` and write it as parquet; return the path.

    Raises:
        UserError: a column is missing, or rows break the contract (the message gives the count).
    """
    table = pa.Table.from_pandas(check_rm_priors(priors), schema=RM_PRIOR_SCHEMA, preserve_index=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def read_rm_priors(path: Path) -> pd.DataFrame:
    """Read and check a priors file written by :func:`write_rm_priors`."""
    return check_rm_priors(pd.read_parquet(path))


def empty_rm_priors() -> pd.DataFrame:
    """A priors table with the right columns and no rows (before any reward model has run)."""
    return RM_PRIOR_SCHEMA.empty_table().to_pandas()


def check_rm_priors(priors: pd.DataFrame) -> pd.DataFrame:
    """Return ``priors`` with the schema's columns, timestamps in UTC; fail loudly on bad rows."""
    missing = [name for name in RM_PRIOR_SCHEMA.names if name not in priors.columns]
    if missing:
        raise UserError(
            f"RM priors lack column(s) {', '.join(missing)}; expected {', '.join(RM_PRIOR_SCHEMA.names)}"
        )
    frame = priors[RM_PRIOR_SCHEMA.names].copy()
    frame["event_timestamp"] = _utc(frame["event_timestamp"])
    problems = {
        "null values": frame.isna().any(axis=1),
        "rm_score outside [0, 1]": ~frame["rm_score"].between(0.0, 1.0),
        "prior_alpha or prior_beta <= 0": (frame["prior_alpha"] <= 0) | (frame["prior_beta"] <= 0),
        "a duplicate (creative_id, event_timestamp)": frame.duplicated(["creative_id", "event_timestamp"]),
    }
    for reason, bad in problems.items():
        if bad.any():
            raise UserError(f"RM priors: {int(bad.sum())} row(s) with {reason}; fix them in the reward stage")
    return frame


def _utc(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is None:
        raise UserError("RM priors: event_timestamp must be timezone-aware (UTC); localise it before writing")
    return stamps.dt.tz_convert("UTC")
