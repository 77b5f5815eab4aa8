"""Stage metrics: one flat JSON object per step, merged into the run's ``metrics.json``.

Every pipeline step writes its headline figures as ``{"<stage>.<name>": value}``. The full object (lists
such as ``pcpo.match_rate_by_round`` included) is the file of the step's KFP ``Metrics`` artifact; the
scalars are also logged on the artifact, which is what the Kubeflow UI shows in its metrics tab.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class MetricsArtifact(Protocol):
    """What we use of ``kfp.dsl.Metrics`` (duck-typed, so this module does not import kfp)."""

    path: str

    def log_metric(self, metric: str, value: float) -> None: ...


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to one level of dotted keys: ``{"rm": {"skill": 0.3}}`` -> ``{"rm.skill": 0.3}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = _plain(value)
    return flat


def _plain(value: Any) -> Any:
    """numpy scalars and tuples to JSON types; NaN and infinities to None (JSON has no NaN: null)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_scalar(value: Any) -> bool:
    """True for a finite number the KFP UI can show (bools and None excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def record_metrics(artifact: MetricsArtifact, stage: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Write a stage's summary to a KFP ``Metrics`` artifact: the full JSON as its file, scalars logged.

    Args:
        artifact: the step's ``Output[Metrics]``.
        stage: key prefix, e.g. ``world``; keys already starting with ``<stage>.`` keep their name; an
            empty stage writes the keys as they are (the run report's merged metrics).
        summary: what the stage's library function returned (nested mappings are flattened).

    Returns:
        The flat metrics written.
    """
    flat = flatten(summary)
    if stage:
        flat = {k if k.startswith(f"{stage}.") else f"{stage}.{k}": v for k, v in flat.items()}
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(flat, indent=2, sort_keys=True, allow_nan=False))
    for key, value in flat.items():
        if is_scalar(value):
            artifact.log_metric(key, float(value))
    return flat


def read_metrics(path: str | Path) -> dict[str, Any]:
    """The flat metrics a step wrote with ``record_metrics``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a metrics file written by record_metrics ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a metrics file must hold one JSON object")
    return data


def merge_metrics(paths: list[str | Path]) -> dict[str, Any]:
    """The union of several steps' metrics, in step order; a key written by two steps is an error."""
    merged: dict[str, Any] = {}
    for path in paths:
        for key, value in read_metrics(path).items():
            if key in merged:
                raise ValueError(
                    f"metric '{key}' written twice (again by {path}); give each stage its own prefix"
                )
            merged[key] = value
    return merged


def record_pcpo_run(
    run: Any, summary: MetricsArtifact, method: str, result: Mapping[str, Any], world: str
) -> None:
    """What a PCPO or DPO step records, in its pod or as a TrainJob: the run's metadata (method, rounds, the
    world its images come from) and the loss, pairs and seconds of every round."""
    rounds = result["rounds"]
    run.metadata.update({"method": result["method"], "rounds": len(rounds), "world": world})
    record_metrics(
        summary,
        f"{method}.train",
        {
            "rounds": len(rounds),
            "loss_by_round": [r["training"]["loss"] for r in rounds],
            "pairs_by_round": [r["rollout"]["pairs"] for r in rounds],
            "seconds_by_round": [r["seconds"] for r in rounds],
        },
    )
