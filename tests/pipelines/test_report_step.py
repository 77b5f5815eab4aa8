"""The training report component through the real KFP local runner: the HTML page opens on the headline, the
Markdown artifact holds it, the ``headline`` Metrics artifact logs its numbers (what the Kubeflow UI shows),
and the sample ads come from the PCPO and DPO runs."""

# No `from __future__ import annotations`: KFP reads the test pipeline's annotations at runtime.

import json

import pytest

from caig.orchestration.source import ensure_importable

ensure_importable()

from components.report import run_report  # noqa: E402
from kfp import dsl, local  # noqa: E402
from kfp.dsl import Dataset, Metrics, Model  # noqa: E402
from tests.orchestration.test_report import DEMO, _first_screen, _run_dir  # noqa: E402

SUMMARIES = (  # run_report's metrics inputs, each with the prefixes of the demo's keys its step writes
    ("world_summary", ("world.",)),
    ("data_summary", ("data.rows", "data.quarantine")),
    ("validation_summary", ("data.validation",)),
    ("pairs_summary", ("data.rm_pairs",)),
    ("features_summary", ()),
    ("tasks_summary", ()),
    ("pretrain_summary", ()),
    ("rm_summary", ("rm.",)),
    ("pcpo_summary", ("pcpo.train",)),
    ("dpo_summary", ("dpo.train",)),
    ("evaluation_summary", ("pcpo.match", "pcpo.ctr", "dpo.match", "dpo.ctr")),
    ("online_summary", ("online.",)),
    ("register_summary", ("register.",)),
)


def _step_files(tmp_path):
    """Every step's metrics file: its share of the demo-shaped metrics (an empty object for some)."""
    (tmp_path / "steps").mkdir()
    files = {}
    for name, prefixes in SUMMARIES:
        files[name] = tmp_path / "steps" / f"{name}.json"
        files[name].write_text(
            json.dumps({k: v for k, v in DEMO.items() if prefixes and k.startswith(prefixes)})
        )
    assert sum(len(json.loads(f.read_text())) for f in files.values()) == len(DEMO)
    return files


@pytest.mark.filterwarnings("ignore:.*non-Python base image")
def test_report_step_writes_headline_html_markdown_and_metrics(tmp_path):
    files = _step_files(tmp_path)
    runs = {m: _run_dir(tmp_path / m, [{"P1": f"{m} round {r}"} for r in range(4)]) for m in ("pcpo", "dpo")}
    dirs = {name: tmp_path / name for name in ("world", "evaluation", "online")}
    for path in dirs.values():
        path.mkdir()

    @dsl.pipeline(name="report-only")
    def report_only():
        def imported(path, kind):
            return dsl.importer(artifact_uri=str(path), artifact_class=kind).output

        run_report(
            **{name: imported(path, Dataset) for name, path in dirs.items()},
            **{name: imported(path, Model) for name, path in runs.items()},
            **{name: imported(path, Metrics) for name, path in files.items()},
        )

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    report_only()
    (step,) = (tmp_path / "root").rglob("run-report")
    first = _first_screen((step / "report").read_text())
    assert "pair accuracy 0.638 on 58 test pairs" in first and "PCPO +7.4%, DPO +5.7%" in first
    assert "match rate PCPO 0.617 vs DPO 0.517: PCPO wins" in first
    page = (step / "report").read_text()
    assert "pcpo round 3" in page[page.index("Sample ads by round") :]
    markdown = (step / "summary").read_text()
    assert "- **Reward model**: pair accuracy 0.638" in markdown
    output = json.loads((step / "executor_output.json").read_text())
    logged = output["artifacts"]["headline"]["artifacts"][0]["metadata"]
    assert logged["rm.ceiling"] == 0.8103 and logged["pcpo.match_rate.round_3"] == 0.6167
    assert "rm.pair_accuracy_one_order" not in logged
    everything = output["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert everything["rm.pair_accuracy_one_order"] == 0.6379
