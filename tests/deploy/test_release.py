"""``caig release``: the digests of the pushed images pinned in the production overlay (on a copy of the
manifests), the build and push commands per container tool, and what a release refuses. No image is built
here: the commands go to a recording runner that answers as the tools do."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from tests.deploy.conftest import ROOT, kustomize

from caig.cli import cli
from caig.deploy.release import build_commands, find_tool, pin_digests, plan_release, release
from caig.errors import UserError
from caig.orchestration.images import RELEASE_IMAGES

DIGESTS = {name: "sha256:" + f"{i:x}" * 64 for i, name in enumerate(RELEASE_IMAGES, start=1)}


@pytest.fixture()
def manifests(tmp_path):
    """A copy of manifests/ and configs/ (the base reads the profiles from ../../configs)."""
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    return tmp_path / "manifests"


def _outside_images(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("images:"):
            inside = True
            continue
        if inside and (line.startswith((" ", "-")) or not line.strip()):
            continue
        inside = False
        lines.append(line)
    return lines


def test_pinned_digests_reach_every_rendered_image(manifests):
    kustomization = manifests / "overlays" / "production" / "kustomization.yaml"
    before = kustomization.read_text()
    pins = {
        name: {"newName": f"ghcr.io/caig/{name}", "newTag": "0.1.0", "digest": DIGESTS[name]}
        for name in ("caig-step", "caig-serve", "caig-selector")
    }
    pin_digests(kustomization, pins)
    after = kustomization.read_text()
    assert _outside_images(after) == _outside_images(before)  # only the images: block changed
    images = {
        c["image"]
        for obj in kustomize(manifests / "overlays" / "production")
        for c in _containers(obj)
        if "/caig-" in c["image"]
    }
    assert images and all("@sha256:" in i for i in images), images
    assert f"ghcr.io/caig/caig-step:0.1.0@{DIGESTS['caig-step']}" in images
    assert f"ghcr.io/caig/caig-serve:0.1.0@{DIGESTS['caig-serve']}" in images
    pin_digests(kustomization, pins)  # a second release with the same digests changes nothing
    assert kustomization.read_text() == after


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", []), *spec.get("containers", [])]


def test_release_builds_pushes_and_pins_with_the_tools_answers(manifests, monkeypatch, tmp_path):
    monkeypatch.delenv("CAIG_IMAGE_REGISTRY", raising=False)
    monkeypatch.delenv("CAIG_IMAGE_TAG", raising=False)
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")  # every tool "installed"
    kustomization = manifests / "overlays" / "production" / "kustomization.yaml"
    seen: list[list[str]] = []

    def docker(command: list[str]) -> str:
        seen.append(command)
        if command[:3] == ["docker", "image", "inspect"]:
            ref = command[-1]
            repository = ref.rsplit(":", 1)[0]
            name = repository.rsplit("/", 1)[-1]
            return json.dumps(
                [f"mirror.example.com/{name}@sha256:{'0' * 64}", f"{repository}@{DIGESTS[name]}"]
            )
        return ""

    result = release(ROOT, kustomization, tool="docker", runner=docker, work=tmp_path)
    assert [c[1] for c in seen] == ["build", "push", "image"] * len(RELEASE_IMAGES)
    assert seen[0][:5] == ["docker", "build", "-f", "images/step.Dockerfile", "-t"]
    assert {n: p["digest"] for n, p in result["pinned"].items()} == DIGESTS
    rendered = {
        c["image"] for obj in kustomize(manifests / "overlays" / "production") for c in _containers(obj)
    }
    assert f"ghcr.io/caig/caig-serve:0.1.0@{DIGESTS['caig-serve']}" in rendered

    def podman(command: list[str]) -> str:
        if command[1] == "push":
            digest_file = command[command.index("--digestfile") + 1]
            with open(digest_file, "w") as out:
                out.write(DIGESTS[command[-1].rsplit(":", 1)[0].rsplit("/", 1)[-1]] + "\n")
        return ""

    result = release(
        ROOT, kustomization, tool="podman", names=["caig-selector"], runner=podman, work=tmp_path
    )
    assert result["pinned"]["caig-selector"]["digest"] == DIGESTS["caig-selector"]


def test_a_push_without_a_digest_writes_nothing(manifests, monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")
    kustomization = manifests / "overlays" / "production" / "kustomization.yaml"
    before = kustomization.read_text()
    with pytest.raises(UserError, match="no pushed digest for ghcr.io/caig/caig-step"):
        release(ROOT, kustomization, tool="docker", names=["caig-step"], runner=lambda c: "[]", work=tmp_path)
    assert kustomization.read_text() == before
    with pytest.raises(UserError, match="'latest' is not a sha256 digest"):
        pin_digests(kustomization, {"caig-step": {"newName": "x", "newTag": "1", "digest": "latest"}})


def test_what_a_release_refuses(monkeypatch):
    with pytest.raises(UserError, match="unknown image 'caig-gpu'"):
        plan_release(ROOT, ["caig-gpu"])
    monkeypatch.setenv("CAIG_IMAGE_TAG", "9.9.9")  # the compiled pipelines inside caig-step name 0.1.0
    with pytest.raises(UserError, match="runs ghcr.io/caig/caig-step:0.1.0, not this release's .*:9.9.9"):
        plan_release(ROOT)
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(UserError, match="docker or podman or buildah is not on PATH"):
        find_tool()
    with pytest.raises(UserError, match="unknown container tool 'kaniko'"):
        find_tool("kaniko")


def test_each_tool_pushes_so_that_the_digest_can_be_read_back(tmp_path):
    (build,) = plan_release(ROOT, ["caig-selector"])
    podman = build_commands("podman", build, tmp_path / "d")
    assert podman == [
        ["podman", "build", "-f", "images/selector.Dockerfile", "-t", build.ref, "."],
        ["podman", "push", "--digestfile", str(tmp_path / "d"), build.ref],
    ]
    assert build_commands("buildah", build, tmp_path / "d")[0][:2] == ["buildah", "bud"]


def test_cli_dry_run_lists_the_commands(monkeypatch):
    monkeypatch.delenv("CAIG_IMAGE_REGISTRY", raising=False)
    monkeypatch.delenv("CAIG_IMAGE_TAG", raising=False)
    result = CliRunner().invoke(
        cli,
        ["release", "--dry-run", "--tool", "podman", "--set", f"deploy.manifests_dir={ROOT / 'manifests'}"],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["tool"] == "podman" and set(printed["commands"]) == set(RELEASE_IMAGES)
