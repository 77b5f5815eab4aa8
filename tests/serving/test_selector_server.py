"""The creative selector served by KServe on loopback: kserve's REST client and plain HTTP, V1 and V2."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from caig.serving.kserve_compat import import_kserve

kserve = import_kserve()
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig  # noqa: E402

PRODUCT, SEGMENT = "P00003", "family"


def _kserve_infer(url: str, protocol: str, model: str, data):
    async def call():
        client = InferenceRESTClient(RESTConfig(protocol=protocol, retries=0, timeout=30))
        try:
            return await client.infer(url, data, model_name=model)
        finally:
            await client.close()

    return asyncio.run(call())


def _post(url: str, path: str, body) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=30)


def _creatives_of(run, product: str) -> list[str]:
    import pandas as pd

    creatives = pd.read_parquet(run / "world" / "creatives.parquet")
    return creatives[creatives.product_id == product].creative_id.tolist()


def test_v1_selection_with_kserves_client(sqlite_server, serving_run):
    answer = _kserve_infer(
        sqlite_server.url,
        "v1",
        "creative-selector",
        {"instances": [{"product_id": PRODUCT, "segment": SEGMENT}] * 3},
    )
    assert len(answer["predictions"]) == 3
    for pick in answer["predictions"]:
        assert set(pick) == {"creative_id", "propensity", "policy"}
        assert pick["creative_id"] in _creatives_of(serving_run, PRODUCT)
        assert 0 < pick["propensity"] <= 1 and pick["policy"] == "thompson-rm-prior"


def test_v2_selection_with_kserves_client(sqlite_server, serving_run):
    request = InferRequest(
        "creative-selector",
        [
            InferInput("product_id", [2], "BYTES", [PRODUCT, "P00004"]),
            InferInput("segment", [2], "BYTES", [SEGMENT, "young"]),
        ],
    )
    response = _kserve_infer(sqlite_server.url, "v2", "creative-selector", request)
    outputs = {o.name: o for o in response.outputs}
    creatives = [c.decode() if isinstance(c, bytes) else c for c in outputs["creative_id"].data]
    assert creatives[0] in _creatives_of(serving_run, PRODUCT)
    assert creatives[1] in _creatives_of(serving_run, "P00004")
    assert outputs["propensity"].datatype == "FP64" and all(0 < p <= 1 for p in outputs["propensity"].data)


def test_plain_http_v1_and_v2(sqlite_server):
    v1 = _post(
        sqlite_server.url,
        "/v1/models/creative-selector:predict",
        {"instances": [{"product_id": PRODUCT, "segment": SEGMENT}]},
    )
    assert v1.status_code == 200 and v1.json()["predictions"][0]["creative_id"].startswith("C")
    v2 = _post(
        sqlite_server.url,
        "/v2/models/creative-selector/infer",
        {
            "inputs": [
                {"name": "product_id", "shape": [1], "datatype": "BYTES", "data": [PRODUCT]},
                {"name": "segment", "shape": [1], "datatype": "BYTES", "data": [SEGMENT]},
            ]
        },
    )
    assert v2.status_code == 200
    assert {o["name"] for o in v2.json()["outputs"]} == {"creative_id", "propensity", "policy"}


def test_feedback_recorded_then_duplicate_over_v1_and_v2(sqlite_server, serving_run):
    creative = _creatives_of(serving_run, PRODUCT)[0]
    event = {
        "event_id": f"ev-{uuid.uuid4()}",
        "product_id": PRODUCT,
        "segment": SEGMENT,
        "creative_id": creative,
        "clicked": True,
        "propensity": 0.3,
    }
    answer = _kserve_infer(sqlite_server.url, "v1", "creative-feedback", {"instances": [event, event]})
    assert answer["predictions"] == ["recorded", "duplicate"]
    again = _post(
        sqlite_server.url,
        "/v2/models/creative-feedback/infer",
        {
            "inputs": [
                {
                    "name": "event_id",
                    "shape": [2],
                    "datatype": "BYTES",
                    "data": [event["event_id"], "ev-new-" + event["event_id"]],
                },
                {"name": "product_id", "shape": [2], "datatype": "BYTES", "data": [PRODUCT] * 2},
                {"name": "segment", "shape": [2], "datatype": "BYTES", "data": [SEGMENT] * 2},
                {"name": "creative_id", "shape": [2], "datatype": "BYTES", "data": [creative] * 2},
                {"name": "clicked", "shape": [2], "datatype": "BOOL", "data": [True, False]},
            ]
        },
    )
    assert again.status_code == 200 and again.json()["outputs"][0]["data"] == ["duplicate", "recorded"]


V1_SELECT = "/v1/models/creative-selector:predict"
V1_FEEDBACK = "/v1/models/creative-feedback:predict"
V2_SELECT = "/v2/models/creative-selector/infer"


def _v2(product=("BYTES", [PRODUCT]), segment=("BYTES", [SEGMENT])):
    inputs = []
    for name, spec in (("product_id", product), ("segment", segment)):
        if spec is not None:
            inputs.append({"name": name, "shape": [len(spec[1])], "datatype": spec[0], "data": spec[1]})
    return {"inputs": inputs}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (V1_SELECT, {"instances": [{"segment": SEGMENT}]}, "product_id"),
        (V1_SELECT, {"instances": [{"product_id": "P99999", "segment": SEGMENT}]}, "product_id"),
        (V1_SELECT, {"instances": [{"product_id": 3, "segment": SEGMENT}]}, "product_id"),
        (V1_SELECT, {"instances": [{"product_id": PRODUCT}]}, "segment"),
        (V1_SELECT, {"instances": [{"product_id": PRODUCT, "segment": ["young"]}]}, "segment"),
        (V1_SELECT, {"instances": [{"product_id": PRODUCT, "segment": "martian"}]}, "segment"),
        (V1_SELECT, {"instances": []}, "instances"),
        (V1_SELECT, {"instances": "P00003"}, "instances"),
        (V1_SELECT, {"rows": []}, "instances"),
        (V1_SELECT, [1, 2], "body"),
        (V2_SELECT, _v2(product=None), "product_id"),
        (V2_SELECT, _v2(product=("BYTES", ["P99999"])), "product_id"),
        (V2_SELECT, _v2(product=("INT64", [3])), "product_id"),
        (V2_SELECT, _v2(segment=("FP32", [1.0])), "segment"),
        (V2_SELECT, _v2(segment=None), "segment"),
        (
            V1_FEEDBACK,
            {"instances": [{"event_id": "x", "product_id": PRODUCT, "segment": SEGMENT}]},
            "creative_id",
        ),
        (
            V1_FEEDBACK,
            {
                "instances": [
                    {
                        "event_id": "x",
                        "product_id": PRODUCT,
                        "segment": SEGMENT,
                        "creative_id": "C999999",
                        "clicked": True,
                    }
                ]
            },
            "creative_id",
        ),
        (
            V1_FEEDBACK,
            {
                "instances": [
                    {
                        "event_id": 5,
                        "product_id": PRODUCT,
                        "segment": SEGMENT,
                        "creative_id": "C000015",
                        "clicked": True,
                    }
                ]
            },
            "event_id",
        ),
    ],
)
def test_bad_payloads_get_4xx_naming_the_field(sqlite_server, path, body, field):
    response = _post(sqlite_server.url, path, body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["error"]


def test_malformed_bodies_are_4xx_never_5xx(sqlite_server):
    for path in (V1_SELECT, V2_SELECT, V1_FEEDBACK):
        for content in (b"not json", b"{", b'{"inputs": "x"}', b'{"instances": [null]}'):
            r = httpx.post(
                f"{sqlite_server.url}{path}",
                content=content,
                headers={"content-type": "application/json"},
                timeout=30,
            )
            assert 400 <= r.status_code < 500, (path, content, r.status_code, r.text)


def test_clicked_missing_is_named_over_v1(sqlite_server):
    event = {"event_id": "y", "product_id": PRODUCT, "segment": SEGMENT, "creative_id": "C000015"}
    r = _post(sqlite_server.url, V1_FEEDBACK, {"instances": [event]})
    assert r.status_code == 400 and "clicked" in r.json()["error"]


def test_health_readiness_and_prometheus_metrics(sqlite_server):
    assert httpx.get(f"{sqlite_server.url}/v2/health/ready", timeout=10).status_code == 200
    assert httpx.get(f"{sqlite_server.url}/v1/models/creative-feedback", timeout=10).json()["ready"] is True
    _post(sqlite_server.url, V1_SELECT, {"instances": [{"product_id": PRODUCT, "segment": SEGMENT}]})
    metrics = httpx.get(f"{sqlite_server.url}/metrics", timeout=10).text
    assert 'request_predict_seconds_count{model_name="creative-selector"}' in metrics


def test_no_log_line_per_request_and_the_loop_is_uvloop(sqlite_server):
    # per-request logging (uvicorn's access line, kserve's timing middleware) would cost more than a selection
    for _ in range(3):
        answer = _post(
            sqlite_server.url, V1_SELECT, {"instances": [{"product_id": PRODUCT, "segment": SEGMENT}]}
        )
        assert answer.status_code == 200
    log = sqlite_server.log_path.read_text()
    assert "event loop uvloop" in log
    assert "creative-selector%3Apredict" not in log and "kserve.trace" not in log and "time:wall" not in log
