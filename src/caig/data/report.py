"""The ingest report: every row read is accounted for, as valid, duplicate or quarantined (by reason).

Written to ``DS/ingest_report.json`` after each run; ``rows_read == rows_valid + rows_duplicate +
rows_quarantined`` always holds, and unreadable files are listed by name with the error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from caig.data.event_checks import REASONS

REPORT_FILE = "ingest_report.json"


@dataclass
class IngestReport:
    """Counts of one ingestion run (not cumulative; ``events_total`` is the directory's total after it)."""

    as_of: str
    max_quarantine_share: float
    creatives_checked: bool
    max_unreadable_files: int = 0
    rows_read: int = 0
    rows_valid: int = 0  # new events accepted in this run
    rows_duplicate: int = 0  # event_ids already accepted (earlier runs or earlier in this run)
    rows_quarantined: int = 0
    duplicate_of_earlier_runs: int = 0
    duplicate_in_run: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    files_read: list[str] = field(default_factory=list)
    files_unreadable: list[dict[str, str]] = field(default_factory=list)  # {"file": name, "error": text}
    quarantine_files: list[str] = field(default_factory=list)
    stats_rows: int = 0
    events_total: int = 0
    clicks_total: int = 0
    first_date: str | None = None
    last_date: str | None = None
    elapsed_s: float = 0.0
    events_per_s: float = 0.0

    @property
    def quarantined_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def passed(self) -> bool:
        """False when the quarantined share exceeds its threshold, when more files than allowed could not be
        read, or when files were given and none could be read (no logs is not a pass)."""
        return not self.failures()

    def failures(self) -> list[str]:
        """Why the run did not pass, one line per cause naming the setting (empty when it passed)."""
        out = []
        if self.quarantined_share > self.max_quarantine_share:
            out.append(
                f"{self.rows_quarantined} of {self.rows_read} rows quarantined ({self.quarantined_share:.1%}), "
                f"above data.ingest.max_quarantine_share={self.max_quarantine_share}"
            )
        unreadable = self.files_unreadable
        if len(unreadable) > self.max_unreadable_files or (unreadable and not self.rows_read):
            names = ", ".join(f["file"] for f in unreadable[:3]) + (", ..." if len(unreadable) > 3 else "")
            out.append(
                f"{len(unreadable)} event file(s) could not be read ({names}), above "
                f"data.ingest.max_unreadable_files={self.max_unreadable_files}"
            )
        return out

    def add_reasons(self, counts: dict[str, int]) -> None:
        for reason, n in counts.items():
            self.quarantine_reasons[reason] = self.quarantine_reasons.get(reason, 0) + n
            self.rows_quarantined += n

    def check(self) -> None:
        """Raise if a row is unaccounted for (a bug, never a data problem)."""
        total = self.rows_valid + self.rows_duplicate + self.rows_quarantined
        if total != self.rows_read or sum(self.quarantine_reasons.values()) != self.rows_quarantined:
            raise AssertionError(f"ingest counts do not add up: {self.to_dict()}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quarantined_share"] = round(self.quarantined_share, 6)
        data["passed"] = self.passed
        return data

    def write(self, directory: Path) -> Path:
        path = Path(directory) / REPORT_FILE
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2))
        partial.replace(path)
        return path


def read_report(directory: Path) -> dict[str, Any] | None:
    """The last ingest report of a stats directory, or None when there is none."""
    path = Path(directory) / REPORT_FILE
    return json.loads(path.read_text()) if path.is_file() else None
