"""A small in-process stand-in for the Kubeflow Pipelines v2beta1 REST API on 127.0.0.1, enough for
``caig deploy pipelines``: healthz, pipelines and versions (uploads), experiments, recurring runs. It keeps
what it is sent, so a test can read the recurring run exactly as KFP would store it."""

from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.deploy.loopback import JsonHandler

API = "/apis/v2beta1"


class FakeKfp(ThreadingHTTPServer):
    """Pipelines, versions, experiments and recurring runs by id; every request as (method, path, query)."""

    def __init__(self, multi_user: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.multi_user = multi_user
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._ids = 0

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def __enter__(self) -> FakeKfp:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()


def _display_filter(query: dict[str, list[str]]) -> str | None:
    if "filter" not in query:
        return None
    return json.loads(query["filter"][0])["predicates"][0]["stringValue"]


class _Handler(JsonHandler):
    server: FakeKfp

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        self.server.requests.append((self.command, url.path, query))
        return url.path, query

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:  # noqa: N802
        path, query = self._route()
        server = self.server
        if path == f"{API}/healthz":
            return self._send(200, {"multi_user": server.multi_user})
        if path == f"{API}/pipelines":
            name, namespace = _display_filter(query), query.get("namespace", [""])[0]
            found = [  # a namespace lists its own pipelines; no namespace lists the shared ones, as KFP does
                p
                for p in server.pipelines.values()
                if (name is None or p["display_name"] == name) and p.get("namespace", "") == namespace
            ]
            return self._send(200, {"pipelines": found, "total_size": len(found)})
        if match := re.fullmatch(rf"{API}/pipelines/([^/]+)/versions", path):
            return self._send(200, {"pipeline_versions": server.versions.get(match.group(1), [])})
        if path == f"{API}/experiments":
            name = _display_filter(query)
            found = [e for e in server.experiments.values() if name is None or e["display_name"] == name]
            return self._send(200, {"experiments": found})
        if path == f"{API}/recurringruns":
            wanted = query.get("experiment_id", [None])[0]
            found = [r for r in server.recurring.values() if wanted in (None, r["experiment_id"])]
            return self._send(200, {"recurringRuns": found, "recurring_runs": found})
        return self._send(404, {"error": f"no route {path}"})

    def do_POST(self) -> None:  # noqa: N802
        path, query = self._route()
        server = self.server
        body = self._body()
        if path == f"{API}/pipelines/upload":
            pipeline = {"pipeline_id": server.new_id("pipeline"), "display_name": query["name"][0]}
            if "namespace" in query:
                pipeline["namespace"] = query["namespace"][0]
            server.pipelines[pipeline["pipeline_id"]] = pipeline
            name = query["name"][0]
            server.versions[pipeline["pipeline_id"]] = [
                {"pipeline_version_id": server.new_id("version"), "display_name": name}
            ]
            return self._send(200, pipeline)
        if path == f"{API}/pipelines/upload_version":
            version = {"pipeline_version_id": server.new_id("version"), "display_name": query["name"][0]}
            server.versions[query["pipelineid"][0]].append(version)
            return self._send(200, version)
        if path == f"{API}/experiments":
            experiment = {**json.loads(body), "experiment_id": server.new_id("experiment")}
            server.experiments[experiment["experiment_id"]] = experiment
            return self._send(200, experiment)
        if path == f"{API}/recurringruns":
            run = {**json.loads(body), "recurring_run_id": server.new_id("recurring")}
            server.recurring[run["recurring_run_id"]] = run
            return self._send(200, run)
        return self._send(404, {"error": f"no route {path}"})

    def do_DELETE(self) -> None:  # noqa: N802
        path, _ = self._route()
        if match := re.fullmatch(rf"{API}/recurringruns/([^/]+)", path):
            self.server.recurring.pop(match.group(1), None)
            return self._send(200, {})
        return self._send(404, {"error": f"no route {path}"})
