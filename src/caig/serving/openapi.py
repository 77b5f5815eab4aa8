"""The selector's interface as OpenAPI: request and response schemas of the four endpoints an ad server calls.

kserve's own document describes its generic routes (``/v1/models/{model_name}:predict`` takes any JSON); this
one names the creative selector's and the feedback's concrete paths with what they take and answer, so that
clients can be generated and contract tests (schemathesis, in the tests) can fuzz them. ``caig serve selector``
serves it merged into ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from caig.data.values import MAX_ID_LENGTH

MAX_INSTANCES = 1024
_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": r"\S"}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _tensor(
    name: str, datatype: str, item: dict[str, Any], count: tuple[int, int] = (1, MAX_INSTANCES)
) -> dict[str, Any]:
    """A V2 input tensor: ``name``, a 1-D ``shape``, ``datatype`` and its ``data`` (``count``: the least and
    most elements it may hold)."""
    return {
        "type": "object",
        "properties": {
            "name": {"const": name},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "maxItems": 1,
            },
            "datatype": {"const": datatype},
            "data": {"type": "array", "items": item, "minItems": count[0], "maxItems": count[1]},
        },
        "required": ["name", "shape", "datatype", "data"],
    }


def _v2_request(*tensors: dict[str, Any], optional: int = 0) -> dict[str, Any]:
    """A V2 request whose ``inputs`` are ``tensors`` (the last ``optional`` of them may be left out)."""
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "prefixItems": list(tensors),
                "items": False,
                "minItems": len(tensors) - optional,
            },
        },
        "required": ["inputs"],
    }


def _v2_choice(
    *variants: list[dict[str, Any]], parameters: dict[str, Any] | None = None, optional: int = 0
) -> dict[str, Any]:
    """A V2 request that sends one of ``variants`` of inputs (a model reads a product by id or by its
    attributes and image), with request ``parameters`` where the model takes some."""
    requests = [_v2_request(*tensors, optional=optional) for tensors in variants]
    for request in requests:
        if parameters:
            request["properties"]["parameters"] = parameters
    return requests[0] if len(requests) == 1 else {"anyOf": requests}


def _v1_request(instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "instances": {"type": "array", "items": instance, "minItems": 1, "maxItems": MAX_INSTANCES}
        },
        "required": ["instances"],
    }


SELECT_INSTANCE = {
    "type": "object",
    "properties": {"product_id": _ID, "segment": _ID},
    "required": ["product_id", "segment"],
}
FEEDBACK_INSTANCE = {
    "type": "object",
    "properties": {
        "event_id": _ID,
        "product_id": _ID,
        "segment": _ID,
        "creative_id": _ID,
        "clicked": {"type": "boolean"},
        "propensity": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    },
    "required": ["event_id", "product_id", "segment", "creative_id", "clicked"],
}
SELECTION = {
    "type": "object",
    "properties": {
        "creative_id": {"type": "string"},
        "propensity": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "policy": {"type": "string"},
    },
    "required": ["creative_id", "propensity", "policy"],
}
V2_RESPONSE = {
    "type": "object",
    "properties": {"model_name": {"type": "string"}, "id": {"type": "string"}, "outputs": {"type": "array"}},
    "required": ["model_name", "outputs"],
}


def _operation(summary: str, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, **body(request)},
            "responses": {
                "200": {"description": "answered", **body(answer)},
                "400": {"description": "a field is missing or invalid (named in the error)", **body(_ERROR)},
                "413": {"description": "the body is over serving.max_body_bytes", **body(_ERROR)},
                "503": {
                    "description": "the state store is unavailable; retry after Retry-After",
                    **body(_ERROR),
                },
            },
        }
    }


def selector_paths() -> dict[str, Any]:
    """The OpenAPI ``paths`` of the creative selector and its feedback, V1 and V2."""
    text = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
    return {
        "/v1/models/creative-selector:predict": _operation(
            "Choose a creative per (product, segment), with its propensity",
            _v1_request(SELECT_INSTANCE),
            {"type": "object", "properties": {"predictions": {"type": "array", "items": SELECTION}}},
        ),
        "/v1/models/creative-feedback:predict": _operation(
            "Report an impression and whether it was clicked (counted once per event_id)",
            _v1_request(FEEDBACK_INSTANCE),
            {
                "type": "object",
                "properties": {
                    "predictions": {"type": "array", "items": {"enum": ["recorded", "duplicate"]}}
                },
            },  # fmt: skip
        ),
        "/v2/models/creative-selector/infer": _operation(
            "Open Inference protocol: BYTES product_id and segment",
            _v2_request(_tensor("product_id", "BYTES", text), _tensor("segment", "BYTES", text)),
            V2_RESPONSE,
        ),
        "/v2/models/creative-feedback/infer": _operation(
            "Open Inference protocol: BYTES ids, BOOL clicked",
            _v2_request(
                *[_tensor(n, "BYTES", text) for n in ("event_id", "product_id", "segment", "creative_id")],
                _tensor("clicked", "BOOL", {"type": "boolean"}),
            ),  # fmt: skip
            V2_RESPONSE,
        ),
    }


_B64 = {"type": "string", "contentEncoding": "base64", "description": "base64 PNG (or a data: URL)"}
_PRODUCT = {
    "type": "object",
    "description": "the product's attributes as the profile names them (title always)",
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "category": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "colour": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
    },  # fmt: skip
    "required": ["title"],
}
_SEED = {"type": "integer", "minimum": 0}


def generative_paths(name: str) -> dict[str, Any]:
    """The OpenAPI ``paths`` of the PM (``caig-pm``), RM (``caig-rm``) or background generator
    (``caig-render``): their V1 predict and V2 infer endpoints (V2 takes the same fields as tensors)."""
    if name not in _GENERATIVE:
        raise ValueError(f"no OpenAPI paths for {name!r}")
    summary, instance, answer, v2 = _GENERATIVE[name]()
    predictions = {"type": "object", "properties": {"predictions": {"type": "array", "items": answer}}}
    return {
        f"/v1/models/{name}:predict": _operation(summary, _v1_request(instance), predictions),
        f"/v2/models/{name}/infer": _operation(f"{summary} (Open Inference protocol)", v2, V2_RESPONSE),
    }


_TEXT = {"type": "string", "minLength": 1}
_IDS = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}


def _pm() -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    instance = {"type": "object", "properties": {"product_id": _ID, "product": _PRODUCT, "image": _B64,
                "n": {"type": "integer", "minimum": 1}, "temperature": {"type": "number", "minimum": 0,
                "maximum": 5}, "seed": _SEED}}  # fmt: skip
    answer = {"type": "object", "properties": {"product_id": {"type": "string"},
              "descriptions": {"type": "array", "items": {"type": "string"}}}, "required": ["descriptions"]}  # fmt: skip
    parameters = {"type": "object", "properties": {"n": instance["properties"]["n"],
                  "temperature": instance["properties"]["temperature"], "seed": _SEED}}  # fmt: skip
    v2 = _v2_choice(
        [_tensor("product_id", "BYTES", _IDS)],
        [_tensor("product", "BYTES", _JSON_TEXT), _tensor("image", "BYTES", _B64)],
        parameters=parameters,
    )
    return "Background descriptions for a product (by id, or attributes and image)", instance, answer, v2


def _rm() -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    instance = {"type": "object", "properties": {"product_id": _ID, "product": _PRODUCT,
                "images": {"type": "array", "items": _B64, "minItems": 2},
                "creative_ids": {"type": "array", "items": _ID, "minItems": 2}}}  # fmt: skip
    answer = {"type": "object", "properties": {"order": {"type": "array", "items": {"type": "integer"}},
              "scores": {"type": "array", "items": {"type": "number"}},
              "win_prob": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}},
              "required": ["order", "scores", "win_prob"]}  # fmt: skip
    one = {"product_id": _tensor("product_id", "BYTES", _IDS, count=(1, 1)),
           "product": _tensor("product", "BYTES", _JSON_TEXT, count=(1, 1))}  # fmt: skip
    many = {"creative_id": _tensor("creative_id", "BYTES", _IDS, count=(2, MAX_INSTANCES)),
            "images": _tensor("images", "BYTES", _B64, count=(2, MAX_INSTANCES))}  # fmt: skip
    v2 = _v2_choice(*([one[a], many[b]] for a in one for b in many))
    return "Rank a product's ad images (every pair in both orders, Bradley-Terry)", instance, answer, v2


def _render() -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    instance = {"type": "object", "properties": {"product_id": _ID, "product_image": _B64,
                "description": {"type": "string", "minLength": 1}, "seed": _SEED}, "required": ["description"]}  # fmt: skip
    answer = {"type": "object", "properties": {"product_id": {"type": "string"}, "image": _B64,
              "label": {"type": "object"}}, "required": ["image", "label"]}  # fmt: skip
    description, seed = _tensor("description", "BYTES", _TEXT), _tensor("seed", "INT64", _SEED)
    v2 = _v2_choice(
        [_tensor("product_id", "BYTES", _IDS), description, seed],
        [_tensor("product_image", "BYTES", _B64), description, seed],
        optional=1,
    )
    return "The product on a generated background, labelled as AI-generated", instance, answer, v2


_JSON_TEXT = {"type": "string", "minLength": 2, "description": "a JSON object of product attributes"}
_GENERATIVE = {"caig-pm": _pm, "caig-rm": _rm, "caig-render": _render}


def document(paths: dict[str, Any], title: str = "caig creative selector") -> dict[str, Any]:
    """A standalone OpenAPI 3.1 document of ``paths`` (what the tests fuzz)."""
    return {"openapi": "3.1.0", "info": {"title": title, "version": "1"}, "paths": paths}


def merged(base: dict[str, Any], paths: dict[str, Any]) -> dict[str, Any]:
    """kserve's generated document with ``paths`` added (ours are concrete, kserve's stay generic)."""
    return {**base, "paths": {**base.get("paths", {}), **paths}}
