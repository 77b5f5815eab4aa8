"""Release: build and push every container image, then pin the pushed digests in the production overlay.

``caig release`` (``make release``) builds each image of ``images/`` with the first container tool on PATH
(docker, podman or buildah), pushes it as ``$CAIG_IMAGE_REGISTRY/<name>:$CAIG_IMAGE_TAG``
(``caig.orchestration.images``), reads back the digest the registry stored and writes it into the
``images:`` block of the overlay's ``kustomization.yaml`` (``digest: sha256:...``, the tag kept for people),
so that Argo CD deploys exactly the bytes that were built. Only that block of the file is rewritten.

The compiled pipelines baked into ``caig-step`` name their step images by tag; a release to another registry
or tag must compile them first (``caig compile`` with the same variables), which ``plan_release`` checks.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from caig.errors import UserError
from caig.orchestration.images import RELEASE_IMAGES, dockerfile, image

log = logging.getLogger("caig.deploy")

TOOLS = ("docker", "podman", "buildah")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_BLOCK_START = re.compile(r"^images:\s*(#.*)?$")


@dataclass
class ImageBuild:
    """One image to build and push."""

    name: str  # caig-step, caig-train, caig-serve, caig-selector
    dockerfile: str  # relative to the repository root (the build context)
    ref: str  # registry/name:tag

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]


def plan_release(root: Path, names: Sequence[str] | None = None) -> list[ImageBuild]:
    """The images to build (all, or ``names``), checked against the repository at ``root``."""
    chosen = list(names or RELEASE_IMAGES)
    unknown = [n for n in chosen if n not in RELEASE_IMAGES]
    if unknown:
        raise UserError(f"unknown image '{unknown[0]}'; choose among {', '.join(RELEASE_IMAGES)}")
    builds = [ImageBuild(n, dockerfile(n), image(n)) for n in chosen]
    for build in builds:
        if not (root / build.dockerfile).is_file():
            raise UserError(f"{build.dockerfile} not found under {root}; run from the repository root")
    check_compiled_images(root / "pipelines" / "compiled", builds)
    return builds


def check_compiled_images(compiled: Path, builds: list[ImageBuild]) -> None:
    """A UserError when the compiled pipelines (shipped inside caig-step) name other tags of our images."""
    refs = {b.name: b.ref for b in builds}
    for path in sorted(compiled.glob("*.yaml")):
        for ref in sorted(set(re.findall(r"image: (\S+)", path.read_text()))):
            name = ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]
            if name in refs and ref != refs[name]:
                raise UserError(
                    f"{path} runs {ref}, not this release's {image(name)}: run `caig compile` with the same "
                    "CAIG_IMAGE_REGISTRY and CAIG_IMAGE_TAG first, so caig-step ships matching pipelines"
                )


def find_tool(preferred: str | None = None) -> str:
    """The container tool to use: ``preferred`` if given and on PATH, else the first of docker, podman,
    buildah found."""
    for tool in [preferred] if preferred else TOOLS:
        if tool not in TOOLS:
            raise UserError(f"unknown container tool '{tool}'; choose one of {', '.join(TOOLS)}")
        if shutil.which(tool):
            return tool
    wanted = preferred or " or ".join(TOOLS)
    raise UserError(f"{wanted} is not on PATH: install one to build the images (or run `make release` in CI)")


def _first_tool_found() -> str:
    return next((t for t in TOOLS if shutil.which(t)), TOOLS[0])


def build_commands(tool: str, build: ImageBuild, digest_file: Path) -> list[list[str]]:
    """Build and push ``build`` with ``tool``; podman and buildah write the pushed digest to
    ``digest_file``, docker's is read back with ``docker image inspect`` (``digest_of``)."""
    builder = [tool, "bud"] if tool == "buildah" else [tool, "build"]
    commands = [[*builder, "-f", build.dockerfile, "-t", build.ref, "."]]
    if tool == "docker":
        commands += [["docker", "push", build.ref]]
        commands += [["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", build.ref]]
    else:
        commands += [[tool, "push", "--digestfile", str(digest_file), build.ref]]
    return commands


def digest_of(tool: str, build: ImageBuild, last_output: str, digest_file: Path) -> str:
    """The digest the registry stored for ``build``: docker's RepoDigests entry for its repository, or the
    digest file podman / buildah wrote."""
    if tool == "docker":
        repo_digests = json.loads(last_output or "[]")
        found = [d.split("@", 1)[1] for d in repo_digests if d.split("@", 1)[0] == build.repository]
        text = found[0] if found else ""
    else:
        text = digest_file.read_text().strip() if digest_file.is_file() else ""
    if not DIGEST.fullmatch(text):
        raise UserError(f"no pushed digest for {build.ref} ({tool} gave {text!r}); did the push succeed?")
    return text


Runner = Callable[[list[str]], str]


def run_command(command: list[str], cwd: Path) -> str:
    """Run one build or push command in ``cwd``, its output streamed to the log; stdout returned."""
    log.info("$ %s", " ".join(command))
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise UserError(f"`{' '.join(command[:3])} ...` failed ({done.returncode}): {' | '.join(tail)}")
    return done.stdout


def release(
    root: Path,
    kustomization: Path,
    tool: str | None = None,
    names: Sequence[str] | None = None,
    dry_run: bool = False,
    runner: Runner | None = None,
    work: Path | None = None,
) -> dict[str, Any]:
    """Build and push the images, then pin their digests in ``kustomization``.

    ``dry_run``: print the commands, build nothing, write nothing. ``runner`` runs one command and returns
    its stdout (default: a subprocess in ``root``). ``work``: where podman / buildah write the pushed
    digests (default ``root/build/release``).
    """
    builds = plan_release(root, names)
    chosen = (tool or _first_tool_found()) if dry_run else find_tool(tool)
    work = work or root / "build" / "release"
    plan = {b.name: build_commands(chosen, b, work / f"{b.name}.digest") for b in builds}
    if dry_run:
        return {"dry_run": True, "tool": chosen, "images": [asdict(b) for b in builds], "commands": plan}
    run = runner or (lambda command: run_command(command, root))
    work.mkdir(parents=True, exist_ok=True)
    digests = {}
    for build in builds:
        output = ""
        for command in plan[build.name]:
            output = run(command)
        digests[build.name] = digest_of(chosen, build, output, work / f"{build.name}.digest")
        log.info("pushed %s@%s", build.ref, digests[build.name])
    pins = {b.name: {"newName": b.repository, "newTag": b.tag, "digest": digests[b.name]} for b in builds}
    pin_digests(kustomization, pins)
    return {"dry_run": False, "tool": chosen, "pinned": pins, "kustomization": str(kustomization)}


def pin_digests(kustomization: Path, pins: dict[str, dict[str, str]]) -> None:
    """Write ``pins`` (image name -> newName, newTag, digest) into the ``images:`` block of
    ``kustomization``, keeping its other entries and every other line of the file as it is."""
    for name, pin in pins.items():
        if not DIGEST.fullmatch(pin.get("digest", "")):
            raise UserError(f"{name}: {pin.get('digest')!r} is not a sha256 digest")
    text = kustomization.read_text()
    entries = list((yaml.safe_load(text) or {}).get("images") or [])
    by_name = {e["name"]: e for e in entries}
    for name, pin in pins.items():
        if name in by_name:
            by_name[name].update(pin)
        else:
            entries.append({"name": name, **pin})
    lines = text.splitlines(keepends=True)
    start, end = _images_block(lines)
    block = _render_images(entries)
    if start is None:
        lines += (["\n"] if lines and not lines[-1].endswith("\n") else []) + [block]
    else:
        lines[start:end] = [block]
    kustomization.write_text("".join(lines))


def _images_block(lines: list[str]) -> tuple[int | None, int]:
    """First and past-the-last line of the top-level ``images:`` block (None when there is none)."""
    start = next((i for i, line in enumerate(lines) if _BLOCK_START.match(line)), None)
    if start is None:
        return None, len(lines)
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "-", "\t")) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():  # leave blank lines to what follows
        end -= 1
    return start, end


def _render_images(entries: list[dict[str, Any]]) -> str:
    out = ["images:                   # pinned by `caig release`: tag for people, digest for the cluster\n"]
    for entry in entries:
        out.append(f"  - name: {entry['name']}\n")
        for key in ("newName", "newTag", "digest"):
            if key in entry:
                out.append(f"    {key}: {json.dumps(str(entry[key]))}\n")
        for key, value in entry.items():
            if key not in ("name", "newName", "newTag", "digest"):
                out.append(f"    {key}: {json.dumps(value)}\n")
    return "".join(out)
