"""What the loopback stand-ins for cluster APIs (Kubernetes, Kubeflow Pipelines) share: a quiet HTTP handler
that answers JSON."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """Answers with ``_send(code, body)``; logs nothing, so pytest's output stays clean."""

    def log_message(self, *args: Any) -> None:
        return

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
