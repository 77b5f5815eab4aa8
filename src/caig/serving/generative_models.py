"""The PM, RM and background generator as KServe models (V1 and V2 / Open Inference protocols).

Thin doors around ``caig.serving.pm_service``, ``rm_service`` and ``render_service``: V1 bodies go to the
service as they are; V2 tensors are turned into the same instances first. Every bad payload raises kserve's
``InvalidInput`` (HTTP 400) naming the field. Names match the InferenceServices: ``caig-pm``, ``caig-rm``,
``caig-render``.

V2 contracts (BYTES tensors hold UTF-8 text; images are base64 PNG text):

- ``caig-pm``: ``product_id`` [B], or ``product`` [B] (JSON attributes) + ``image`` [B]; request
  ``parameters`` ``n``, ``temperature``, ``seed`` -> ``descriptions`` BYTES [B, n].
- ``caig-rm`` (one product per request): ``product_id`` [1] or ``product`` [1] (JSON), and ``images`` [K] or
  ``creative_id`` [K] -> ``order`` INT64 [K], ``scores`` FP64 [K], ``win_prob`` FP64 [K, K].
- ``caig-render``: ``product_id`` [B] or ``product_image`` [B], ``description`` [B], optional INT64 ``seed``
  [B] -> ``image`` BYTES [B] (base64 PNG with the AI-generated label).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from caig.bandit.types import InvalidRequest
from caig.serving import payloads
from caig.serving.kserve_compat import import_kserve

kserve = import_kserve()
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402

PM_NAME, RM_NAME, RENDER_NAME = "caig-pm", "caig-rm", "caig-render"
INTEGER_TYPES = ("INT64", "INT32", "UINT64", "UINT32")


def _tensors(*specs: tuple[str, str]) -> list[dict]:
    """V2 metadata entries (batch dimension -1)."""
    return [{"name": name, "datatype": datatype, "shape": [-1]} for name, datatype in specs]


class ServiceModel(kserve.Model):
    """A KServe model whose ``load`` builds a service and whose V1 ``predict`` calls one service method.

    ``INPUTS`` / ``OUTPUTS``: what its V2 metadata (``/v2/models/NAME``) declares."""

    INPUTS: list[dict] = []
    OUTPUTS: list[dict] = []

    def get_input_types(self) -> list[dict]:
        return self.INPUTS

    def get_output_types(self) -> list[dict]:
        return self.OUTPUTS

    def __init__(self, name: str, factory: Callable[[], Any]):
        super().__init__(name)
        self._factory = factory
        self.service: Any = None
        self._busy = asyncio.Lock()  # one request on the model at a time; the others wait their turn

    def load(self) -> bool:
        self.service = self._factory()
        self.ready = True
        return self.ready

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Run the (seconds-long, GPU-bound) request in a worker thread, so health probes stay answered."""
        async with self._busy:
            return await asyncio.to_thread(self.predict_now, payload)

    def predict_now(self, payload: Any) -> Any:
        """The request on the calling thread: V1 dict or V2 ``InferRequest`` in, its answer out."""
        try:
            if isinstance(payload, InferRequest):
                return self._predict_v2(payload)
            return {"predictions": self.call(payloads.instances(payload, self.service.config))}
        except InvalidRequest as err:
            raise InvalidInput(str(err)) from None

    def call(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        raise NotImplementedError

    def _response(self, request: InferRequest, outputs: list[InferOutput]) -> InferResponse:
        return InferResponse(request.id or str(uuid.uuid4()), self.name, outputs)


class PromptModel(ServiceModel):
    """``caig-pm``: n background descriptions per product."""

    INPUTS = _tensors(("product_id", "BYTES"), ("product", "BYTES"), ("image", "BYTES"))
    OUTPUTS = _tensors(("descriptions", "BYTES"))

    def __init__(self, factory: Callable[[], Any], name: str = PM_NAME):
        super().__init__(name, factory)

    def call(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.service.describe(items)

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        columns = v2_columns(request, ("product_id", "product", "image"), ("product_id", "product"))
        params = request.parameters or {}
        extra = {k: _plain(params[k]) for k in ("n", "temperature", "seed") if k in params}
        items = [{**row, **extra} for row in _rows(columns)]
        answers = self.call(items)
        n = len(answers[0]["descriptions"])
        flat = [d for a in answers for d in a["descriptions"]]
        return self._response(request, [InferOutput("descriptions", [len(answers), n], "BYTES", flat)])


class RewardModelServer(ServiceModel):
    """``caig-rm``: pair comparison and K-way ranking of a product's ad images."""

    INPUTS = _tensors(
        ("product_id", "BYTES"), ("product", "BYTES"), ("images", "BYTES"), ("creative_id", "BYTES")
    )
    OUTPUTS = _tensors(("order", "INT64"), ("scores", "FP64"), ("win_prob", "FP64"))

    def __init__(self, factory: Callable[[], Any], name: str = RM_NAME):
        super().__init__(name, factory)

    def call(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.service.rank(items)

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        allowed = ("product_id", "product", "images", "creative_id")
        product = v2_columns(request, allowed[:2], allowed[:2], length=1, allowed=allowed)
        candidates = v2_columns(request, allowed[2:], allowed[2:], allowed=allowed)
        item = {k: v[0] for k, v in product.items()}
        if "images" in candidates:
            item["images"] = candidates["images"]
        else:
            item["creative_ids"] = candidates["creative_id"]
        answer = self.call([item])[0]
        k = len(answer["order"])
        outputs = [
            InferOutput("order", [k], "INT64", answer["order"]),
            InferOutput("scores", [k], "FP64", answer["scores"]),
            InferOutput("win_prob", [k, k], "FP64", [p for row in answer["win_prob"] for p in row]),
        ]
        return self._response(request, outputs)


class RenderModel(ServiceModel):
    """``caig-render``: the product placed on a generated background, labelled as AI-generated."""

    INPUTS = _tensors(
        ("product_id", "BYTES"), ("product_image", "BYTES"), ("description", "BYTES"), ("seed", "INT64")
    )
    OUTPUTS = _tensors(("image", "BYTES"))

    def __init__(self, factory: Callable[[], Any], name: str = RENDER_NAME):
        super().__init__(name, factory)

    def call(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.service.render(items)

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        columns = v2_columns(
            request, ("product_id", "product_image", "description", "seed"), ("product_id", "product_image")
        )
        if "description" not in columns:
            raise InvalidRequest("description", "missing input; send it as a BYTES tensor")
        answers = self.call(list(_rows(columns)))
        images = [a["image"] for a in answers]
        return self._response(request, [InferOutput("image", [len(images)], "BYTES", images)])


def v2_columns(
    request: InferRequest,
    names: tuple[str, ...],
    one_of: tuple[str, ...],
    length: int | None = None,
    allowed: tuple[str, ...] | None = None,
) -> dict[str, list]:
    """The named V2 inputs present, as equal-length Python lists; exactly one of ``one_of`` must be sent.

    BYTES become text (``product`` is parsed as JSON); ``seed`` must be an integer tensor.
    """
    known = {i.name for i in request.inputs}
    unknown = sorted(known - set(allowed or names))
    if unknown:
        raise InvalidRequest(unknown[0], f"unknown input; this model reads {list(allowed or names)}")
    sent = [n for n in one_of if n in known]
    if len(sent) != 1:
        raise InvalidRequest(one_of[0], f"send exactly one of the inputs {list(one_of)}")
    columns = {}
    for name in names:
        tensor = request.get_input_by_name(name)
        if tensor is not None:
            columns[name] = _tensor_values(tensor, name)
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise InvalidRequest(sent[0], f"inputs must hold the same non-zero number of elements, got {sizes}")
    if length is not None and sizes != {length}:
        raise InvalidRequest(sent[0], f"must hold {length} element(s), got {sizes.pop()}")
    return columns


def _tensor_values(tensor: Any, name: str) -> list:
    expected = INTEGER_TYPES if name == "seed" else ("BYTES",)
    if tensor.datatype not in expected:
        raise InvalidRequest(name, f"must have datatype {' or '.join(expected)}, got {tensor.datatype}")
    try:
        values = tensor.as_numpy().reshape(-1).tolist()
    except (ValueError, TypeError) as err:
        raise InvalidRequest(name, f"cannot read the tensor data ({err})") from None
    if tensor.datatype == "BYTES":
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    if name == "product":
        values = [_json(v, name) for v in values]
    return values


def _json(value: Any, name: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise InvalidRequest(name, "must hold JSON objects of product attributes") from None


def _rows(columns: dict[str, list]) -> list[dict[str, Any]]:
    n = len(next(iter(columns.values())))
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _plain(value: Any) -> Any:
    """A V2 request parameter as a plain Python value (kserve may wrap them)."""
    return getattr(value, "value", value)
