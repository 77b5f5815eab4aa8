"""The Feast feature server runs with Kubernetes auth on the store the features step wrote.

Its init container's script runs here for real (``sh``) on the feature_store.yaml that ``caig features
apply`` writes for the production profile: the server's file must be that store plus ``auth: kubernetes``,
and a missing store must stop the pod with the fix. The server itself needs a cluster (in-cluster config),
so what is checked of it is how the pod wires the file, the token and the Redis password.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml
from tests.deploy.conftest import ROOT, find

from caig.features.store import store_yaml
from caig.profile import load_profile


def _feast_pod(built: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return find(built["production"], "Deployment", "feast-feature-server")["spec"]["template"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _run_init(pod: dict[str, Any], store: Path, server: Path) -> subprocess.CompletedProcess[str]:
    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == "server-config")
    assert init["command"] == ["sh", "-c"] and len(init["args"]) == 1
    env = {**os.environ, "FEAST_STORE_YAML": str(store), "FEAST_SERVER_YAML": str(server)}
    return subprocess.run(["sh", "-c", init["args"][0]], env=env, capture_output=True, text=True, check=False)


def test_server_config_is_the_store_plus_kubernetes_auth(built, tmp_path):
    features = load_profile(str(ROOT / "configs" / "production.yaml")).features
    written = store_yaml(features)
    store = tmp_path / "features" / "feature_store.yaml"
    store.parent.mkdir()
    store.write_text(yaml.safe_dump(written, sort_keys=False))  # as `caig features apply` writes it
    server = tmp_path / "server" / "feature_store.yaml"
    server.parent.mkdir()
    done = _run_init(_feast_pod(built), store, server)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(server.read_text()) == {**written, "auth": {"type": "kubernetes"}}
    # a store with an auth of its own is overridden: a later key wins in YAML
    store.write_text(yaml.safe_dump({**written, "auth": {"type": "no_auth"}}, sort_keys=False))
    assert _run_init(_feast_pod(built), store, server).returncode == 0
    assert yaml.safe_load(server.read_text())["auth"] == {"type": "kubernetes"}


def test_missing_store_stops_the_pod_with_the_fix(built, tmp_path):
    done = _run_init(_feast_pod(built), tmp_path / "none" / "feature_store.yaml", tmp_path / "server.yaml")
    assert done.returncode == 1
    assert "run the features step (caig features apply) first" in done.stderr
    assert not (tmp_path / "server.yaml").exists()


def test_server_reads_the_written_file_with_a_token_and_the_redis_password(built):
    pod = _feast_pod(built)
    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == "server-config")
    server = next(c for c in pod["spec"]["containers"] if c["name"] == "feast")
    paths = _env(init)
    args = server["args"]
    assert args[args.index("-f") + 1] == paths["FEAST_SERVER_YAML"]
    assert args[args.index("--chdir") + 1] == str(Path(paths["FEAST_STORE_YAML"]).parent)
    assert args[args.index("-f") + 2] == "serve"
    config_dir = str(Path(paths["FEAST_SERVER_YAML"]).parent)
    init_mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    server_mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    assert init_mounts[config_dir]["name"] == server_mounts[config_dir]["name"]
    assert server_mounts[config_dir]["readOnly"] is True
    assert pod["spec"]["automountServiceAccountToken"] is True  # Feast's auth calls the API with it
    assert pod["metadata"]["labels"]["caig.io/kube-api-client"] == "true"


def test_redis_clients_get_the_password_the_profile_names(built):
    """Every pod labelled as a Redis client has the env var the profile reads the password from."""
    profile = load_profile(str(ROOT / "configs" / "production.yaml"))
    name = profile.bandit.redis_password_env
    assert name and f"${{{name}}}" in profile.features.redis_connection_string
    clients = [
        o
        for o in built["production"]
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"].get("caig.io/redis-client")
    ]
    assert {o["metadata"]["name"] for o in clients} == {"creative-selector", "feast-feature-server"}
    for obj in clients:
        container = obj["spec"]["template"]["spec"]["containers"][0]
        ref = _env(container)[name]["secretKeyRef"]
        assert ref == {"name": "caig-redis-auth", "key": "password"}, obj["metadata"]["name"]
