"""Stage metrics: flattening, writing to a KFP Metrics artifact, merging steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kfp.dsl import Metrics

from caig.orchestration.metrics import flatten, merge_metrics, read_metrics, record_metrics


def test_flatten_nests_to_dotted_keys_and_plain_types():
    flat = flatten({"a": {"b": np.float64(0.5), "c": {"d": (1, 2)}}, "e": np.int64(3)})
    assert flat == {"a.b": 0.5, "a.c.d": [1, 2], "e": 3}
    assert type(flat["a.b"]) is float and type(flat["e"]) is int


def test_record_metrics_writes_full_json_and_logs_scalars(tmp_path):
    artifact = Metrics(uri=str(tmp_path / "step" / "summary"))
    summary = {
        "pair_accuracy": 0.7,
        "match_rate_by_round": [0.1, 0.2],
        "passed": True,
        "nan": float("nan"),
        "loss_by_round": [float("nan"), 0.5],
        "rm.already": 1,
    }
    flat = record_metrics(artifact, "rm", summary)
    assert set(flat) == {
        "rm.pair_accuracy",
        "rm.match_rate_by_round",
        "rm.passed",
        "rm.nan",
        "rm.loss_by_round",
        "rm.already",
    }
    # strict JSON: NaN (e.g. the loss of a round with no pairs) is written as null, in lists too
    on_disk = json.loads((tmp_path / "step" / "summary").read_text(), parse_constant=pytest.fail)
    assert on_disk["rm.match_rate_by_round"] == [0.1, 0.2]
    assert on_disk["rm.nan"] is None and on_disk["rm.loss_by_round"] == [None, 0.5]
    # the UI's metrics tab gets the finite numbers only
    assert artifact.metadata == {"rm.pair_accuracy": 0.7, "rm.already": 1.0}


def test_merge_keeps_step_order_and_rejects_a_key_written_twice(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"world.n": 1}))
    second.write_text(json.dumps({"data.rows_read": 5}))
    assert list(merge_metrics([first, second])) == ["world.n", "data.rows_read"]
    second.write_text(json.dumps({"world.n": 2}))
    with pytest.raises(ValueError, match="'world.n' written twice"):
        merge_metrics([first, second])


def test_read_metrics_names_a_bad_file(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("[1]")
    with pytest.raises(ValueError, match="one JSON object"):
        read_metrics(bad)
