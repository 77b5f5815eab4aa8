"""Evaluate PCPO / DPO runs with what the data allows: the oracle in a simulated world, the review batch and
the MLLM judge on real logs (``caig.evaluate.without_oracle``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caig.profile import Profile
from caig.world.marker import is_simulated


def evaluate_runs(
    profile: Profile,
    data_dir: str | Path,
    runs: dict[str, str | Path],
    rm_dir: str | Path | None,
    out: str | Path,
) -> dict[str, Any]:
    """Judge every run; write ``out/eval.json`` and return the flat metrics (the oracle imported only for a
    simulated world)."""
    if is_simulated(data_dir):
        from caig.evaluate.run import run_evaluation

        return run_evaluation(profile, data_dir, runs, rm_dir, out)
    from caig.evaluate.without_oracle import evaluate_without_oracle

    return evaluate_without_oracle(profile, data_dir, runs, rm_dir, out)
