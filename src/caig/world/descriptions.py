"""Background descriptions: writing them from terms and reading the terms back out of free text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from caig.world.vocabulary import GROUPS, TERMS, Term

_TERM_PATTERNS = sorted(TERMS, key=lambda t: -len(t.text))


@dataclass(frozen=True)
class ParsedDescription:
    """The known terms a description names, by group, in the order they appear."""

    terms: dict[str, tuple[Term, ...]] = field(default_factory=dict)

    def group(self, name: str) -> tuple[Term, ...]:
        return self.terms.get(name, ())

    def first(self, name: str) -> Term | None:
        found = self.group(name)
        return found[0] if found else None

    @property
    def all_terms(self) -> tuple[Term, ...]:
        return tuple(t for g in GROUPS for t in self.group(g))


def normalise(text: str) -> str:
    """Lower-case, strip quotes and punctuation the renderer ignores, collapse whitespace."""
    text = re.sub(r"[\"'`.,;:!?()\[\]{}\n\r\t]+", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def parse_description(text: str) -> ParsedDescription:
    """Find every vocabulary term in ``text`` (longest phrases first, each span used once)."""
    clean = f" {normalise(text)} "
    found: list[tuple[int, Term]] = []
    taken = [False] * len(clean)
    for term in _TERM_PATTERNS:
        for match in re.finditer(rf"(?<=\s){re.escape(term.text)}(?=\s)", clean):
            start, end = match.span()
            if any(taken[start:end]):
                continue
            taken[start:end] = [True] * (end - start)
            found.append((start, term))
    found.sort(key=lambda item: item[0])
    by_group: dict[str, list[Term]] = {}
    for _, term in found:
        if term not in by_group.setdefault(term.group, []):
            by_group[term.group].append(term)
    return ParsedDescription({g: tuple(ts) for g, ts in by_group.items()})


def compose_description(terms: dict[str, str]) -> str:
    """Write a natural background description from one term per group (any group may be missing)."""
    parts = []
    scene = terms.get("scene")
    surface = terms.get("surface")
    if scene and surface:
        parts.append(f"in a {scene} on {surface}")
    elif scene:
        parts.append(f"in a {scene}")
    elif surface:
        parts.append(f"on {surface}")
    if terms.get("prop"):
        parts.append(f"with {terms['prop']}")
    if terms.get("palette"):
        parts.append(f"{terms['palette']} palette")
    if terms.get("lighting"):
        parts.append(terms["lighting"])
    if terms.get("framing"):
        parts.append(terms["framing"])
    if terms.get("style"):
        parts.append(f"{terms['style']} style")
    if terms.get("eye_catching"):
        parts.append(f"with {terms['eye_catching']}")
    return ", ".join(parts)
