"""One storage story, end to end: every pipeline step that writes what a server reads mounts the very PVC
that server reads, at the path the step writes to, in the namespace they share.

The writers and their paths come from the compiled pipelines' own default profile; the readers' claims from
the manifests (the Feast server's volume, the InferenceServices' ``pvc://`` storageUri, the selector's run
volume); the claims from manifests/base/storage.yaml.
"""

from __future__ import annotations

import functools
import json
from pathlib import PurePosixPath
from urllib.parse import urlparse

import pytest
import yaml

from caig.orchestration.source import ensure_importable

ROOT = ensure_importable()
COMPILED = ROOT / "pipelines" / "compiled"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the compiled files are large
BASE = ROOT / "manifests" / "base"


@functools.cache
def _docs(path) -> list[dict]:
    """The objects of a manifest file (read once; never modified)."""
    return [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]


def _pipeline(name: str) -> tuple[dict, dict, dict]:
    """Spec, Kubernetes executor settings, and the default profile of a compiled pipeline."""
    docs = list(yaml.load_all((COMPILED / f"{name}.yaml").read_text(), Loader=LOADER))
    params = docs[0]["root"]["inputDefinitions"]["parameters"]
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return docs[0], k8s, json.loads(params["profile"]["defaultValue"])


def _claims() -> set[str]:
    return {
        d["metadata"]["name"] for d in _docs(BASE / "storage.yaml") if d["kind"] == "PersistentVolumeClaim"
    }


def _pod_claim_at(kind: str, name: str, mount_path: str) -> str:
    """The claim a manifest's pod mounts at ``mount_path``."""
    obj = next(
        d
        for f in BASE.glob("*.yaml")
        for d in _docs(f)
        if d.get("kind") == kind and d["metadata"]["name"] == name
    )
    pod = obj["spec"]["template"]["spec"]
    volume = next(
        m["name"]
        for c in pod["containers"]
        for m in c.get("volumeMounts", [])
        if m["mountPath"] == mount_path
    )
    return next(v for v in pod["volumes"] if v["name"] == volume)["persistentVolumeClaim"]["claimName"]


def _served_run_claims() -> set[str]:
    """The claims the InferenceServices load their run from (``storageUri: pvc://CLAIM/...``)."""
    found = set()
    for doc in _docs(BASE / "inferenceservices.yaml"):
        uri = doc["spec"]["predictor"]["model"]["storageUri"]
        assert urlparse(uri).scheme == "pvc", f"{doc['metadata']['name']}: {uri} is not on a volume"
        found.add(urlparse(uri).netloc)
    return found


def writers(profile: dict) -> dict[str, tuple[str, str]]:
    """Executor -> (the path it writes that a server reads, the claim that server reads it from)."""
    feast_dir = next(
        a for d in _docs(BASE / "feast.yaml") if d["kind"] == "Deployment"
        for a in d["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("/mnt/")
    )  # fmt: skip
    orchestration = profile["orchestration"]
    (runs_claim,) = _served_run_claims()
    assert _pod_claim_at("Deployment", "creative-selector", "/mnt/run") == runs_claim  # the selector too
    return {
        "exec-materialize-features": (
            profile["features"]["store_dir"],
            _pod_claim_at("Deployment", "feast-feature-server", feast_dir),
        ),
        "exec-register-models": (orchestration["runs_mount_path"], runs_claim),
        "exec-generate-creatives": (orchestration["data_mount_path"], orchestration["data_pvc"]),
    }


def misplaced_writes(spec: dict, k8s: dict, profile: dict) -> list[str]:
    """One line per step that writes for a server without mounting that server's claim at the path."""
    problems = []
    for executor, (path, claim) in writers(profile).items():
        if executor not in spec["deploymentSpec"]["executors"]:
            continue
        mounts = k8s.get(executor, {}).get("pvcMount", [])
        holding = [m for m in mounts if PurePosixPath(path).is_relative_to(m["mountPath"])]
        if not PurePosixPath(path).is_absolute() or not holding:
            problems.append(f"{executor} writes {path} but mounts nothing there")
        elif holding[0]["constant"] != claim:
            problems.append(f"{executor} writes {path} on {holding[0]['constant']}, the server reads {claim}")
    return problems


@pytest.mark.parametrize("name", ["caig-training", "caig-refresh", "caig-generate"])
def test_every_step_writing_for_a_server_mounts_its_volume(name):
    spec, k8s, profile = _pipeline(name)
    assert set(writers(profile)) & set(spec["deploymentSpec"]["executors"])  # something to check
    assert misplaced_writes(spec, k8s, profile) == []
    claims = _claims()
    assert {claim for _, claim in writers(profile).values()} <= claims
    # and every volume any step mounts is one of the deployment's claims
    mounted = {m["constant"] for settings in k8s.values() for m in settings.get("pvcMount", [])}
    assert mounted <= claims, mounted - claims


def test_the_check_sees_a_store_written_inside_the_container(tmp_path):
    """The features step of a profile without the features volume: what the issue found (the store lost)."""
    from pipelines.compile import compile_pipeline

    from caig.profile import load_profile

    path = compile_pipeline(
        "caig-refresh", load_profile("production", ["orchestration.features_pvc="]), tmp_path / "r.yaml"
    )
    docs = list(yaml.load_all(path.read_text(), Loader=LOADER))
    k8s = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    _, _, profile = _pipeline("caig-refresh")
    assert misplaced_writes(docs[0], k8s, profile) == [
        "exec-materialize-features writes /mnt/features but mounts nothing there"
    ]


def test_steps_run_where_the_volumes_are():
    """PVCs are namespaced: the register step patches the servers in serving_namespace, the namespace the
    pipeline runs in (the Kubeflow profile namespace) and where the overlay puts the claims."""
    _, _, profile = _pipeline("caig-training")
    overlay = yaml.safe_load(
        (ROOT / "manifests" / "overlays" / "production" / "kustomization.yaml").read_text()
    )
    assert profile["orchestration"]["serving_namespace"] == overlay["namespace"] == "caig"
    assert profile["deploy"]["kfp_namespace"] in ("", overlay["namespace"])
