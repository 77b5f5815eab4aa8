"""The OpenAPI v3 schemas of the custom resources we ship, kept as test data, and a strict validator for them.

``tests/deploy/crds/*.json.gz`` hold each CRD's ``openAPIV3Schema`` of its storage version as published
upstream (``crds/README.md`` names the repository, path and commit), with two things removed that validate
nothing: ``description`` texts and the ``status`` subtree. The validator adds what the API server checks
beyond plain JSON Schema, as ``kubectl apply --validate=strict`` would: no field the schema does not name
(unless ``x-kubernetes-preserve-unknown-fields``), unique keys of ``x-kubernetes-list-type: map`` lists,
unique items of ``set`` lists, and int32/int64 ranges. CEL rules (``x-kubernetes-validations``) are not
evaluated; the KServe and Argo CD schemas have none, the Kubeflow Trainer ones have a few (immutability on
update, one ML policy per runtime, a DNS-label job name), which their tests check directly.

Regenerate a file from a CRD YAML: ``python -m tests.deploy.crd_schemas CRD.yaml SOURCE > NAME.json.gz``.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).with_name("crds")
# (apiVersion, kind) -> file of its schema
SCHEMA_FILES = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservices.serving.kserve.io.json.gz",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "servingruntimes.serving.kserve.io.json.gz",
    ("argoproj.io/v1alpha1", "Application"): "applications.argoproj.io.json.gz",
    ("argoproj.io/v1alpha1", "AppProject"): "appprojects.argoproj.io.json.gz",
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): "trainjobs.trainer.kubeflow.org.json.gz",
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"): "trainingruntimes.trainer.kubeflow.org.json.gz",
}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def trim(crd: dict[str, Any], source: str) -> dict[str, Any]:
    """The stored form of a CRD: its storage version's schema without descriptions and status."""
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = _strip_descriptions(version["schema"]["openAPIV3Schema"])
    schema.get("properties", {}).pop("status", None)
    return {
        "source": source,
        "apiVersion": f"{crd['spec']['group']}/{version['name']}",
        "kind": crd["spec"]["names"]["kind"],
        "schema": schema,
    }


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")  # field name -> schema
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONES = ("items", "additionalProperties", "not")


def _strip_descriptions(schema: Any) -> Any:
    """A schema without its ``description`` keywords; a field that is *called* description stays."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description" and isinstance(value, str):
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: _strip_descriptions(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [_strip_descriptions(sub) for sub in value]
        elif key in _SCHEMA_ONES:
            out[key] = (
                [_strip_descriptions(s) for s in value]
                if isinstance(value, list)
                else _strip_descriptions(value)
            )
        else:
            out[key] = value
    return out


@cache
def stored(api_version: str, kind: str) -> dict[str, Any]:
    """The stored record (source, apiVersion, kind, schema) of a kind, read once."""
    name = SCHEMA_FILES[(api_version, kind)]
    return json.loads(gzip.decompress((CRD_DIR / name).read_bytes()))


def strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever the API server would reject unknown fields."""
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


def _unique_map_keys(validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(instance, list):
        return
    seen = set()
    for item in instance:
        key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
        if key in seen:
            yield jsonschema.ValidationError(f"duplicate entries for key {dict(zip(keys, key, strict=True))}")
        seen.add(key)


_format_checker = jsonschema.FormatChecker()
for _name, (_low, _high) in _INT_RANGES.items():
    _format_checker.checks(_name)(
        lambda value, low=_low, high=_high: not isinstance(value, int) or low <= value <= high
    )

StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"x-kubernetes-list-map-keys": _unique_map_keys}
)


@cache
def validator(api_version: str, kind: str) -> Any:
    """A strict validator for ``kind`` at ``api_version`` (KeyError if no schema is kept for it)."""
    return StrictValidator(strict(stored(api_version, kind)["schema"]), format_checker=_format_checker)


def errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of a custom resource, as 'path: message' (empty when it validates)."""
    found = validator(obj["apiVersion"], obj["kind"]).iter_errors(obj)
    return sorted(f"{'/'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}" for e in found)


def main(argv: list[str]) -> None:
    """``CRD.yaml SOURCE``: write the stored, gzipped form to stdout."""
    crd = yaml.safe_load(Path(argv[0]).read_text())
    text = json.dumps(trim(crd, argv[1]), separators=(",", ":"), sort_keys=True).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
        out.write(text)
    sys.stdout.buffer.write(buffer.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
