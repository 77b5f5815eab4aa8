"""The creative selector and its feedback as KServe models (V1 and V2 / Open Inference protocols).

``creative-selector``: V1 ``{"instances": [{"product_id", "segment"}]}`` -> ``{"predictions": [{"creative_id",
"propensity", "policy"}]}``; V2: BYTES inputs ``product_id`` and ``segment`` -> outputs ``creative_id`` (BYTES),
``propensity`` (FP64), ``policy`` (BYTES).

``creative-feedback``: V1 ``{"instances": [{"event_id", "product_id", "segment", "creative_id", "clicked"}]}``
(optional ``propensity``, echoed from the selection) -> ``{"predictions": ["recorded" | "duplicate", ...]}``;
V2: BYTES ``event_id, product_id, segment, creative_id``, BOOL ``clicked``, optional FP64 ``propensity`` ->
BYTES ``status``.

Every bad payload raises kserve's ``InvalidInput`` (HTTP 400) naming the field; the models are thin doors
around ``caig.bandit.selector.CreativeSelector``. No store call blocks the event loop, so a hung store cannot
stall liveness: feedback to Redis is awaited on the loop through ``redis.asyncio`` (bounded by the store's
timeout), and every other store read or write (SQLite; a Redis read the snapshot cannot answer) runs in the
server's thread pool. A selection that needs no I/O (Redis counts from the replica's snapshot,
``bandit.refresh_ms``, and candidates in memory) is answered on the event loop, without the thread hop (CPU
only: a Thompson draw, on a new posterior state a propensity estimate of ``propensity_samples`` draws). While
the store is unavailable every request answers 503 at once for ``retry_after_s`` (the store is not asked
again before), and the model's readiness (``/v2/models/creative-selector/ready``, the readiness probe) is
false.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from caig.bandit.selector import CreativeSelector
from caig.bandit.types import InvalidRequest, StoreFull, StoreUnavailable
from caig.data.values import echo, parse_clicked
from caig.serving.kserve_compat import import_kserve

kserve = import_kserve()
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402

SELECTOR_NAME = "creative-selector"
FEEDBACK_NAME = "creative-feedback"
MAX_INSTANCES = 1024
HEALTH_TTL_S = 1.0  # a store that answered this recently counts as up without another ping


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
    """One V2 input as a flat Python list, checked for presence, datatype, length and (BOOL) each value."""
    tensor = request.get_input_by_name(name)
    if tensor is None:
        if required:
            raise InvalidInput(f"{name}: missing input; send it as a {datatype} tensor")
        return None
    if tensor.datatype != datatype:
        raise InvalidInput(f"{name}: must have datatype {datatype}, got {echo(tensor.datatype)}")
    values = _flat_values(name, tensor, datatype)
    if not values or (n is not None and len(values) != n):
        raise InvalidInput(f"{name}: must hold {n or 'at least 1'} element(s), got {len(values)}")
    if len(values) > MAX_INSTANCES:
        raise InvalidInput(f"{name}: at most {MAX_INSTANCES} elements per request, got {len(values)}")
    if datatype == "BOOL":
        try:
            return [parse_clicked(v) for v in values]
        except ValueError as err:
            raise InvalidInput(f"{name}: {err}") from None
    return values


def _flat_values(name: str, tensor: Any, datatype: str) -> list:
    """A tensor's elements as a flat list. BOOL data is taken as the JSON sent, to be checked value by value
    (``caig.data.values.parse_clicked``): numpy would read "yes", 2 or 1.5 as true."""
    if datatype == "BOOL":
        if not isinstance(tensor.data, list):
            raise InvalidInput(f"{name}: send the BOOL data as a JSON list of true/false")
        return np.asarray(tensor.data, dtype=object).reshape(-1).tolist() if tensor.data else []
    try:
        values = tensor.as_numpy().reshape(-1).tolist()
    except (ValueError, TypeError) as err:
        raise InvalidInput(f"{name}: cannot read the tensor data ({err})") from None
    if datatype == "BYTES":
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    return values


class StoreCircuit:
    """After the store failed, answer ``StoreUnavailable`` without asking it for ``open_s`` seconds.

    A full store (``StoreFull``: Redis at ``maxmemory`` refuses writes) does not open it: reads still work, so
    selection and readiness stay up while feedback answers 503 until seen ids expire.
    """

    def __init__(self, open_s: float):
        self.open_s = open_s
        self._open_until = 0.0

    def call(self, work: Any, *args: Any) -> Any:
        self._check()
        try:
            return work(*args)
        except StoreUnavailable as err:
            self._opened_by(err)
            raise

    async def call_async(self, work: Any, *args: Any) -> Any:
        """``call`` for a coroutine function, awaited."""
        self._check()
        try:
            return await work(*args)
        except StoreUnavailable as err:
            self._opened_by(err)
            raise

    def _check(self) -> None:
        if time.monotonic() < self._open_until:
            raise StoreUnavailable()

    def _opened_by(self, err: StoreUnavailable) -> None:
        if not isinstance(err, StoreFull):
            self._open_until = time.monotonic() + self.open_s

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until


class CreativeSelectorModel(kserve.Model):
    """``creative-selector``: Thompson sampling per (product, segment) with RM priors."""

    def __init__(self, selector_factory: Any, name: str = SELECTOR_NAME, retry_after_s: float = 1.0):
        super().__init__(name)
        self._factory = selector_factory
        self.selector: CreativeSelector | None = None
        self.circuit = StoreCircuit(retry_after_s)
        self._answered_at = -HEALTH_TTL_S  # when the store last answered a health check

    def load(self) -> bool:
        self.selector = self._factory()
        self.ready = True
        return self.ready

    def stop(self) -> None:
        if self.selector is not None:
            self.selector.close()
        self.ready = False

    def get_input_types(self) -> list[dict]:
        """V2 metadata: what ``/v2/models/creative-selector`` declares (batch dimension -1)."""
        return [_tensor("product_id", "BYTES"), _tensor("segment", "BYTES")]

    def get_output_types(self) -> list[dict]:
        return [_tensor("creative_id", "BYTES"), _tensor("propensity", "FP64"), _tensor("policy", "BYTES")]

    async def healthy(self) -> bool:
        """Ready while the selector is loaded and its state store answers. kserve asks before every request,
        so a store that answered within ``HEALTH_TTL_S`` is not asked again (the ping runs in a worker
        thread); an open circuit answers False at once."""
        if not self.ready or not self.circuit.closed:
            return False
        if time.monotonic() - self._answered_at < HEALTH_TTL_S:
            return True
        try:
            await asyncio.to_thread(self.circuit.call, self.selector.store.ping)
        except StoreUnavailable:
            return False
        self._answered_at = time.monotonic()
        return True

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """On the event loop when every selection of the request needs no I/O (``select_cached``), else in
        a worker thread through the store's circuit, as before."""
        if self.circuit.closed:
            try:
                return self._predict(payload, self.selector.select_cached)
            except _NeedsIO:
                pass
        return await asyncio.to_thread(self.circuit.call, self._predict, payload, self.selector.select)

    def _predict(self, payload: Any, select: Any) -> Any:
        if isinstance(payload, InferRequest):
            return self._predict_v2(payload, select)
        out = []
        for i, instance in enumerate(v1_instances(payload)):
            if not isinstance(instance, dict):
                raise InvalidInput(f"instances[{i}]: must be an object with product_id and segment")
            sel = self._select(
                select, instance.get("product_id"), instance.get("segment"), f"instances[{i}]."
            )
            out.append({"creative_id": sel.creative_id, "propensity": sel.propensity, "policy": sel.policy})
        return {"predictions": out}

    def _predict_v2(self, request: InferRequest, select: Any) -> InferResponse:
        products = v2_column(request, "product_id", "BYTES", None)
        segments = v2_column(request, "segment", "BYTES", len(products))
        picks = [self._select(select, p, s, "") for p, s in zip(products, segments, strict=True)]
        outputs = [
            InferOutput("creative_id", [len(picks)], "BYTES", [p.creative_id for p in picks]),
            InferOutput("propensity", [len(picks)], "FP64", [p.propensity for p in picks]),
            InferOutput("policy", [len(picks)], "BYTES", [p.policy for p in picks]),
        ]
        return InferResponse(request.id or str(uuid.uuid4()), self.name, outputs)

    def _select(self, select: Any, product_id: Any, segment: Any, where: str):
        try:
            selection = select(_python(product_id), _python(segment))
        except InvalidRequest as err:
            raise InvalidInput(f"{where}{err}") from None
        if selection is None:
            raise _NeedsIO()
        return selection


class _NeedsIO(Exception):
    """A selection on the event loop needs a store or provider read: answer the request from a thread."""


class CreativeFeedbackModel(kserve.Model):
    """``creative-feedback``: count an impression (and its click) once per event id, ever."""

    def __init__(self, selector_model: CreativeSelectorModel, name: str = FEEDBACK_NAME):
        super().__init__(name)
        self.selector_model = selector_model

    def load(self) -> bool:
        self.ready = self.selector_model.ready
        return self.ready

    def get_input_types(self) -> list[dict]:
        """V2 metadata of ``/v2/models/creative-feedback`` (``propensity`` optional)."""
        texts = [_tensor(name, "BYTES") for name in ("event_id", "product_id", "segment", "creative_id")]
        return [*texts, _tensor("clicked", "BOOL"), _tensor("propensity", "FP64")]

    def get_output_types(self) -> list[dict]:
        return [_tensor("status", "BYTES")]

    async def healthy(self) -> bool:
        return await self.selector_model.healthy()

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Awaited on the event loop where the selector can (``feedback_async``: Redis through
        ``redis.asyncio``, candidates in memory), else recorded in a worker thread, through the store's
        circuit either way."""
        events = self._events(payload)
        circuit = self.selector_model.circuit
        statuses = await circuit.call_async(self._record_async, events)
        if statuses is None:
            statuses = await asyncio.to_thread(circuit.call, self._record, events)
        return self._response(payload, statuses)

    def _events(self, payload: Any) -> list[Any]:
        """The request's events as mappings (V1 instances, or V2 columns zipped); shape errors raise
        ``InvalidInput``, the fields themselves are checked by the selector."""
        if not isinstance(payload, InferRequest):
            return v1_instances(payload)
        ids = v2_column(payload, "event_id", "BYTES", None)
        n = len(ids)
        columns = {
            name: v2_column(payload, name, "BYTES", n) for name in ("product_id", "segment", "creative_id")
        }
        columns["clicked"] = v2_column(payload, "clicked", "BOOL", n)
        propensity = v2_column(payload, "propensity", "FP64", n, required=False)
        events = [{"event_id": e, **{k: v[i] for k, v in columns.items()}} for i, e in enumerate(ids)]
        if propensity is not None:
            for event, p in zip(events, propensity, strict=True):
                event["propensity"] = p
        return events

    def _response(self, payload: Any, statuses: list[str]) -> Any:
        if not isinstance(payload, InferRequest):
            return {"predictions": statuses}
        outputs = [InferOutput("status", [len(statuses)], "BYTES", statuses)]
        return InferResponse(payload.id or str(uuid.uuid4()), self.name, outputs)

    async def _record_async(self, events: list[Any]) -> list[str] | None:
        with _invalid_input():
            return await self.selector_model.selector.feedback_async(events)

    def _record(self, events: list[Any]) -> list[str]:
        with _invalid_input():
            return self.selector_model.selector.feedback(events)


@contextlib.contextmanager
def _invalid_input() -> Iterator[None]:
    """The selector's ``InvalidRequest`` (it names the field) as kserve's ``InvalidInput``: an HTTP 400."""
    try:
        yield
    except InvalidRequest as err:
        raise InvalidInput(str(err)) from None


def _tensor(name: str, datatype: str) -> dict:
    return {"name": name, "datatype": datatype, "shape": [-1]}


def _python(value: Any) -> Any:
    """A V2 tensor element as a Python value (numpy scalars become str, float, ...)."""
    return value.item() if isinstance(value, np.generic) else value


def selector_models(selector_factory: Any, retry_after_s: float = 1.0) -> list[Any]:
    """The two loaded models that ``caig serve selector`` serves together, sharing one selector (and its
    store's circuit)."""
    selector = CreativeSelectorModel(selector_factory, retry_after_s=retry_after_s)
    selector.load()
    feedback = CreativeFeedbackModel(selector)
    feedback.load()
    return [selector, feedback]
