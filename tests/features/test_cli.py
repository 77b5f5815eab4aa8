"""`caig features apply|materialize|get`: the thin CLI door, JSON on stdout, user errors as one line."""

from __future__ import annotations

import json

import pytest

from caig.cli import main


def _caig(capsys, *args: str) -> dict:
    main(list(args))
    return json.loads(capsys.readouterr().out)


def test_apply_materialize_get(capsys, feature_run_dir, tmp_path):
    store = f"features.store_dir={tmp_path / 'store'}"
    run = ["--run", str(feature_run_dir), "--set", store]
    applied = _caig(capsys, "features", "apply", *run)
    assert applied["online_store"] == "sqlite" and applied["rows"]["product_creatives"] == 48
    loaded = _caig(capsys, "features", "materialize", *run, "--end", "2026-11-01")
    assert loaded["materialized_from"]["rm_prior"] is None  # no reward model has written priors yet
    assert loaded["materialized_from"]["creative_ctr_stats"].startswith("2026-10-01")
    got = _caig(capsys, "features", "get", *run, "--product", "P00002")
    assert got["product_id"] == "P00002" and len(got["creatives"]) == 5
    assert all(c["rm_score"] is None and c["impressions_28d"] > 0 for c in got["creatives"])


def test_get_before_apply_and_unknown_product_are_one_line_errors(capsys, feature_run_dir, tmp_path):
    run = ["--run", str(feature_run_dir), "--set", f"features.store_dir={tmp_path / 'empty'}"]
    with pytest.raises(SystemExit) as exit_info:
        main(["features", "get", *run, "--product", "P00002"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "caig features apply" in err and "\n" not in err
    with pytest.raises(SystemExit):
        main(["features", "get", *run, "--set", "features.online_store=memcached", "--product", "P1"])
    assert "features.online_store" in capsys.readouterr().err
