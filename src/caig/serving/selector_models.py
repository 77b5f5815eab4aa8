"""The creative selector and its feedback as KServe models (V1 and V2 / Open Inference protocols).

``creative-selector``: V1 ``{"instances": [{"product_id", "segment"}]}`` -> ``{"predictions": [{"creative_id",
"propensity", "policy"}]}``; V2: BYTES inputs ``product_id`` and ``segment`` -> outputs ``creative_id`` (BYTES),
``propensity`` (FP64), ``policy`` (BYTES).

``creative-feedback``: V1 ``{"instances": [{"event_id", "product_id", "segment", "creative_id", "clicked"}]}``
(optional ``propensity``, echoed from the selection) -> ``{"predictions": ["recorded" | "duplicate", ...]}``;
V2: BYTES ``event_id, product_id, segment, creative_id``, BOOL ``clicked``, optional FP64 ``propensity`` ->
BYTES ``status``.

Every bad payload raises kserve's ``InvalidInput`` (HTTP 400) naming the field; the models are thin doors
around ``caig.bandit.selector.CreativeSelector``.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from caig.bandit.selector import CreativeSelector
from caig.bandit.types import InvalidRequest
from caig.serving.kserve_compat import import_kserve

kserve = import_kserve()
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402

SELECTOR_NAME = "creative-selector"
FEEDBACK_NAME = "creative-feedback"
MAX_INSTANCES = 1024


def v1_instances(payload: Any) -> list[Any]:
    """The ``instances`` list of a V1 body, or ``InvalidInput`` naming what is wrong."""
    if not isinstance(payload, dict):
        raise InvalidInput('body: must be a JSON object {"instances": [...]}')
    instances = payload.get("instances")
    if instances is None:
        raise InvalidInput('instances: missing; send {"instances": [{...}, ...]}')
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("instances: must be a non-empty list of objects")
    if len(instances) > MAX_INSTANCES:
        raise InvalidInput(f"instances: at most {MAX_INSTANCES} per request, got {len(instances)}")
    return instances


def v2_column(
    request: InferRequest, name: str, datatype: str, n: int | None, required: bool = True
) -> list | None:
    """One V2 input as a flat Python list, checked for presence, datatype and length."""
    tensor = request.get_input_by_name(name)
    if tensor is None:
        if required:
            raise InvalidInput(f"{name}: missing input; send it as a {datatype} tensor")
        return None
    if tensor.datatype != datatype:
        raise InvalidInput(f"{name}: must have datatype {datatype}, got {tensor.datatype}")
    try:
        values = tensor.as_numpy().reshape(-1).tolist()
    except (ValueError, TypeError) as err:
        raise InvalidInput(f"{name}: cannot read the tensor data ({err})") from None
    if datatype == "BYTES":
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    if not values or (n is not None and len(values) != n):
        raise InvalidInput(f"{name}: must hold {n or 'at least 1'} element(s), got {len(values)}")
    if len(values) > MAX_INSTANCES:
        raise InvalidInput(f"{name}: at most {MAX_INSTANCES} elements per request, got {len(values)}")
    return values


class CreativeSelectorModel(kserve.Model):
    """``creative-selector``: Thompson sampling per (product, segment) with RM priors."""

    def __init__(self, selector_factory: Any, name: str = SELECTOR_NAME):
        super().__init__(name)
        self._factory = selector_factory
        self.selector: CreativeSelector | None = None

    def load(self) -> bool:
        self.selector = self._factory()
        self.ready = True
        return self.ready

    def stop(self) -> None:
        if self.selector is not None:
            self.selector.close()
        self.ready = False

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return self._predict_v2(payload)
        out = []
        for i, instance in enumerate(v1_instances(payload)):
            if not isinstance(instance, dict):
                raise InvalidInput(f"instances[{i}]: must be an object with product_id and segment")
            sel = self._select(instance.get("product_id"), instance.get("segment"), f"instances[{i}].")
            out.append({"creative_id": sel.creative_id, "propensity": sel.propensity, "policy": sel.policy})
        return {"predictions": out}

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        products = v2_column(request, "product_id", "BYTES", None)
        segments = v2_column(request, "segment", "BYTES", len(products))
        picks = [self._select(p, s, "") for p, s in zip(products, segments, strict=True)]
        outputs = [
            InferOutput("creative_id", [len(picks)], "BYTES", [p.creative_id for p in picks]),
            InferOutput("propensity", [len(picks)], "FP64", [p.propensity for p in picks]),
            InferOutput("policy", [len(picks)], "BYTES", [p.policy for p in picks]),
        ]
        return InferResponse(request.id or str(uuid.uuid4()), self.name, outputs)

    def _select(self, product_id: Any, segment: Any, where: str):
        try:
            return self.selector.select(_python(product_id), _python(segment))
        except InvalidRequest as err:
            raise InvalidInput(f"{where}{err}") from None


class CreativeFeedbackModel(kserve.Model):
    """``creative-feedback``: count an impression (and its click) once per event id, ever."""

    def __init__(self, selector_model: CreativeSelectorModel, name: str = FEEDBACK_NAME):
        super().__init__(name)
        self.selector_model = selector_model

    def load(self) -> bool:
        self.ready = self.selector_model.ready
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return self._predict_v2(payload)
        return {"predictions": self._record(v1_instances(payload))}

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        ids = v2_column(request, "event_id", "BYTES", None)
        n = len(ids)
        columns = {
            name: v2_column(request, name, "BYTES", n) for name in ("product_id", "segment", "creative_id")
        }
        columns["clicked"] = v2_column(request, "clicked", "BOOL", n)
        propensity = v2_column(request, "propensity", "FP64", n, required=False)
        events = [{"event_id": e, **{k: v[i] for k, v in columns.items()}} for i, e in enumerate(ids)]
        if propensity is not None:
            for event, p in zip(events, propensity, strict=True):
                event["propensity"] = p
        status = self._record(events)
        return InferResponse(
            request.id or str(uuid.uuid4()), self.name, [InferOutput("status", [n], "BYTES", status)]
        )

    def _record(self, events: list[Any]) -> list[str]:
        try:
            return self.selector_model.selector.feedback(events)
        except InvalidRequest as err:
            raise InvalidInput(str(err)) from None


def _python(value: Any) -> Any:
    """A V2 tensor element as a Python value (numpy scalars become str, float, ...)."""
    return value.item() if isinstance(value, np.generic) else value


def selector_models(selector_factory: Any) -> list[Any]:
    """The two loaded models that ``caig serve selector`` serves together, sharing one selector."""
    selector = CreativeSelectorModel(selector_factory)
    selector.load()
    feedback = CreativeFeedbackModel(selector)
    feedback.load()
    return [selector, feedback]
