"""Run KServe models on a chosen address: ``kserve.ModelServer`` binds 0.0.0.0, ours binds what it is told.

V1, V2 (Open Inference), ``/metrics`` (Prometheus), liveness and readiness are kserve's own endpoints; REST
only (no gRPC port is opened). Three settings differ from ``ModelServer.start``, all for the per-request cost
of small models such as the creative selector (a few microseconds of work under a few hundred of server):

- the event loop is the one uvicorn's ``loop`` setting names (``auto``: uvloop when installed). kserve's
  ``start`` runs uvicorn inside ``asyncio.run``, so its ``--event-loop auto`` never takes effect;
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
from typing import Any

from caig.serving import errors, openapi
from caig.serving.kserve_compat import import_kserve

log = logging.getLogger("caig.serving")

PER_REQUEST_LOGGERS = ("uvicorn.access", "kserve.trace")


def serve(
    models: list[Any],
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    request_logging: bool = False,
    max_body_bytes: int = 67_108_864,
    retry_after_s: int = 1,
    openapi_paths: dict[str, Any] | None = None,
) -> None:
    """Serve ``models`` (loaded ``kserve.Model`` objects) over REST on ``host:port`` until a signal stops it;
    errors are answered as ``caig.serving.errors`` says (bodies over ``max_body_bytes`` refused);
    ``openapi_paths`` (``caig.serving.openapi``) are added to ``/openapi.json``."""
    kserve = import_kserve()
    from kserve.protocol.rest.server import RESTServer

    class Server(RESTServer):
        def _add_middlewares(self, app: Any) -> None:
            # kserve's only default middleware times each request for the kserve.trace log.
            if request_logging:
                super()._add_middlewares(app)
            errors.guard(app, max_body_bytes)

        def _register_endpoints(self, app: Any) -> None:
            super()._register_endpoints(app)
            if openapi_paths:
                generated = app.openapi
                app.openapi = lambda: openapi.merged(generated(), openapi_paths)

        def _add_exception_handlers(self, app: Any) -> None:
            super()._add_exception_handlers(app)
            errors.handle(app, retry_after_s)

    class BoundModelServer(kserve.ModelServer):
        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = Server(
                "kserve.model_server:app",
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=self.workers,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server.config.host = host
            self.servers.append(self._rest_server.start())
            self.register_signal_handler()
            gc.collect()
            gc.freeze()
            try:
                with asyncio.Runner(loop_factory=self._rest_server.config.get_loop_factory()) as runner:
                    loop = runner.get_loop()
                    log.info("event loop %s.%s", type(loop).__module__, type(loop).__name__)
                    self._setup_loop(loop)
                    runner.run(self._serve())
            finally:
                for model in models:
                    model.stop()

        def _setup_loop(self, loop: asyncio.AbstractEventLoop) -> None:
            """``ModelServer.setup_event_loop`` on the loop that runs the server (kserve's sets up another)."""
            loop.set_exception_handler(self.default_exception_handler)
            self.max_asyncio_workers = self.max_asyncio_workers or min(32, (os.cpu_count() or 1) + 4)
            loop.set_default_executor(
                concurrent.futures.ThreadPoolExecutor(max_workers=self.max_asyncio_workers)
            )

    log.info("serving %s on http://%s:%d", ", ".join(m.name for m in models), host, port)
    server = BoundModelServer(
        http_port=port, workers=workers, enable_grpc=False, enable_latency_logging=request_logging
    )
    if not request_logging:
        for name in PER_REQUEST_LOGGERS:
            quiet = logging.getLogger(name)
            quiet.handlers = []
            quiet.propagate = False
    server.start(models)
