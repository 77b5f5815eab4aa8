"""caig serve pm|rm|render on loopback: kserve's REST client and plain HTTP, V1 and V2, bad payloads -> 400."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from caig.render.label import read_label
from caig.serving.kserve_compat import import_kserve

kserve = import_kserve()
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig  # noqa: E402

PRODUCT = "P00003"


def _kserve_infer(url: str, protocol: str, model: str, data):
    async def call():
        client = InferenceRESTClient(RESTConfig(protocol=protocol, retries=0, timeout=60))
        try:
            return await client.infer(url, data, model_name=model)
        finally:
            await client.close()

    return asyncio.run(call())


def _post(server, path: str, body) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=60)


def _png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _creatives(run, product: str) -> list[str]:
    table = pd.read_parquet(run / "world" / "creatives.parquet")
    return table[table.product_id == product].creative_id.tolist()


def _product_row(run, product: str) -> dict:
    row = pd.read_parquet(run / "world" / "catalog.parquet").set_index("product_id").loc[product]
    return {k: (list(row[k]) if k == "tags" else row[k]) for k in ("title", "category", "tags", "colour")} | {
        "price": float(row["price"])
    }


def _product_png(run, product: str) -> str:
    catalog = pd.read_parquet(run / "world" / "catalog.parquet").set_index("product_id")
    return _png_b64(Image.open(run / "world" / catalog.loc[product, "image_path"]).convert("RGBA"))


# --- PM ---------------------------------------------------------------------------------------------------


def test_pm_v1_by_product_id_and_by_attributes(model_servers, model_run):
    answer = _kserve_infer(
        model_servers["pm"].url,
        "v1",
        "caig-pm",
        {
            "instances": [
                {"product_id": PRODUCT, "n": 3, "temperature": 1.0, "seed": 7},
                {
                    "product": _product_row(model_run, PRODUCT),
                    "image": _product_png(model_run, PRODUCT),
                    "n": 1,
                },
            ]
        },
    )
    first, second = answer["predictions"]
    assert first["product_id"] == PRODUCT and len(first["descriptions"]) == 3
    assert all(isinstance(d, str) for d in first["descriptions"])
    assert "product_id" not in second and len(second["descriptions"]) == 1


def test_pm_seed_makes_answers_repeatable(model_servers):
    body = {"instances": [{"product_id": PRODUCT, "n": 2, "temperature": 1.0, "seed": 11}]}
    one = _post(model_servers["pm"], "/v1/models/caig-pm:predict", body).json()
    two = _post(model_servers["pm"], "/v1/models/caig-pm:predict", body).json()
    assert one == two


def test_pm_v2_descriptions_shape(model_servers):
    body = {
        "inputs": [{"name": "product_id", "shape": [2], "datatype": "BYTES", "data": [PRODUCT, "P00004"]}],
        "parameters": {"n": 3, "temperature": 0.0},
    }
    response = _post(model_servers["pm"], "/v2/models/caig-pm/infer", body)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == "descriptions" and output["shape"] == [2, 3] and len(output["data"]) == 6
    assert output["data"][0] == output["data"][1] == output["data"][2]  # greedy: the same text n times


# --- RM ---------------------------------------------------------------------------------------------------


def test_rm_pair_by_creative_ids_v1(model_servers, model_run):
    a, b = _creatives(model_run, PRODUCT)[:2]
    answer = _kserve_infer(
        model_servers["rm"].url,
        "v1",
        "caig-rm",
        {"instances": [{"product_id": PRODUCT, "creative_ids": [a, b]}]},
    )
    (pair,) = answer["predictions"]
    assert pair["ids"] == [a, b] and sorted(pair["order"]) == [0, 1]
    assert 0 < pair["p_first_better"] < 1
    win = np.array(pair["win_prob"])
    assert np.allclose(win + win.T, 1.0) and pair["p_first_better"] == pytest.approx(win[0, 1])
    assert pair["ranked_ids"][0] == (a if pair["p_first_better"] >= 0.5 else b)


def test_rm_ranks_k_base64_images_and_swapping_is_consistent(model_servers, model_run):
    world = model_run / "world"
    table = pd.read_parquet(world / "creatives.parquet").set_index("creative_id")
    ids = _creatives(model_run, PRODUCT)[:3]
    images = [_png_b64(Image.open(world / table.loc[c, "image_path"])) for c in ids]
    body = {"instances": [{"product": _product_row(model_run, PRODUCT), "images": images}]}
    answer = _post(model_servers["rm"], "/v1/models/caig-rm:predict", body).json()["predictions"][0]
    assert (
        answer["ids"] == [0, 1, 2] and sorted(answer["order"]) == [0, 1, 2] and "p_first_better" not in answer
    )
    reversed_body = {"instances": [{"product": _product_row(model_run, PRODUCT), "images": images[::-1]}]}
    again = _post(model_servers["rm"], "/v1/models/caig-rm:predict", reversed_body).json()["predictions"][0]
    assert np.allclose(np.array(again["win_prob"])[::-1, ::-1], answer["win_prob"], atol=1e-5)


def test_rm_v2_with_kserves_client(model_servers, model_run):
    ids = _creatives(model_run, PRODUCT)[:3]
    request = InferRequest(
        "caig-rm",
        [InferInput("product_id", [1], "BYTES", [PRODUCT]), InferInput("creative_id", [3], "BYTES", ids)],
    )
    response = _kserve_infer(model_servers["rm"].url, "v2", "caig-rm", request)
    outputs = {o.name: o for o in response.outputs}
    assert sorted(outputs["order"].data) == [0, 1, 2]
    assert outputs["win_prob"].shape == [3, 3] and outputs["scores"].datatype == "FP64"


# --- render -----------------------------------------------------------------------------------------------


def test_render_v1_returns_labelled_png(model_servers, model_run, tmp_path):
    body = {
        "instances": [{"product_id": PRODUCT, "description": "on white marble, soft daylight", "seed": 3}]
    }
    answer = _kserve_infer(model_servers["render"].url, "v1", "caig-render", body)
    (ad,) = answer["predictions"]
    assert ad["product_id"] == PRODUCT and ad["label"]["AI-Generated"] == "true"
    path = tmp_path / "ad.png"
    path.write_bytes(base64.b64decode(ad["image"]))
    label = read_label(path)
    assert label["AI-Generated"] == "true" and label["caig:render"]["seed"] == 3
    assert Image.open(path).size == (64, 64)


def test_render_v2_from_a_product_image(model_servers, model_run):
    body = {
        "inputs": [
            {
                "name": "product_image",
                "shape": [1],
                "datatype": "BYTES",
                "data": [_product_png(model_run, PRODUCT)],
            },
            {"name": "description", "shape": [1], "datatype": "BYTES", "data": ["in a forest, warm light"]},
            {"name": "seed", "shape": [1], "datatype": "INT64", "data": [5]},
        ]
    }
    response = _post(model_servers["render"], "/v2/models/caig-render/infer", body)
    assert response.status_code == 200, response.text
    (image,) = response.json()["outputs"]
    assert Image.open(io.BytesIO(base64.b64decode(image["data"][0]))).format == "PNG"


# --- health, metrics, bad payloads ------------------------------------------------------------------------


def test_ready_and_metrics(model_servers, model_run):
    for command, server in model_servers.items():
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/v1/models/caig-{command}", timeout=10).json()["ready"] is True
    _post(
        model_servers["rm"],
        "/v1/models/caig-rm:predict",
        {"instances": [{"product_id": PRODUCT, "creative_ids": _creatives(model_run, PRODUCT)[:2]}]},
    )
    metrics = httpx.get(f"{model_servers['rm'].url}/metrics", timeout=10).text
    assert 'request_predict_seconds_count{model_name="caig-rm"}' in metrics


BAD = [
    ("pm", "/v1/models/caig-pm:predict", {"instances": [{"n": 2}]}, "instances[0].product_id"),
    (
        "pm",
        "/v1/models/caig-pm:predict",
        {"instances": [{"product_id": "P99999"}]},
        "instances[0].product_id",
    ),
    (
        "pm",
        "/v1/models/caig-pm:predict",
        {"instances": [{"product_id": PRODUCT, "n": "two"}]},
        "instances[0].n",
    ),
    ("pm", "/v1/models/caig-pm:predict", {"instances": [{"product_id": PRODUCT, "n": 99}]}, "instances[0].n"),
    (
        "pm",
        "/v1/models/caig-pm:predict",
        {"instances": [{"product_id": PRODUCT, "temperature": True}]},
        "temperature",
    ),
    (
        "pm",
        "/v1/models/caig-pm:predict",
        {"instances": [{"product": {"title": "x"}, "image": "aGk="}]},
        "product.category",
    ),
    (
        "pm",
        "/v1/models/caig-pm:predict",
        {"instances": [{"product_id": PRODUCT, "image": "not base64!"}]},
        "instances[0].image",
    ),
    ("pm", "/v1/models/caig-pm:predict", {"rows": []}, "instances"),
    (
        "rm",
        "/v1/models/caig-rm:predict",
        {"instances": [{"product_id": PRODUCT, "creative_ids": ["C000015"]}]},
        "creative_ids",
    ),
    (
        "rm",
        "/v1/models/caig-rm:predict",
        {"instances": [{"product_id": PRODUCT, "creative_ids": ["C000000", "C000015"]}]},
        "creative_ids[0]",
    ),
    ("rm", "/v1/models/caig-rm:predict", {"instances": [{"product_id": PRODUCT}]}, "instances[0].images"),
    (
        "rm",
        "/v1/models/caig-rm:predict",
        {"instances": [{"product_id": PRODUCT, "images": ["aGk=", "aGk="]}]},
        "images[0]",
    ),
    (
        "render",
        "/v1/models/caig-render:predict",
        {"instances": [{"product_id": PRODUCT}]},
        "instances[0].description",
    ),
    (
        "render",
        "/v1/models/caig-render:predict",
        {"instances": [{"product_id": PRODUCT, "description": 5}]},
        "description",
    ),
    (
        "render",
        "/v1/models/caig-render:predict",
        {"instances": [{"product_id": PRODUCT, "description": "x", "seed": -1}]},
        "seed",
    ),
    (
        "render",
        "/v2/models/caig-render/infer",
        {
            "inputs": [
                {"name": "product_id", "shape": [1], "datatype": "BYTES", "data": [PRODUCT]},
                {"name": "description", "shape": [1], "datatype": "BYTES", "data": ["on sand"]},
                {"name": "seed", "shape": [1], "datatype": "FP32", "data": [1.5]},
            ]
        },
        "seed",
    ),
    (
        "rm",
        "/v2/models/caig-rm/infer",
        {"inputs": [{"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]}]},
        "colour",
    ),
]


@pytest.mark.parametrize(("command", "path", "body", "field"), BAD, ids=[f"{b[0]}-{b[3]}" for b in BAD])
def test_bad_payloads_are_400_naming_the_field(model_servers, command, path, body, field):
    response = _post(model_servers[command], path, body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
