"""Run KServe models on a chosen address: ``kserve.ModelServer`` binds 0.0.0.0, ours binds what it is told.

Only the host differs from ``ModelServer.start`` (REST only; no gRPC port is opened). V1, V2 (Open
Inference), ``/metrics`` (Prometheus), liveness and readiness are kserve's own endpoints.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from caig.serving.kserve_compat import import_kserve

log = logging.getLogger("caig.serving")


def serve(models: list[Any], host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serve ``models`` (loaded ``kserve.Model`` objects) over REST on ``host:port`` until a signal stops it."""
    kserve = import_kserve()
    from kserve.protocol.rest.server import RESTServer

    class BoundModelServer(kserve.ModelServer):
        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = RESTServer(
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
            self.setup_event_loop()
            self.register_signal_handler()
            try:
                asyncio.run(self._serve())
            finally:
                for model in models:
                    model.stop()

    log.info("serving %s on http://%s:%d", ", ".join(m.name for m in models), host, port)
    BoundModelServer(http_port=port, workers=workers, enable_grpc=False, enable_latency_logging=False).start(
        models
    )
