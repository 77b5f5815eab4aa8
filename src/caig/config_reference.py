"""The configuration reference, generated from the stage config dataclasses (never written by hand).

Every key of a profile is a field of a config dataclass reachable from ``caig.profile.Profile``, and every
field carries its documentation as a ``# comment`` in the source: on the field's own line (continued on the
lines below it, written ``#   ...``), or, for a field whose line has no comment, on the comment lines just
above it. ``field_docs`` reads them with ``tokenize`` and ``ast``; ``undocumented_fields`` lists the fields
without one (``tests/test_config_reference.py`` keeps that list empty); ``render_reference`` writes the
Markdown page the documentation site shows as ``configuration.md`` (``docs/hooks/config_reference.py``).

    python -m caig.config_reference > configuration.md
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import itertools
import json
import re
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union


@dataclass(frozen=True)
class Section:
    """One dataclass as it appears in a profile: its dotted key, class, default instance and doc."""

    key: str  # dotted profile key, e.g. ``curriculum.teacher``; placeholders: ``<step>``, ``[]``
    cls: type  # the config dataclass
    default: Any  # its default instance at that key (the parent's default, else ``cls()``)
    doc: str  # the doc line of the field that holds it ("" for the profile itself)
    note: str = ""  # for a list or a map of sections, or one that may be null: how it is written ({source})


def field_docs(cls: type) -> dict[str, str]:
    """``field name -> doc text`` from the ``# comments`` of the fields ``cls`` itself defines.

    A field's doc is the comment on its own line(s) plus the comment lines right below it that continue it
    (``#   text``, or ``# text`` not starting with a capital letter); a field with no comment on its line takes
    the comment block right above it instead. Section headings between fields (``# Fine-tuning.``) belong to
    neither. Inherited fields are documented where they are defined: see ``all_field_docs``.
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments: dict[int, tuple[str, bool]] = {}  # line -> (text after '#', whether alone on its line)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            comments[row] = (token.string[1:], not lines[row - 1][:col].strip())
    classdef = next(node for node in ast.parse(source).body if isinstance(node, ast.ClassDef))
    own = set(cls.__dict__.get("__annotations__", {}))
    spans = [
        (node.target.id, node.lineno, node.end_lineno or node.lineno)
        for node in classdef.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in own
    ]
    inline = [[comments[n][0] for n in range(start, end + 1) if n in comments] for _, start, end in spans]
    docs: dict[str, list[str]] = {}
    for i, (name, start, end) in enumerate(spans):
        if inline[i]:
            # its own comment, and the lines below that continue it (strictly when the next field has none:
            # then the block above that field is its doc)
            strict = i + 1 < len(spans) and not inline[i + 1]
            below = _comment_block_below(comments, end + 1)
            continued = list(itertools.takewhile(functools.partial(_continues, strict=strict), below))
            docs[name] = inline[i] + continued
        else:
            # the comment block right above it, less what continues the field before it
            above = _comment_block_above(comments, start - 1)
            if i > 0 and inline[i - 1] and start - len(above) - 1 == spans[i - 1][2]:
                above = list(itertools.dropwhile(functools.partial(_continues, strict=True), above))
            docs[name] = above
    return {name: " ".join(t.strip() for t in texts if t.strip()) for name, texts in docs.items()}


def _comment_block_below(comments: Mapping[int, tuple[str, bool]], line: int) -> list[str]:
    """The comment lines standing alone from ``line`` down, up to the first line that is not one."""
    block = []
    while line in comments and comments[line][1]:
        block.append(comments[line][0])
        line += 1
    return block


def _comment_block_above(comments: Mapping[int, tuple[str, bool]], line: int) -> list[str]:
    """The comment lines standing alone from ``line`` up, in source order."""
    block = []
    while line in comments and comments[line][1]:
        block.insert(0, comments[line][0])
        line -= 1
    return block


def _continues(text: str, strict: bool) -> bool:
    """Whether a comment line continues the field above it: ``#   text`` always; ``# text`` not opening with a
    capital letter too, unless the next field has no comment of its own (then the block is that field's)."""
    if text.startswith("  "):
        return True
    return not strict and bool(text.strip()) and not text.strip()[0].isupper()


def all_field_docs(cls: type) -> dict[str, str]:
    """``field_docs`` over ``cls`` and its dataclass bases: the most derived definition wins."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(field_docs(klass))
    return docs


def _dataclass_args(tp: Any) -> list[type]:
    """The dataclasses a field's type holds: itself, or inside ``list[...]``, ``dict[str, ...]``, ``X | None``."""
    if dataclasses.is_dataclass(tp):
        return [tp]
    return [c for arg in typing.get_args(tp) for c in _dataclass_args(arg)]


def sections(root: type | None = None) -> list[Section]:
    """Every config dataclass reachable from ``root`` (default: the profile), depth first, with its key."""
    if root is None:
        from caig.profile import Profile

        root = Profile
    out: list[Section] = []

    def walk(cls: type, key: str, default: Any, doc: str, note: str) -> None:
        out.append(Section(key, cls, default, doc, note))
        hints = typing.get_type_hints(cls)
        docs = all_field_docs(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            for child in _dataclass_args(tp):
                child_key = f"{key}.{f.name}" if key else f.name
                value = getattr(default, f.name, None)
                origin = typing.get_origin(tp)
                if origin is list:
                    walk(
                        child,
                        f"{child_key}[]",
                        child(),
                        docs.get(f.name, ""),
                        "A list; each item is a {source}.",
                    )
                elif origin is dict:
                    walk(
                        child,
                        f"{child_key}.<name>",
                        child(),
                        docs.get(f.name, ""),
                        "A map from a name to a {source}.",
                    )
                elif isinstance(value, child):
                    walk(child, child_key, value, docs.get(f.name, ""), "")
                else:
                    walk(
                        child,
                        child_key,
                        child(),
                        docs.get(f.name, ""),
                        "Null unless set; when set, a {source}.",
                    )

    walk(root, "", root(), "", "")
    return out


def undocumented_fields(root: type | None = None) -> list[str]:
    """``Class.field`` of every field reachable from ``root`` (default: the profile) with no doc comment."""
    missing = []
    seen: set[type] = set()
    for section in sections(root):
        if section.cls in seen:
            continue
        seen.add(section.cls)
        docs = all_field_docs(section.cls)
        missing += [
            f"{section.cls.__qualname__}.{f.name}"
            for f in dataclasses.fields(section.cls)
            if not docs.get(f.name, "").strip()
        ]
    return missing


def type_name(tp: Any) -> str:
    """A field's type as a profile author reads it: ``int``, ``list of str``, ``"a" or "b"``, ``float or null``;
    a section by its class name."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_name(args[0]) if args else 'any'}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}" if args else "map"
    if dataclasses.is_dataclass(tp):
        return tp.__name__  # a section of its own, below
    return getattr(tp, "__name__", str(tp))


def value_text(value: Any) -> str:
    """A default as it is written in a profile (YAML flow style, JSON-compatible)."""
    return json.dumps(_plain(value), ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    """Sections (dataclasses), also inside lists and maps, as plain mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "|": "\\|", "*": "\\*", "_": "\\_", "[": "\\["}


def markdown_text(text: str) -> str:
    """Comment text safe in a Markdown table cell: code spans (between backticks) are kept as they are, the
    rest has HTML, emphasis and cell separators escaped."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans
        parts = [text.replace("`", "'")]
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"`{part}`")
        else:
            out.append("".join(_ESCAPES.get(c, c) for c in part))
    return "".join(out)


def _code(text: str) -> str:
    """``text`` as an inline code span (fenced with more backticks than it holds)."""
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _lookup(profile: Any, key: str) -> tuple[bool, Any]:
    """``(found, value)`` of a dotted key in a loaded profile (no placeholders)."""
    node = profile
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            return False, None
        node = getattr(node, part)
    return True, node


def _rows(section: Section, profiles: Mapping[str, Any]) -> Iterator[str]:
    hints = typing.get_type_hints(section.cls)
    docs = all_field_docs(section.cls)
    for f in dataclasses.fields(section.cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue  # a subsection: its own table
        key = f"{section.key}.{f.name}" if section.key else f.name
        default = getattr(section.default, f.name)
        cells = [
            _code(key),
            markdown_text(type_name(hints[f.name])),
            _code(value_text(default)),
        ]
        if profiles:
            differs = []
            placeholder = "<" in key or "[]" in key
            for name, profile in profiles.items():
                found, value = (False, None) if placeholder else _lookup(profile, key)
                if found and value != default:
                    differs.append(f"{name}: {_code(value_text(value))}")
            cells.append("<br>".join(differs))
        cells.append(markdown_text(docs.get(f.name, "")))
        yield "| " + " | ".join(cells) + " |"


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a closing full stop."""
    text = text.strip()
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        text = text[:1].upper() + text[1:]
    return text + ("" if text.endswith((".", "!", "?")) else ".")


def _first_paragraph(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def render_reference(profiles: Mapping[str, Any] | None = None, root: type | None = None) -> str:
    """The configuration reference as Markdown: one section per stage, one table row per key (type,
    default, the value each of ``profiles`` sets where it differs, and the field's doc comment)."""
    profiles = dict(profiles or {})
    names = ", ".join(f"`configs/{name}.yaml`" for name in profiles)
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config dataclasses at build time (`caig.config_reference`): every key a profile",
        "(`configs/*.yaml`) or a `--set section.key=value` override may name, its type, its default and the",
        "comment it carries in the source. A profile file holds one section per stage; unknown keys and wrong",
        "types are errors that name the key and the file.",
        "",
    ]
    if profiles:
        lines += [
            f"The *profiles* column shows what {names} set where it differs from the default.",
            "",
        ]
    head = ["key", "type", "default", *(["profiles"] if profiles else []), "description"]
    for section in sections(root):
        fields = [
            f
            for f in dataclasses.fields(section.cls)
            if not dataclasses.is_dataclass(typing.get_type_hints(section.cls)[f.name])
        ]
        depth = 2 if "." not in section.key.replace(".<name>", "") else 3
        title = section.key or "Top level"
        lines += [f"{'#' * depth} {title if not section.key else _code(title)}", ""]
        intro = []
        if section.doc:
            intro.append(f"*{markdown_text(_sentence(section.doc))}*")
        summary = _first_paragraph(section.cls)
        if summary:
            intro.append(markdown_text(summary))
        source = f"`{section.cls.__module__}.{section.cls.__qualname__}`"
        intro.append(section.note.format(source=source) if section.note else f"Source: {source}.")
        lines += [" ".join(intro), ""]
        if not fields:
            continue
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += list(_rows(section, profiles))
        lines.append("")
    return "\n".join(lines)


@functools.cache
def _profiles() -> dict[str, Any]:
    from caig.profile import load_profile

    return {name: load_profile(name) for name in ("local", "production")}


if __name__ == "__main__":
    print(render_reference(_profiles()))
