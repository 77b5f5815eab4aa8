"""Build a kustomize overlay (``kubectl kustomize``) into the list of objects it would apply."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from caig.errors import UserError


def overlay_dir(manifests_dir: str | Path, overlay: str) -> Path:
    """``<manifests_dir>/overlays/<overlay>``, checked to exist, with the available overlays in the error."""
    root = Path(manifests_dir)
    path = root / "overlays" / overlay
    if not (path / "kustomization.yaml").is_file():
        found = sorted(p.parent.name for p in (root / "overlays").glob("*/kustomization.yaml"))
        choices = ", ".join(found) or f"none under {root}/overlays"
        raise UserError(
            f"overlay '{overlay}' not found at {path}; choose one of: {choices} "
            "(or set deploy.manifests_dir to the manifests/ folder)"
        )
    return path


def build_overlay(manifests_dir: str | Path, overlay: str) -> list[dict[str, Any]]:
    """Every object of the overlay, exactly as ``kubectl kustomize`` renders it (what Argo CD applies)."""
    path = overlay_dir(manifests_dir, overlay)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise UserError("kubectl is not on PATH; install kubectl (it builds the kustomize overlays)")
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        raise UserError(f"kubectl kustomize {path} failed: {message}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find_object(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` named ``name``; a UserError naming what the overlay does hold otherwise."""
    for obj in objects:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    names = sorted(o["metadata"]["name"] for o in objects if o.get("kind") == kind)
    raise UserError(f"the overlay has no {kind} named '{name}' (it has: {', '.join(names) or 'none'})")
