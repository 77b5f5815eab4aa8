"""Run KServe models on a chosen address, built from kserve's public API only.

``kserve.ModelServer`` cannot be told which address to bind (its REST server hard-codes 0.0.0.0), runs
uvicorn under ``asyncio.run`` (so ``--event-loop auto`` never picks uvloop) and offers no public hook for
middlewares, routes or exception handlers. So this module composes the same server from kserve's public
pieces instead of subclassing its private methods:

- ``kserve.ModelRepository`` holds the models, ``kserve.protocol.dataplane.DataPlane`` answers for them;
- ``register_v1_endpoints`` / ``register_v2_endpoints`` add the V1 and V2 (Open Inference) routes (liveness,
  readiness, metadata, predict), ``kserve.protocol.rest.server.metrics_handler`` serves ``/metrics``
  (Prometheus), ``DataPlane.live`` answers ``/``; no model repository routes (load/unload) are registered,
  and ``caig.serving.errors`` refuses them anyway;
- kserve's own exception handlers (``kserve.errors``), then ours (``caig.serving.errors``: bad input is a
  400, never a 5xx);
- uvicorn (kserve's own dependency) serves the app on ``host:port``; its ``Server.serve`` stops gracefully
  on SIGTERM and SIGINT (requests in flight finish, then the models are stopped).

``contract_app`` is the FastAPI app without the socket; ``tests/serving/test_kserve_contract.py`` pins what
we rely on from kserve through it, so an upgrade that changes it fails a test. REST only (no gRPC port).
Three settings differ from ``ModelServer.start``, all for the per-request cost of small models such as the
creative selector (a few microseconds of work under a few hundred of server):

- the event loop is the one uvicorn's ``loop`` setting names (``auto``: uvloop when installed);
- per-request logging is off unless ``request_logging``: kserve writes three lines per request (uvicorn's
  access line, and its timing middleware's wall and CPU times), more than the selector's own work. Request
  counts and latency histograms stay on ``/metrics``;
- after the models are loaded, everything allocated so far is moved out of the garbage collector's reach
  (``gc.freeze``): model tables and imported modules are not scanned again by every full collection, which
  otherwise stalls requests in flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import signal
from typing import Any

from caig.serving import errors, openapi
from caig.serving.kserve_compat import import_kserve

log = logging.getLogger("caig.serving")

PER_REQUEST_LOGGERS = ("uvicorn.access", "kserve.trace")


def register(models: list[Any], request_logging: bool = False) -> Any:
    """A ``kserve.ModelRepository`` holding the ready ``models`` (as ``ModelServer.start`` registers them:
    each started, the ready ones registered); ``NoModelReady`` when none is ready."""
    kserve = import_kserve()
    from kserve.errors import NoModelReady

    repository = kserve.ModelRepository()
    for model in models:
        if model.ready:
            model.enable_latency_logging = request_logging
            repository.update(model)
        model.start()
    if models and not repository.get_models():
        raise NoModelReady(models)
    return repository


def contract_app(
    repository: Any,
    request_logging: bool = False,
    max_body_bytes: int = 67_108_864,
    retry_after_s: int = 1,
    openapi_paths: dict[str, Any] | None = None,
) -> Any:
    """The FastAPI app serving ``repository``'s models: kserve's V1/V2 routes, ``/metrics`` and ``/``, our
    guard and exception handlers, and ``openapi_paths`` merged into ``/openapi.json``."""
    import_kserve()
    from fastapi import APIRouter, FastAPI
    from fastapi.responses import ORJSONResponse
    from kserve import errors as kerrors
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.rest.server import PrintTimings, metrics_handler
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    app = FastAPI(
        title="KServe ModelServer", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse
    )
    dataplane = DataPlane(model_registry=repository)
    root = APIRouter()
    root.add_api_route("/", dataplane.live)
    root.add_api_route("/metrics", metrics_handler, methods=["GET"])
    app.include_router(root)
    register_v1_endpoints(app, dataplane, None)
    register_v2_endpoints(app, dataplane, None)
    if openapi_paths:
        generated = app.openapi
        app.openapi = lambda: openapi.merged(generated(), openapi_paths)

    for exc, handler in (
        (kerrors.InvalidInput, kerrors.invalid_input_handler),
        (kerrors.InferenceError, kerrors.inference_error_handler),
        (kerrors.ModelNotFound, kerrors.model_not_found_handler),
        (kerrors.ModelNotReady, kerrors.model_not_ready_handler),
        (NotImplementedError, kerrors.not_implemented_error_handler),
        (kerrors.UnsupportedProtocol, kerrors.unsupported_protocol_error_handler),
        (kerrors.ServerNotLive, kerrors.server_not_live_handler),
        (kerrors.ServerNotReady, kerrors.server_not_ready_handler),
        (Exception, kerrors.generic_exception_handler),
    ):
        app.add_exception_handler(exc, handler)
    errors.handle(app, retry_after_s)

    if request_logging:
        # kserve's timing middleware: each request's wall and CPU time on the kserve.trace log
        from timing_asgi import TimingMiddleware
        from timing_asgi.integrations import StarletteScopeToName

        app.add_middleware(
            TimingMiddleware,
            client=PrintTimings(),
            metric_namer=StarletteScopeToName(prefix="kserve.io", starlette_app=app),
        )
    errors.guard(app, max_body_bytes)
    return app


def serve(
    models: list[Any],
    host: str = "127.0.0.1",
    port: int = 8080,
    request_logging: bool = False,
    max_body_bytes: int = 67_108_864,
    retry_after_s: int = 1,
    openapi_paths: dict[str, Any] | None = None,
    grace_period_s: int = 30,
    timeout_keep_alive_s: int = 65,
) -> None:
    """Serve ``models`` (loaded ``kserve.Model`` objects) over REST on ``host:port`` until SIGTERM or SIGINT
    stops it (requests in flight get ``grace_period_s`` to finish); errors are answered as
    ``caig.serving.errors`` says (bodies over ``max_body_bytes`` refused); ``openapi_paths``
    (``caig.serving.openapi``) are added to ``/openapi.json``."""
    import_kserve()
    import uvicorn
    from kserve.logging import configure_logging

    configure_logging()  # what ModelServer() does: kserve's and uvicorn's log format
    if not request_logging:
        for name in PER_REQUEST_LOGGERS:
            quiet = logging.getLogger(name)
            quiet.handlers = []
            quiet.propagate = False
    repository = register(models, request_logging)
    app = contract_app(repository, request_logging, max_body_bytes, retry_after_s, openapi_paths)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # configured above, as kserve does
        access_log=request_logging,
        timeout_graceful_shutdown=grace_period_s,
        timeout_keep_alive=timeout_keep_alive_s,
        loop="auto",
    )
    server = uvicorn.Server(config)
    log.info("serving %s on http://%s:%d", ", ".join(m.name for m in models), host, port)
    # uvicorn catches SIGTERM and SIGINT while it serves, shuts down gracefully, then raises the signal
    # again to the handler it found: ours, so the models are stopped below and the process exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    gc.collect()
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            loop = runner.get_loop()
            log.info("event loop %s.%s", type(loop).__module__, type(loop).__name__)
            # ModelServer.setup_event_loop's thread pool, on the loop that runs the server
            workers = min(32, (os.cpu_count() or 1) + 4)
            loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
            runner.run(server.serve())
    finally:
        for model in models:
            model.stop()


def _stopped(signum: int, frame: Any) -> None:
    log.info("stopped by %s", signal.Signals(signum).name)
