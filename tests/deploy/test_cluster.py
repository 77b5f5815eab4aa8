"""``caig deploy`` / ``caig promote`` without --dry-run, through the real kubernetes and KServe clients.

No cluster runs here, so the API server is a small in-process HTTP stand-in on 127.0.0.1 that stores
objects and applies merge patches the way the real one does; the test checks the requests the clients send
(method, path, content type, body) and that waiting reads readiness back.
"""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from tests.deploy.conftest import MANIFESTS, merge_patch, strategic_merge
from tests.deploy.loopback import JsonHandler

from caig.cli import main
from caig.deploy.plan import MERGE_PATCH, STRATEGIC_MERGE_PATCH

ISVC = "/apis/serving.kserve.io/v1beta1/namespaces/caig/inferenceservices"
DEPLOY = "/apis/apps/v1/namespaces/caig/deployments"
FEATURES = "/api/v1/namespaces/knative-serving/configmaps/config-features"


class FakeApiServer(ThreadingHTTPServer):
    """Objects by path; every request is recorded as (method, path, content type, body)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str, Any]] = []


class _Handler(JsonHandler):
    server: FakeApiServer

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _record(self, body: Any = None) -> str:
        path = self.path.split("?")[0]
        self.server.requests.append((self.command, path, self.headers.get("Content-Type", ""), body))
        return path

    def do_GET(self) -> None:  # noqa: N802
        path = self._record()
        key = path.removesuffix("/status")
        if key not in self.server.objects:
            self._send(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                },
            )
            return
        self._send(200, _with_status(self.server.objects[key]))

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        path = self._record(body)
        key = f"{path}/{body['metadata']['name']}"
        body["metadata"]["generation"] = 1
        if body["kind"] == "Deployment":
            body["spec"].setdefault("replicas", 1)  # the API server's default (an HPA scales it later)
        self.server.objects[key] = body
        self._send(201, body)

    def do_PATCH(self) -> None:  # noqa: N802
        body = self._body()
        path = self._record(body)
        current = self.server.objects[path]
        kind = self.headers["Content-Type"]
        patched = merge_patch(current, body) if kind == MERGE_PATCH else strategic_merge(current, body)
        patched["metadata"]["generation"] = current["metadata"]["generation"] + 1
        self.server.objects[path] = patched
        self._send(200, patched)


def _with_status(obj: dict[str, Any]) -> dict[str, Any]:
    """What controllers would report once the new generation is up."""
    if obj["kind"] not in ("InferenceService", "Deployment"):
        return obj
    generation = obj["metadata"]["generation"]
    if obj["kind"] == "InferenceService":
        status = {"observedGeneration": generation, "conditions": [{"type": "Ready", "status": "True"}]}
    else:
        replicas = obj["spec"]["replicas"]
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "readyReplicas": replicas,
        }
    return {**obj, "status": status}


@pytest.fixture()
def api(tmp_path, monkeypatch):
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [
                    {"name": "test", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "test", "user": {"token": "test-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield server
    server.shutdown()
    server.server_close()


def caig(*args: str, capsys) -> dict[str, Any]:
    try:
        main([*args, "--profile", "production", "--set", f"deploy.manifests_dir={MANIFESTS}"])
    except SystemExit as done:
        assert done.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_deploy_creates_then_patches_then_promotes(api, capsys):
    first = caig("deploy", "pm", "--model-uri", "s3://caig-runs/a", "--no-wait", capsys=capsys)
    assert first["applied"]["result"] == "created"
    method, path, _, body = api.requests[-1]
    assert (method, path) == ("POST", ISVC) and body == {
        **first["plan"]["object"],
        "metadata": body["metadata"],
    }
    assert body["spec"]["predictor"]["model"]["storageUri"] == "s3://caig-runs/a"

    second = caig(
        "deploy", "pm", "--model-uri", "s3://caig-runs/b", "--canary", "10", "--no-wait", capsys=capsys
    )
    assert second["applied"] == {
        "result": "patched",
        "kind": "InferenceService",
        "name": "caig-pm",
        "namespace": "caig",
        "generation": 2,
        "ready": None,
    }
    method, path, content_type, body = api.requests[-1]
    assert (method, path, content_type) == ("PATCH", f"{ISVC}/caig-pm", MERGE_PATCH)
    assert body == second["plan"]["patch"]["body"]
    predictor = api.objects[f"{ISVC}/caig-pm"]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["model"]["storageUri"] == "s3://caig-runs/b"
    assert predictor["nodeSelector"] == {"caig.io/node-pool": "gpu"}  # what git owns is left alone

    caig("promote", "pm", "--no-wait", capsys=capsys)
    assert "canaryTrafficPercent" not in api.objects[f"{ISVC}/caig-pm"]["spec"]["predictor"]
    assert api.objects[f"{ISVC}/caig-pm"]["spec"]["predictor"]["model"]["storageUri"] == "s3://caig-runs/b"


def test_promote_needs_an_existing_model_server(api, capsys):
    with pytest.raises(SystemExit) as done:
        main(["promote", "rm", "--profile", "production", "--set", f"deploy.manifests_dir={MANIFESTS}"])
    assert done.value.code == 2
    assert "InferenceService caig/caig-rm does not exist" in capsys.readouterr().err
    assert {r[0] for r in api.requests} == {"GET"}  # nothing written


def test_selector_rollout_waits_for_the_new_pods(api, capsys):
    created = caig("deploy", "selector", "--model-uri", "pvc://caig-runs/a", capsys=capsys)
    assert created["applied"]["result"] == "created" and created["applied"]["ready"] is True
    patched = caig("deploy", "selector", "--model-uri", "pvc://caig-runs/b", capsys=capsys)
    method, path, content_type, body = api.requests[-2]  # the PATCH, then the status read
    assert (method, path, content_type) == ("PATCH", f"{DEPLOY}/creative-selector", STRATEGIC_MERGE_PATCH)
    assert body == patched["plan"]["patch"]["body"] and patched["applied"]["ready"] is True
    assert api.requests[-1][:2] == ("GET", f"{DEPLOY}/creative-selector/status")
    pod = api.objects[f"{DEPLOY}/creative-selector"]["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/mnt/run")
    assert mount["subPath"] == "b" and mount["readOnly"] is True


def test_inference_service_wait_uses_kserve_client(api, capsys):
    done = caig("deploy", "rm", "--model-uri", "gs://caig-runs/a", capsys=capsys)
    assert done["applied"]["ready"] is True
    assert api.requests[-1][:2] == ("GET", f"{ISVC}/caig-rm")  # KServeClient.is_isvc_ready polled it


def _config_features(data: dict[str, str]) -> dict[str, Any]:
    meta = {"name": "config-features", "namespace": "knative-serving", "generation": 1}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_a_rollout_knative_would_reject_is_refused_with_the_fix(api, capsys):
    """A default Knative install (no podspec flags): the dry run lists what is missing, the rollout refuses
    before writing anything; once the flags are enabled it goes through."""
    api.objects[FEATURES] = _config_features({"_example": "defaults"})
    planned = caig("deploy", "pm", "--model-uri", "pvc://caig-runs/r1", "--dry-run", capsys=capsys)
    knative = planned["knative"]
    assert knative["read"] is True and "kubernetes.podspec-nodeselector" in knative["missing"]
    assert ("GET", FEATURES) in [r[:2] for r in api.requests]

    with pytest.raises(SystemExit) as done:
        main(["deploy", "pm", "--model-uri", "pvc://caig-runs/r1", "--no-wait", "--profile", "production"]
             + ["--set", f"deploy.manifests_dir={MANIFESTS}"])  # fmt: skip
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "Knative would reject the InferenceServices: knative-serving/config-features lacks" in err
    assert "kubectl patch configmap config-features -n knative-serving" in err
    assert {r[0] for r in api.requests} == {"GET"}  # nothing written

    api.objects[FEATURES] = _config_features({flag: "enabled" for flag in knative["missing"]})
    applied = caig("deploy", "pm", "--model-uri", "pvc://caig-runs/r1", "--no-wait", capsys=capsys)
    assert applied["applied"]["result"] == "created" and applied["knative"]["missing"] == []
