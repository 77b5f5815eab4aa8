"""What caig's servers rely on from kserve, pinned on a tiny model so a kserve upgrade that changes it fails here:
the V1 and V2 routes answer, readiness follows ``model.ready``, ``/metrics`` counts requests, our OpenAPI
paths are served, an ``InvalidInput`` is a 400, the host we name is the one bound, SIGTERM stops gracefully."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from caig.serving.kserve_compat import import_kserve
from caig.serving.server import contract_app, register

kserve = import_kserve()
from kserve.errors import InvalidInput  # noqa: E402

ECHO = textwrap.dedent(
    """
    import sys
    from caig.serving.kserve_compat import import_kserve
    kserve = import_kserve()
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferResponse

    class Echo(kserve.Model):
        def __init__(self):
            super().__init__("echo")
            self.ready = True

        def predict(self, payload, headers=None):
            if isinstance(payload, dict):
                if not payload.get("instances"):
                    raise InvalidInput("instances: at least one is needed")
                return {"predictions": [{"echo": x} for x in payload["instances"]]}
            values = [2 * v for v in payload.inputs[0].data]
            out = InferOutput("doubled", [len(values)], "INT64", values)
            return InferResponse(payload.id or "0", self.name, [out])

        def stop(self):
            print("echo stopped", flush=True)
    """
)


@pytest.fixture
def echo():
    namespace: dict = {}
    exec(ECHO, namespace)  # noqa: S102 - the same model the subprocess serves
    return namespace["Echo"]()


@pytest.fixture
def client(echo):
    paths = {"/v1/models/echo:predict": {"post": {"summary": "caig's own schema"}}}
    app = contract_app(register([echo]), openapi_paths=paths)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_v1_and_v2_routes_answer(client):
    assert client.get("/").status_code == 200
    answer = client.post("/v1/models/echo:predict", json={"instances": [1, 2]})
    assert answer.status_code == 200 and answer.json() == {"predictions": [{"echo": 1}, {"echo": 2}]}
    body = {"inputs": [{"name": "x", "shape": [2], "datatype": "INT64", "data": [3, 4]}]}
    answer = client.post("/v2/models/echo/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [6, 8]
    assert client.get("/v2/models/echo").json()["name"] == "echo"
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v1/models").json() == {"models": ["echo"]}
    metrics = client.get("/metrics").text
    assert 'request_predict_seconds_count{model_name="echo"}' in metrics


def test_readiness_follows_model_ready(client, echo):
    assert client.get("/v2/models/echo/ready").status_code == 200
    assert client.get("/v1/models/echo").json()["ready"] is True
    assert client.get("/v2/health/ready").status_code == 200
    echo.ready = False
    assert client.get("/v2/models/echo/ready").status_code == 503
    assert client.get("/v1/models/echo").status_code == 503
    assert client.post("/v1/models/echo:predict", json={"instances": [1]}).status_code == 503
    echo.ready = True
    assert client.get("/v2/models/echo/ready").status_code == 200


def test_invalid_input_is_a_400_and_an_unknown_model_a_404(client):
    answer = client.post("/v1/models/echo:predict", json={"instances": []})
    assert answer.status_code == 400
    assert answer.json() == {"error": "instances: at least one is needed"}
    assert client.post("/v1/models/echo:predict", content=b"{not json").status_code == 400
    assert client.post("/v1/models/nope:predict", json={"instances": [1]}).status_code == 404
    assert client.post("/v2/repository/models/echo/unload").status_code == 403


def test_our_openapi_document_is_served(client):
    document = client.get("/openapi.json").json()
    assert document["paths"]["/v1/models/echo:predict"]["post"]["summary"] == "caig's own schema"
    assert "/v2/models/{model_name}/infer" in document["paths"]


def test_register_refuses_when_no_model_is_ready(echo):
    from kserve.errors import NoModelReady

    echo.ready = False
    with pytest.raises(NoModelReady):
        register([echo])
    assert InvalidInput  # kserve's public error class, raised by our models


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_binds_the_host_it_is_told_and_stops_on_sigterm(tmp_path):
    """Served on 127.0.0.2: answers there, refuses 127.0.0.1 (kserve's ModelServer would bind 0.0.0.0)."""
    port = _free_port()
    script = ECHO + textwrap.dedent(
        f"""
        from caig.serving.server import serve
        serve([Echo()], host="127.0.0.2", port={port})
        """
    )
    log = tmp_path / "echo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.2:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "echo stopped" in text and "Traceback" not in text
    assert "/v2/health/ready" not in text  # no per-request access line
