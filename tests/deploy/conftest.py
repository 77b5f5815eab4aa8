"""Shared helpers of the deploy tests: built overlays, strict schema checks, and the two patch semantics."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.parent.name for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
K8S_VERSION = "1.32"  # the kubectl on PATH; kubernetes-validate ships schemas up to 1.37
KSERVE_KINDS = {"InferenceService": "V1beta1InferenceService", "ServingRuntime": "V1alpha1ServingRuntime"}


def kustomize(path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize PATH`` parsed into objects (fails the test with kubectl's message)."""
    done = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def built() -> dict[str, list[dict[str, Any]]]:
    """Every overlay, built once per session."""
    return {name: kustomize(MANIFESTS / "overlays" / name) for name in OVERLAYS}


def kserve_strict(data: Any, type_name: str, where: str = "") -> Any:
    """Build the kserve SDK model ``type_name`` from ``data``, failing on unknown keys and wrong types.

    The SDK's own deserializer drops unknown keys silently; this walks its ``openapi_types`` and
    ``attribute_map`` (kserve and kubernetes models alike) so that a typo is an error, and the models'
    setters still check required fields.
    """
    import kserve
    from kubernetes import client as k8s

    if type_name.startswith("list["):
        assert isinstance(data, list), f"{where}: expected a list, got {type(data).__name__}"
        return [kserve_strict(v, type_name[5:-1], f"{where}[{i}]") for i, v in enumerate(data)]
    if type_name.startswith("dict("):
        assert isinstance(data, dict), f"{where}: expected a mapping"
        value_type = type_name[5:-1].split(", ", 1)[1]
        return {k: kserve_strict(v, value_type, f"{where}.{k}") for k, v in data.items()}
    primitives = {"str": str, "int": int, "bool": bool, "float": (int, float)}
    if type_name in primitives:
        assert isinstance(data, primitives[type_name]), f"{where}: expected {type_name}, got {data!r}"
        return data
    if type_name in ("object", "datetime"):
        return data
    cls = getattr(kserve, type_name, None) or getattr(k8s, type_name)
    assert isinstance(data, dict), f"{where}: expected a {type_name} mapping, got {data!r}"
    keys = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    unknown = sorted(set(data) - set(keys))
    assert not unknown, f"{where}: unknown field(s) {unknown} for {type_name}"
    kwargs = {keys[k]: kserve_strict(v, cls.openapi_types[keys[k]], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what the API server does with application/merge-patch+json)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Merge keys of the lists our strategic merge patches touch (from the Kubernetes API's patchMergeKey).
_MERGE_KEYS = {"containers": "name", "volumes": "name", "volumeMounts": "mountPath", "env": "name"}


def strategic_merge(target: Any, patch: Any, key: str = "") -> Any:
    """The part of Kubernetes' strategic merge patch our patches use: maps merge, keyed lists merge by key."""
    if isinstance(patch, dict):
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            if v is None:
                result.pop(k, None)
            else:
                result[k] = strategic_merge(result.get(k), v, k)
        return result
    if isinstance(patch, list) and key in _MERGE_KEYS and isinstance(target, list):
        merge_key = _MERGE_KEYS[key]
        result = copy.deepcopy(target)
        for item in patch:
            match = next((i for i, t in enumerate(result) if t.get(merge_key) == item.get(merge_key)), None)
            if match is None:
                result.append(copy.deepcopy(item))
            else:
                result[match] = strategic_merge(result[match], item)
        return result
    return copy.deepcopy(patch)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of ``kind`` named ``name`` (fails the test if missing)."""
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind} {name}, found {len(hits)}"
    return hits[0]
