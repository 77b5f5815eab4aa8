"""The Knative feature flags our InferenceServices need, checked against a cluster's ``config-features``.

In KServe's Serverless mode each predictor runs as a Knative Service, and Knative's webhook rejects pod-spec
fields its ``config-features`` ConfigMap (namespace ``knative-serving``) has not enabled: a pod
securityContext, a nodeSelector, tolerations, PVC volumes and more are off on a default install. Which
flags are needed is read from the overlay itself (each InferenceService's predictor and the ServingRuntime
it names: KServe merges both into the Knative pod spec), so the list follows the manifests. The storage
initializer and the ``pvc://`` model volume are added later by KServe's pod webhook and need no flag.

Plain data in, plain data out: ``caig.deploy.cluster.read_config_map`` fetches the ConfigMap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CONFIG_MAP = "config-features"
# Pod-spec fields (predictor or ServingRuntime) and the flag each needs.
POD_FIELDS = {
    "securityContext": "kubernetes.podspec-securitycontext",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "tolerations": "kubernetes.podspec-tolerations",
    "affinity": "kubernetes.podspec-affinity",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "schedulerName": "kubernetes.podspec-schedulername",
    "hostAliases": "kubernetes.podspec-hostaliases",
    "initContainers": "kubernetes.podspec-init-containers",
    "dnsPolicy": "kubernetes.podspec-dnspolicy",
    "dnsConfig": "kubernetes.podspec-dnsconfig",
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",
    "hostNetwork": "kubernetes.podspec-hostnetwork",
    "hostIPC": "kubernetes.podspec-hostipc",
    "hostPID": "kubernetes.podspec-hostpid",
}
VOLUME_FLAGS = {
    "persistentVolumeClaim": "kubernetes.podspec-persistent-volume-claim",
    "emptyDir": "kubernetes.podspec-emptydir",
    "hostPath": "kubernetes.podspec-hostpath",
}
PVC_WRITE = "kubernetes.podspec-persistent-volume-write"
FIELD_REF = "kubernetes.podspec-fieldref"
ADD_CAPABILITIES = "kubernetes.containerspec-addcapabilities"
ENABLED_BY_DEFAULT = {"kubernetes.podspec-emptydir"}  # Knative's defaults when the key is absent
RAW_MODES = {"RawDeployment", "Standard"}  # KServe modes without Knative


def required_flags(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """``{flag: [what needs it, e.g. "caig-pm: predictor.nodeSelector"]}`` over every Serverless
    InferenceService of ``objects`` (a built overlay) and the ServingRuntime each one names."""
    objects = list(objects)
    runtimes = {
        o["metadata"]["name"]: o.get("spec", {}) for o in objects if o.get("kind") == "ServingRuntime"
    }
    needed: dict[str, list[str]] = {}
    for isvc in (o for o in objects if o.get("kind") == "InferenceService"):
        meta = isvc.get("metadata", {})
        if (meta.get("annotations") or {}).get("serving.kserve.io/deploymentMode") in RAW_MODES:
            continue
        predictor = isvc.get("spec", {}).get("predictor", {})
        runtime_name = (predictor.get("model") or {}).get("runtime", "")
        sources = {"predictor": predictor, f"servingruntime/{runtime_name}": runtimes.get(runtime_name, {})}
        for where, spec in sources.items():
            for flag, field in _pod_spec_needs(spec):
                needed.setdefault(flag, []).append(f"{meta.get('name')}: {where}.{field}")
    return needed


def _pod_spec_needs(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = [(flag, field) for field, flag in POD_FIELDS.items() if spec.get(field)]
    mounts = {}
    containers = [*spec.get("containers", []), *([spec["model"]] if spec.get("model") else [])]
    for container in containers:
        for mount in container.get("volumeMounts", []):
            mounts.setdefault(mount["name"], []).append(mount)
        for env in container.get("env", []):
            source = env.get("valueFrom") or {}
            if "fieldRef" in source or "resourceFieldRef" in source:
                found.append((FIELD_REF, f"env.{env['name']}"))
        if ((container.get("securityContext") or {}).get("capabilities") or {}).get("add"):
            found.append((ADD_CAPABILITIES, f"{container.get('name', 'container')}.securityContext"))
    for volume in spec.get("volumes", []):
        for kind, flag in VOLUME_FLAGS.items():
            if kind in volume:
                found.append((flag, f"volumes.{volume['name']}"))
        claim = volume.get("persistentVolumeClaim")
        writable = any(not m.get("readOnly") for m in mounts.get(volume["name"], []))
        if claim is not None and not claim.get("readOnly") and writable:
            found.append((PVC_WRITE, f"volumes.{volume['name']}"))
    return found


def check_flags(
    needed: Mapping[str, list[str]], data: Mapping[str, str] | None, namespace: str, reason: str = ""
) -> dict[str, Any]:
    """Compare ``needed`` with the ConfigMap's ``data`` (None: it could not be read, for ``reason``).

    Returns ``{"config_map", "read", "reason", "flags": [{flag, needed_by, value, enabled}], "missing",
    "fix"}``; ``fix`` is one kubectl command enabling every missing flag (empty when none is missing).
    """
    where = f"{namespace}/{CONFIG_MAP}"
    flags, missing = [], []
    for flag in sorted(needed):
        value = None if data is None else data.get(flag)
        if data is None:
            enabled = None  # unknown
        elif value is None:
            enabled = flag in ENABLED_BY_DEFAULT
        else:
            enabled = value.strip().lower() == "enabled"
        flags.append({"flag": flag, "needed_by": needed[flag], "value": value, "enabled": enabled})
        if enabled is False:
            missing.append(flag)
    result: dict[str, Any] = {
        "config_map": where,
        "read": data is not None,
        "reason": "" if data is not None else f"cannot read {where} ({reason}); check these flags by hand",
        "flags": flags,
        "missing": missing,
        "fix": fix_command(missing, namespace),
    }
    return result


def fix_command(flags: list[str], namespace: str) -> str:
    """The kubectl patch that enables ``flags`` in ``config-features`` (empty for none)."""
    if not flags:
        return ""
    body = ",".join(f'"{flag}":"enabled"' for flag in flags)
    return f"kubectl patch configmap {CONFIG_MAP} -n {namespace} --type merge -p '{{\"data\":{{{body}}}}}'"


def describe_missing(check: Mapping[str, Any]) -> str:
    """One line per missing flag (what needs it), then the fix: the text of a refusal."""
    lines = [
        f"{f['flag']} is {f['value'] or 'not set (disabled by default)'}, needed by {', '.join(f['needed_by'])}"
        for f in check["flags"]
        if f["flag"] in check["missing"]
    ]
    return (
        f"Knative would reject the InferenceServices: {check['config_map']} lacks "
        + "; ".join(lines)
        + f". Fix: {check['fix']}"
    )
