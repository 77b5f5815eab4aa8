"""benchmarks/results/INDEX.md names every result file, and every current result says how it was made."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RESULTS = BENCHMARKS / "results"
INDEX = RESULTS / "INDEX.md"
ARCHIVE = "archive/"


def index_rows() -> list[tuple[str, str, str]]:
    """(file, command, status) of every table row of INDEX.md: rows whose first cell is a `file`."""
    rows = []
    for line in INDEX.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, (
            f"INDEX.md row without its four cells (file, question, command, status): {line}"
        )
        rows.append((cells[0].strip("`"), cells[2].strip("`"), cells[3]))
    return rows


def result_files() -> set[str]:
    """Every file under benchmarks/results/ (recursively), relative to it, INDEX.md aside."""
    return {p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*") if p.is_file() and p != INDEX}


def test_index_names_every_result_file_and_no_other() -> None:
    named = [file for file, _, _ in index_rows()]
    repeated = sorted({f for f in named if named.count(f) > 1})
    assert not repeated, f"INDEX.md has more than one row for {repeated}"
    files = result_files()
    missing = sorted(files - set(named))
    absent = sorted(set(named) - files)
    assert not missing, f"files in benchmarks/results/ without a row in INDEX.md: {missing}"
    assert not absent, f"INDEX.md rows naming files that are not in benchmarks/results/: {absent}"


def test_status_matches_where_the_file_lives() -> None:
    current = {file for file, _, status in index_rows() if status == "current"}
    for file, _, status in index_rows():
        if file.startswith(ARCHIVE):
            assert status.startswith("superseded by "), f"{file} is in archive/ but its status is {status!r}"
            named = re.findall(r"`([^`]+)`", status)
            assert named, f"{file}: the status must name the current result that replaced it"
            assert set(named) <= current, f"{file} is superseded by {named}, not all of them current results"
        else:
            assert status == "current", (
                f"{file} is outside archive/ but its status is {status!r}: move it there"
            )


@pytest.mark.parametrize(
    "file", sorted(f for f in result_files() if f.endswith(".json") and not f.startswith(ARCHIVE))
)
def test_current_json_records_how_it_was_made(file: str) -> None:
    record = json.loads((RESULTS / file).read_text())
    for key in ("command", "commit"):
        value = record.get(key)
        assert isinstance(value, str) and value.strip(), f"{file}: no {key!r} (benchmarks/provenance.py)"
    assert record.get("machine"), f"{file}: no 'machine' (benchmarks/provenance.py)"


def test_index_commands_name_scripts_and_targets_that_exist() -> None:
    spec = importlib.util.spec_from_file_location("benchmarks_prepare", BENCHMARKS / "prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = prepare  # its dataclasses look their module up there
    spec.loader.exec_module(prepare)
    targets = {*prepare.targets(), *prepare.GROUPS, "all"}
    for file, command, _ in index_rows():
        scripts = re.findall(r"benchmarks/(\w+)\.py", command)
        assert scripts, f"{file}: its command runs no benchmarks/ script"
        for script in scripts:
            assert (BENCHMARKS / f"{script}.py").is_file(), f"{file}: benchmarks/{script}.py does not exist"
        for call in re.findall(r"benchmarks/prepare\.py ([\w\- ]+?)(?: &&|$)", command):
            unknown = set(call.split()) - targets
            assert not unknown, f"{file}: prepare.py has no target {sorted(unknown)}"
