"""README.md is a short front door and the docs speak of the project only: no machine paths, no dated run logs,
no broken relative links. (`make docs` builds the site with mkdocs --strict on top of this.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GENERATED = {"configuration.md"}  # pages the mkdocs hook writes at build time (docs/hooks/)
MAX_README_LINES = 300

MACHINE_PATH = re.compile(r"\.\./shared\b|(?<![\w.~-])/(?:work|home|tmp)/")
DATE = re.compile(r"(?<!\d)(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\d)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
RESULT_FILE = re.compile(r"benchmarks/results/[\w./-]+\.(?:json|png|md)")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def machine_paths(text: str) -> list[str]:
    """Lines naming a path of the machine the project was built on, or the shared folder beside the repo."""
    return [line for line in text.splitlines() if MACHINE_PATH.search(line)]


def dated_lines(text: str) -> list[str]:
    """Lines with a calendar date (a run log's, a CI timing's)."""
    return [line for line in text.splitlines() if DATE.search(line)]


def relative_links(text: str) -> list[str]:
    """Link targets that are files of the repository (no URL, no bare anchor), without their anchor."""
    targets = []
    for match in LINK.finditer(_without_code(text)):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def _without_code(text: str) -> str:
    """Markdown without fenced blocks and code spans, where brackets are not links."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def broken_links(path: Path, text: str, inside: Path | None = None) -> list[str]:
    """Relative links of ``path`` that name no file (or, with ``inside``, a file outside that folder)."""
    broken = []
    for target in relative_links(text):
        resolved = (path.parent / target).resolve()
        if inside is not None and resolved.name in GENERATED and resolved.parent == inside.resolve():
            continue
        if not resolved.exists() or (inside is not None and not resolved.is_relative_to(inside.resolve())):
            broken.append(target)
    return broken


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    text = README.read_text()
    for needed in ("arXiv:2502.06823", "make demo", "make test", "make smoke-production", "make docs"):
        assert needed in text, needed


@pytest.mark.parametrize("path", markdown_files(), ids=_name)
def test_no_machine_paths(path: Path):
    assert machine_paths(path.read_text()) == []


@pytest.mark.parametrize("path", markdown_files(), ids=_name)
def test_no_dated_lines(path: Path):
    assert dated_lines(path.read_text()) == []


def test_readme_links_resolve():
    links = relative_links(README.read_text())
    assert links, "README.md links into docs/"
    assert broken_links(README, README.read_text()) == []


@pytest.mark.parametrize("path", sorted(DOCS.rglob("*.md")), ids=_name)
def test_docs_links_stay_inside_the_site(path: Path):
    # a link out of docs/ breaks `mkdocs build --strict`: name such files as plain text paths instead
    assert broken_links(path, path.read_text(), inside=DOCS) == []


def test_no_generated_page_is_committed():
    for name in GENERATED:
        assert not (DOCS / name).exists(), f"docs/{name} is generated at build time; delete it"


@pytest.mark.parametrize("path", markdown_files(), ids=_name)
def test_result_files_named_exist(path: Path):
    missing = [name for name in RESULT_FILE.findall(path.read_text()) if not (ROOT / name).exists()]
    assert missing == []


# The checks themselves must catch what they are for.


def test_the_checks_catch_what_they_look_for(tmp_path: Path):
    assert machine_paths("see ../shared/paper/ and /work/main/x and /tmp/w") != []
    assert len(machine_paths("a\n/home/me/x\nb")) == 1
    assert machine_paths("/mnt/data/current, runs/demo, /var/run/secrets/x, docs/first-deploy.md") == []
    assert dated_lines("On a fresh clone (2026-11-27, 5 min)") != []
    assert dated_lines("events/YYYY-MM-DD/part-00000.parquet, sha256:0123456789-12-31") == []
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    (tmp_path / "docs" / "other.md").write_text("x")
    (tmp_path / "outside.md").write_text("x")
    text = (
        "[ok](other.md#anchor) [gone](missing.md) [out](../outside.md) [web](https://example.org) "
        "[here](#top) [generated](configuration.md) `[code](not-a-link.md)`\n"
        "```\n[fenced](also-not-a-link.md)\n```\n"
    )
    assert relative_links(text) == ["other.md", "missing.md", "../outside.md", "configuration.md"]
    assert broken_links(page, text) == ["missing.md", "configuration.md"]
    assert broken_links(page, text, inside=tmp_path / "docs") == ["missing.md", "../outside.md"]
