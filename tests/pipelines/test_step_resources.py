"""Every step of every compiled pipeline is sized (requests and limits, CPU steps included), ingest's DuckDB
fits its limit, and only the register step carries the caig-register identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from caig.errors import UserError
from caig.orchestration.images import IMAGE_UID
from caig.orchestration.resources import check_duckdb_fits, duckdb_bytes, memory_bytes
from caig.orchestration.source import ensure_importable
from caig.profile import load_profile

ROOT = ensure_importable()
COMPILED = ROOT / "pipelines" / "compiled"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the compiled files are large
PIPELINES = sorted(p.stem for p in COMPILED.glob("*.yaml"))
SIZES = ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit")


def _load(name: str) -> tuple[dict, dict]:
    docs = list(yaml.load_all((COMPILED / f"{name}.yaml").read_text(), Loader=LOADER))
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _cores(text: str) -> float:
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _containers(spec: dict) -> dict[str, dict]:
    return {n: e["container"] for n, e in spec["deploymentSpec"]["executors"].items() if "container" in e}


@pytest.mark.parametrize("name", PIPELINES)
def test_every_executor_has_requests_and_limits(name):
    spec, _ = _load(name)
    containers = _containers(spec)
    assert len(containers) == len(spec["deploymentSpec"]["executors"])  # no importer or other non-container
    for executor, container in containers.items():
        resources = container.get("resources", {})
        missing = [key for key in SIZES if key not in resources]
        assert not missing, f"{name}/{executor} lacks {missing}"
        assert _cores(resources["resourceCpuRequest"]) <= _cores(resources["resourceCpuLimit"]), executor
        request, limit = resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]
        assert memory_bytes(request) <= memory_bytes(limit), executor


@pytest.mark.parametrize("name", PIPELINES)
def test_every_executor_runs_as_the_images_non_root_user(name):
    """Pod Security restricted in the runs' namespace: KFP's backend drops capabilities, forbids escalation
    and sets seccomp; the user is ours to set, on every step."""
    spec, executors = _load(name)
    assert set(executors) == set(spec["deploymentSpec"]["executors"])
    for executor, config in executors.items():
        context = config.get("securityContext", {})
        assert context.get("runAsNonRoot") is True, executor
        ids = {int(context.get("runAsUser", -1)), int(context.get("runAsGroup", -1))}
        assert ids == {IMAGE_UID}, (executor, context)


@pytest.mark.parametrize("name", ["caig-training", "caig-refresh", "caig-generate"])
def test_ingest_duckdb_fits_its_memory_limit(name):
    spec, _ = _load(name)
    profile = json.loads(spec["root"]["inputDefinitions"]["parameters"]["profile"]["defaultValue"])
    duckdb = duckdb_bytes(profile["data"]["ingest"]["memory_limit"])
    limit = memory_bytes(_containers(spec)["exec-ingest-events"]["resources"]["resourceMemoryLimit"])
    assert duckdb <= 0.8 * limit  # Python, Arrow batches and DuckDB's own overhead above its limit
    threads = profile["data"]["ingest"]["threads"]
    cpu = _cores(_containers(spec)["exec-ingest-events"]["resources"]["resourceCpuLimit"])
    assert threads <= cpu  # DuckDB's threads are not throttled below what the profile asks


def test_only_the_register_step_acts_as_caig_register():
    """KFP sets no service account per step, so the caig-register token is mounted on register alone and
    the step's Kubernetes client uses it (caig.deploy.kubeconfig.load_kube_config(token_dir=...))."""
    profile = load_profile("production")
    holders = {}
    for name in PIPELINES:
        _, k8s = _load(name)
        for executor, settings in k8s.items():
            for secret in settings.get("secretAsVolume", []):
                holders.setdefault(secret["secretName"], []).append((name, executor, secret["mountPath"]))
    assert holders == {
        "caig-register-token": [
            ("caig-training", "exec-register-models", profile.orchestration.register_identity_path)
        ]
    }
    # and that Secret is the token of the caig-register service account, in the servers' namespace
    manifests = ROOT / "manifests" / "base"
    secrets = [
        d
        for f in manifests.glob("*.yaml")
        for d in yaml.load_all(f.read_text(), Loader=LOADER)
        if d and d.get("kind") == "Secret" and d["metadata"]["name"] == "caig-register-token"
    ]
    assert len(secrets) == 1 and secrets[0]["type"] == "kubernetes.io/service-account-token"
    assert secrets[0]["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "caig-register"


def test_a_duckdb_limit_above_the_step_is_refused_with_the_fix():
    check_duckdb_fits("8GB", "ingest", "12G")
    with pytest.raises(UserError, match=r"step_resources\.ingest\.memory_limit to at least 11G"):
        check_duckdb_fits("8GB", "ingest", "8Gi")


def test_compile_refuses_sizes_that_do_not_fit(tmp_path):
    from pipelines.compile import compile_all

    too_small = ["orchestration.step_resources.ingest={memory_request: 6G, memory_limit: 6G}"]
    with pytest.raises(UserError, match="data.ingest.memory_limit 8GB does not fit the ingest step"):
        compile_all(load_profile("production", too_small), tmp_path)
    typo = ["orchestration.step_resources={injest: {memory_limit: 6G}}"]
    with pytest.raises(UserError, match="step_resources.injest: no pipeline step has that name"):
        compile_all(load_profile("production", typo), tmp_path)
    with pytest.raises(UserError, match="cpu_request 4 is above cpu_limit 2"):
        load_profile("production", ["orchestration.cpu.cpu_request='4'"])
    assert not list(Path(tmp_path).iterdir())  # nothing written before the checks pass
