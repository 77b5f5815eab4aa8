"""The Dockerfiles in images/, read without a Docker engine: one per image name of
``caig.orchestration.images``, multi-stage from pinned bases, non-root, and installing only pyproject extras
with constraints.txt."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from tests.deploy.conftest import ROOT

from caig.orchestration.images import IMAGES, RELEASE_IMAGES, SELECTOR_IMAGE
from caig.orchestration.images import dockerfile as dockerfile_of

IMAGES_DIR = ROOT / "images"
EXPECTED_EXTRAS = {
    "caig-step": {"pipelines"},
    "caig-train": {"train"},
    "caig-serve": {"serve", "train"},
    "caig-selector": {"serve"},
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def dockerfile(image: str) -> Path:
    return IMAGES_DIR / f"{image.removeprefix('caig-')}.Dockerfile"


def stages(path: Path) -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults, and the instructions of each stage (starting at its FROM)."""
    args, result = {}, []
    for instr, rest in instructions(path):
        if instr == "FROM":
            result.append([])
        if not result and instr == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
        if result:
            result[-1].append((instr, rest))
    return args, result


def test_one_dockerfile_per_image_name():
    assert sorted(p.name for p in IMAGES_DIR.glob("*.Dockerfile")) == sorted(
        dockerfile(i).name for i in RELEASE_IMAGES
    )
    assert set(IMAGES) < set(RELEASE_IMAGES)  # the release builds every image the pipelines and servers run
    assert all(ROOT / dockerfile_of(i) == dockerfile(i) for i in RELEASE_IMAGES)


def test_the_selector_image_carries_no_training_stack():
    """The selector scales to 20 replicas on CPU nodes: no train extra, no torch or CUDA wheels."""
    pip = " ".join(
        r for i, r in instructions(dockerfile(SELECTOR_IMAGE)) if i == "RUN" and "pip install" in r
    )
    assert re.findall(r'"\.\[([a-z,]+)\]"', pip) == ["serve"]
    assert "torch" not in pip and "index-url" not in pip  # no CUDA wheels either


@pytest.mark.parametrize("image", RELEASE_IMAGES)
def test_bases_are_pinned_and_build_is_multi_stage(image):
    args, all_stages = stages(dockerfile(image))
    assert len(all_stages) >= 2, "builder and runtime stages"
    for stage in all_stages:
        base = stage[0][1].split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        name, _, tag = base.partition(":")
        assert "@sha256:" in base or (tag and tag != "latest" and re.search(r"\d+\.\d+", tag)), base
        assert "slim" in tag or name.startswith("nvidia/cuda"), f"{base}: use a slim or CUDA base"
    final = all_stages[-1]
    assert any(i == "COPY" and r.startswith("--from=builder") for i, r in final), (
        "runtime copies the builder's venv"
    )
    assert not any(i == "RUN" and "pip install" in r for i, r in final), "no pip in the runtime stage"


@pytest.mark.parametrize("image", RELEASE_IMAGES)
def test_runs_as_non_root(image):
    final = stages(dockerfile(image))[1][-1]
    users = [rest for instr, rest in final if instr == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, f"USER {users[-1]}: use a numeric uid >= 10000"
    last_user = max(i for i, (instr, _) in enumerate(final) if instr == "USER")
    assert not any(instr == "RUN" for instr, _ in final[last_user:]), "nothing runs as root after USER"


@pytest.mark.parametrize("image", RELEASE_IMAGES)
def test_installs_pyproject_extras_with_constraints(image):
    extras_defined = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    pip_lines = [r for i, r in instructions(dockerfile(image)) if i == "RUN" and "pip install" in r]
    installs = [cmd.strip() for r in pip_lines for cmd in r.split("&&") if "pip install" in cmd]
    found = set()
    for cmd in installs:
        extras = re.search(r'"\.\[([a-z,]+)\]"', cmd)
        if extras:
            assert "-c constraints.txt" in cmd, cmd
            found |= set(extras.group(1).split(","))
            continue
        # anything installed by name is pinned exactly (torch from the CUDA index, DeepSpeed)
        packages = [t for t in cmd.split() if re.match(r'^"?[A-Za-z][\w.-]*(==|\[)', t)]
        assert packages and all("==" in p for p in packages), cmd
    assert found <= extras_defined
    assert found >= EXPECTED_EXTRAS[image]


@pytest.mark.parametrize("image", RELEASE_IMAGES)
def test_copied_paths_exist_and_pass_dockerignore(image):
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for instr, rest in instructions(dockerfile(image)):
        if instr != "COPY" or rest.startswith("--from"):
            continue
        sources = rest.split()[:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert any(source == a or source.startswith(a + "/") for a in allowed), (
                f"{source} is .dockerignored"
            )


def test_parser_reads_continuations():
    final = stages(dockerfile("caig-step"))[1][-1]
    env = next(r for i, r in final if i == "ENV" and "PATH=" in r)
    assert "HOME=/tmp" in env and "CAIG_CONFIG_DIR=/opt/caig/configs" in env
