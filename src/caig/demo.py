"""The demo run on one machine: the ``caig-training`` KFP pipeline under the KFP local runner.

``make demo`` = ``caig run --local --profile local``: the very pipeline that is compiled for Kubeflow runs
here, each step a subprocess (``pipelines/local.py``). Writes ``OUT/metrics.json`` (the run's flat
metrics), ``OUT/report.html``, ``OUT/report.md``, ``OUT/steps.json``, ``OUT/timings.json`` (seconds per
step), links ``OUT/world``, ``OUT/features``, ``OUT/pm``, ``OUT/rm`` and ``OUT/pcpo`` to the steps' outputs
(the run layout every server reads, ``caig.runlayout``) and ``OUT/data`` to the ingested stats.
"""

from __future__ import annotations

from pathlib import Path

from caig.profile import Profile


def run_demo(profile: Profile, out: Path, seed: int = 0) -> dict:
    """Run ``caig-training`` locally for world ``seed`` into ``out``; return the flat metrics."""
    from caig.orchestration.source import run_local_pipeline

    return run_local_pipeline(profile, out, seed=seed)
