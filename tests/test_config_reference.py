"""The configuration reference is generated from the config dataclasses, and every field carries a doc comment."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap
import typing

import pytest

from caig.config_reference import (
    all_field_docs,
    field_docs,
    markdown_text,
    render_reference,
    sections,
    undocumented_fields,
)
from caig.profile import Profile, load_profile


def _module(tmp_path, monkeypatch, name: str, source: str):
    """Import ``source`` as module ``name`` from a file, so that ``inspect.getsource`` finds its classes."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_every_field_reachable_from_the_profile_has_a_doc_comment():
    assert undocumented_fields() == [], (
        "add a trailing '# comment' to these fields in their config.py (the configuration reference is "
        "generated from them)"
    )


def test_the_check_fails_on_fields_without_comments(tmp_path, monkeypatch):
    module = _module(
        tmp_path,
        monkeypatch,
        "caig_test_undocumented",
        """
        from __future__ import annotations

        from dataclasses import dataclass, field


        @dataclass
        class Inner:
            plain: int = 1
            documented: str = "x"  # a documented field


        @dataclass
        class Outer:
            inner: Inner = field(default_factory=Inner)
            items: list[Inner] = field(default_factory=list)  # a list of sections
            count: int = 3
        """,
    )
    assert undocumented_fields(module.Outer) == ["Outer.inner", "Outer.count", "Inner.plain"]


def test_comment_styles_of_the_config_files(tmp_path, monkeypatch):
    module = _module(
        tmp_path,
        monkeypatch,
        "caig_test_styles",
        """
        from __future__ import annotations

        from dataclasses import dataclass


        @dataclass
        class Styles:
            \"\"\"A docstring.\"\"\"

            trailing: int = 1  # on its own line
            continued: float = (
                2.0  # a comment that goes on
            )
            #   and on, below the field
            # Section heading.
            headed: str = "a"  # after a heading that belongs to no field
            # the comment block above a field
            # that has none of its own
            above: bool = True
            lowercase: int = 0  # first line
            # continued without the marker
            last: int = 5  # end

            def method(self) -> None:  # not a field
                pass


        @dataclass
        class Child(Styles):
            extra: int = 0  # the subclass's own field
        """,
    )
    assert field_docs(module.Styles) == {
        "trailing": "on its own line",
        "continued": "a comment that goes on and on, below the field",
        "headed": "after a heading that belongs to no field",
        "above": "the comment block above a field that has none of its own",
        "lowercase": "first line continued without the marker",
        "last": "end",
    }
    assert field_docs(module.Child) == {"extra": "the subclass's own field"}
    assert all_field_docs(module.Child)["trailing"] == "on its own line"
    assert undocumented_fields(module.Child) == []


def test_sections_walk_lists_maps_and_optional_sections():
    keys = {s.key: s for s in sections()}
    assert keys[""].cls is Profile
    assert "curriculum.teacher" in keys and "data.pairs" in keys
    assert keys["orchestration.gpu.tolerations[]"].note.startswith("A list")
    assert keys["orchestration.step_resources.<name>"].note.startswith("A map")
    assert keys["mllm.random_weights"].note.startswith("Null unless set")
    # a nested section's defaults are its parent's: the RM's training pair rule is not data.pairs
    assert keys["reward.train_pairs"].default.min_impressions == 50
    assert keys["data.pairs"].default.min_impressions == 1000


def test_the_reference_has_a_row_for_every_key_with_its_default_and_doc():
    profiles = {"local": load_profile("local"), "production": load_profile("production")}
    page = render_reference(profiles)
    for section in sections():
        hints = typing.get_type_hints(section.cls)
        docs = all_field_docs(section.cls)
        for f in dataclasses.fields(section.cls):
            if dataclasses.is_dataclass(hints[f.name]):
                continue
            key = f"{section.key}.{f.name}" if section.key else f.name
            rows = [line for line in page.splitlines() if line.startswith(f"| `{key}` |")]
            assert len(rows) == 1, key
            assert markdown_text(docs[f.name]) in rows[0], key
    (row,) = [line for line in page.splitlines() if line.startswith("| `curriculum.teacher.target` |")]
    assert '`"pairs"`' in row and '"pairs" or "ctr"' in row
    (row,) = [line for line in page.splitlines() if line.startswith("| `mllm.preset` |")]
    assert 'production: `"llava-v1.6-7b"`' in row
    assert "configs/local.yaml" in page


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pvc://<runs_pvc>/<run>", "pvc://&lt;runs\\_pvc&gt;/&lt;run&gt;"),
        ("a | b", "a \\| b"),
        ("keep `code_span | <x>` as is", "keep `code_span | <x>` as is"),
        ("an ` unpaired backtick", "an ' unpaired backtick"),
        ("nodes * gpus", "nodes \\* gpus"),
    ],
)
def test_comment_text_is_escaped_for_a_table_cell(text, expected):
    assert markdown_text(text) == expected
