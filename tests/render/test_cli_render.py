"""`caig render`: PNG + JSON sidecar for both backends, build-tiny, user errors as one line."""

from __future__ import annotations

import json

import pytest

from caig.cli import main
from caig.render.label import read_label


def _caig(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_render_diffusers_writes_png_and_sidecar(small_world_dir, tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "ad.png"
    code = _caig(
        "render",
        "--backend",
        "diffusers",
        "--set",
        f"render.base_model={tiny_sd_dir}",
        "--set",
        "render.image_size=64",
        "--set",
        "render.steps=2",
        "--set",
        "render.device=cpu",
        "--world",
        str(small_world_dir),
        "--product",
        "P00002",
        "--description",
        "on white marble.",
        "--seed",
        "7",
        "--out",
        str(out),
    )
    assert code == 0, capsys.readouterr().err
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["backend"] == "diffusers" and sidecar["model"] == str(tiny_sd_dir)
    assert sidecar["seed"] == 7 and len(sidecar["box"]) == 4 and sidecar["timing"]["render_s"] > 0
    assert read_label(out)["AI-Generated"] == "true"


def test_render_procedural_and_build_tiny(small_world_dir, tmp_path, capsys):
    out = tmp_path / "p.png"
    code = _caig(
        "render",
        "--world",
        str(small_world_dir),
        "--product",
        "P00002",
        "--description",
        "in a pine forest",
        "--out",
        str(out),
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.with_suffix(".json").read_text())["backend"] == "procedural"
    assert read_label(out)["caig:render"]["backend"] == "procedural"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--product", "P00002", "--description", "x", "--out", "a.png"], "missing --world"),
        (["--product", "P00002", "--description", " ", "--out", "{tmp}/a.png"], "description is empty"),
        (["--product", "NOPE", "--description", "x", "--out", "{tmp}/a.png"], "unknown product_id"),
        (["--product", "P00002", "--description", "x", "--out", "{tmp}/a.jpg"], "ending in .png"),
        (
            ["--backend", "diffusers", "--product", "P00002", "--description", "x", "--out", "{tmp}/a.png"],
            "render.base_model is empty",
        ),
    ],
)
def test_user_errors_are_one_line(small_world_dir, tmp_path, capsys, args, fragment):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    world = [] if fragment.startswith("missing") else ["--world", str(small_world_dir)]
    assert _caig("render", *world, *args) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1
