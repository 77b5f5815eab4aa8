"""Layout of a local run directory (``caig run --local --out DIR``).

::

    DIR/metrics.json    the run's flat metrics (merged from every step)
    DIR/report.html     the run report (metrics tables, figures)
    DIR/report.md       the same metrics as a Markdown table
    DIR/pipeline/       the KFP local runner's pipeline root: <run>/<step>/<output> for every step
    DIR/steps.json      which step wrote which output, for finding a step's files without guessing
    DIR/timings.json    wall seconds of every step that ran, in order (also if the run failed)
    DIR/world, DIR/features, DIR/pm, DIR/rm, DIR/pcpo
                        links to the steps' outputs in the run layout every server reads (``caig.runlayout``)
    DIR/data            a link to the ingested stats, where the CLI looks for a run's data

The steps' outputs stay where the KFP runner wrote them; the top-level files are copies of the report
step's outputs, so that every run directory looks the same whatever the pipeline.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from caig import runlayout

log = logging.getLogger("caig.orchestration")

LINK_NAMES = (*runlayout.NAMES, "data")  # the links a local run may make at its top level


@dataclass(frozen=True)
class RunDir:
    """Paths of one local run directory."""

    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def report_markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def pipeline_root(self) -> Path:
        return self.root / "pipeline"

    @property
    def workspace(self) -> Path:
        return self.root / "pipeline" / ".workspace"

    @property
    def steps(self) -> Path:
        return self.root / "steps.json"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    def prepare(self) -> RunDir:
        """Create the directory; remove the outputs of an earlier run there (logged), keep anything else."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.pipeline_root.exists():
            log.info("replacing the previous run's step outputs in %s", self.pipeline_root)
            shutil.rmtree(self.pipeline_root)
        for path in (self.metrics, self.report_html, self.report_markdown, self.steps, self.timings):
            path.unlink(missing_ok=True)
        for name in LINK_NAMES:  # links of the previous run point into the removed outputs
            if (self.root / name).is_symlink():
                (self.root / name).unlink()
        self.workspace.mkdir(parents=True)
        return self

    def finish(
        self,
        report_html: Path,
        report_markdown: Path,
        metrics: Path,
        step_outputs: Mapping[str, Mapping[str, str]],
    ) -> None:
        """Copy the report step's outputs to the top level and record where every step's outputs are."""
        for source, target in (
            (report_html, self.report_html),
            (report_markdown, self.report_markdown),
            (metrics, self.metrics),
        ):
            if not Path(source).is_file():
                raise FileNotFoundError(f"the report step did not write {source}")
            shutil.copyfile(source, target)
        self.steps.write_text(json.dumps(step_outputs, indent=2, sort_keys=True))

    def link(self, targets: Mapping[str, Path]) -> None:
        """``DIR/<name>`` -> a step's output (relative links, so the run directory can be moved).

        A real file or folder already at ``DIR/<name>`` is left alone and logged, never overwritten.
        """
        for name, target in targets.items():
            if name not in LINK_NAMES:
                raise ValueError(f"unknown run link '{name}'; add it to LINK_NAMES")
            path = self.root / name
            if path.exists() and not path.is_symlink():
                log.warning("not linking %s to %s: a file or folder is already there", path, target)
                continue
            path.unlink(missing_ok=True)
            path.symlink_to(os.path.relpath(Path(target).resolve(), self.root.resolve()))
