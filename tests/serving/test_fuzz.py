"""Schemathesis against a live selector: 1,000 generated payloads per endpoint that break its schema (wrong
types, missing fields, NaN, huge or odd strings) and some that fit it; no answer may be a 5xx."""

from __future__ import annotations

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from caig.serving.openapi import document, generative_paths, selector_paths

SCHEMA = schemathesis.openapi.from_dict(document(selector_paths()))
EXAMPLES = {GenerationMode.NEGATIVE: 1000, GenerationMode.POSITIVE: 100}


def test_the_served_document_holds_the_selectors_schemas(sqlite_server):
    served = httpx.get(sqlite_server.url + "/openapi.json", timeout=10).json()
    for path, operation in selector_paths().items():
        assert served["paths"][path] == operation
    assert "/v2/health/live" in served["paths"]  # kserve's own routes stay


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
@pytest.mark.parametrize("path", sorted(selector_paths()))
def test_no_generated_payload_gets_a_server_error(sqlite_server, path, mode):
    operation = SCHEMA[path]["POST"]
    statuses: dict[int, int] = {}
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def fuzz(case):
        response = case.call(base_url=sqlite_server.url, session=session, timeout=10)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text[:300], case.body)

    fuzz()
    if mode == GenerationMode.NEGATIVE:
        assert sum(statuses.values()) >= EXAMPLES[mode] and set(statuses) <= {200, 400, 413}, statuses


MODEL_PATHS = [(c, p) for c in ("pm", "rm", "render") for p in sorted(generative_paths(f"caig-{c}"))]


def test_the_model_servers_serve_their_schemas(model_servers):
    for command, server in model_servers.items():
        served = httpx.get(server.url + "/openapi.json", timeout=10).json()
        paths = generative_paths(f"caig-{command}")
        assert all(served["paths"][p] == op for p, op in paths.items()), command


@pytest.mark.parametrize(("command", "path"), MODEL_PATHS, ids=[p for _, p in MODEL_PATHS])
def test_no_bad_payload_gets_a_server_error_from_the_model_servers(model_servers, command, path):
    """The PM, RM and render servers under 1,000 payloads that break their schema per endpoint, V1 and V2 (a
    product id these untrained models know, or attributes and an image, are what a valid request needs)."""
    server = model_servers[command]
    operation = schemathesis.openapi.from_dict(document(generative_paths(f"caig-{command}")))[path]["POST"]
    statuses: dict[int, int] = {}
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call(base_url=server.url, session=session, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text[:300], case.body)

    fuzz()
    assert sum(statuses.values()) >= 1000 and set(statuses) <= {200, 400, 413}, statuses
