"""Every pod the overlays would run meets Pod Security "restricted" and sizes every container.

Pod templates: Deployments, StatefulSets, Jobs (their init containers too), each InferenceService's predictor
as KServe builds it (the predictor's pod fields, its ServingRuntime's containers with the model's fields
merged into kserve-container, both sets of volumes), and each ServingRuntime on its own (its containers must
carry their own seccomp profile and non-root setting, for a predictor that sets none). The checks follow the
Kubernetes Pod Security Standards, restricted profile (baseline included); the namespace enforces it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from tests.deploy.conftest import OVERLAYS, find, strategic_merge

WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet", "ReplicaSet")
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
# fields of an InferenceService's model that are KServe's, not the container's
MODEL_ONLY = {"modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri", "storage"}


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of everything that becomes a pod; a ServingRuntime alone has no pod-level fields."""
    runtimes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServingRuntime"}
    pods = []
    for obj in objects:
        where = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in WORKLOADS:
            template = obj["spec"].get("jobTemplate", obj)["spec"]["template"]
            pods.append((where, template["spec"]))
        elif obj["kind"] == "InferenceService":
            pods.append((where, predictor_pod(obj["spec"]["predictor"], runtimes)))
        elif obj["kind"] == "ServingRuntime":
            spec = obj["spec"]
            pods.append((where, {"containers": spec["containers"], "volumes": spec.get("volumes", [])}))
    return pods


def predictor_pod(predictor: dict[str, Any], runtimes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The pod KServe makes of a predictor: runtime containers, the model merged into kserve-container."""
    model = {k: v for k, v in predictor["model"].items() if k not in MODEL_ONLY}
    runtime = runtimes[predictor["model"]["runtime"]]["spec"]
    containers = [
        strategic_merge(c, model) if c["name"] == "kserve-container" else copy.deepcopy(c)
        for c in runtime["containers"]
    ]
    pod = {k: copy.deepcopy(v) for k, v in predictor.items() if k != "model"}
    pod["containers"] = containers
    pod["volumes"] = copy.deepcopy(runtime.get("volumes", [])) + pod.get("volumes", [])
    return pod


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"] + pod.get("ephemeralContainers", [])


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What keeps ``pod`` from Pod Security "restricted" (empty when it meets it)."""
    found = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"{field} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)} not allowed")
    ctx = pod.get("securityContext", {})
    if ctx.get("sysctls"):
        found.append("pod securityContext.sysctls is set")
    if ctx.get("runAsUser") == 0:
        found.append("pod securityContext.runAsUser is 0")
    if ctx.get("seccompProfile", {}).get("type") not in (None, *ALLOWED_SECCOMP):
        found.append("pod seccompProfile is not RuntimeDefault or Localhost")
    if ctx.get("appArmorProfile", {}).get("type") == "Unconfined":
        found.append("pod appArmorProfile is Unconfined")
    pod_seccomp = ctx.get("seccompProfile", {}).get("type") in ALLOWED_SECCOMP
    pod_non_root = ctx.get("runAsNonRoot") is True
    for container in all_containers(pod):
        found += [
            f"container {container['name']}: {v}"
            for v in _container_violations(container, pod_seccomp, pod_non_root)
        ]
    return found


def _container_violations(container: dict[str, Any], pod_seccomp: bool, pod_non_root: bool) -> list[str]:
    sc = container.get("securityContext", {})
    found = []
    if sc.get("privileged"):
        found.append("privileged")
    if sc.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation must be false")
    capabilities = sc.get("capabilities", {})
    if "ALL" not in capabilities.get("drop", []):
        found.append("capabilities must drop ALL")
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        found.append(f"capabilities.add {sorted(set(capabilities['add']) - {'NET_BIND_SERVICE'})}")
    if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot") is True):
        found.append("runAsNonRoot must be true (pod or container)")
    if sc.get("runAsUser") == 0:
        found.append("runAsUser is 0")
    seccomp = sc.get("seccompProfile", {}).get("type")
    if seccomp not in (None, *ALLOWED_SECCOMP) or not (pod_seccomp or seccomp in ALLOWED_SECCOMP):
        found.append("seccompProfile must be RuntimeDefault or Localhost (pod or container)")
    if sc.get("appArmorProfile", {}).get("type") == "Unconfined":
        found.append("appArmorProfile is Unconfined")
    if sc.get("procMount", "Default") != "Default":
        found.append("procMount is not Default")
    if any(port.get("hostPort") for port in container.get("ports", [])):
        found.append("hostPort is set")
    return found


_UNITS = {
    "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ('500m', '2', '4Gi', '64G') as a number."""
    match = _QUANTITY.match(str(value))
    assert match and match.group(2) in ("", *_UNITS), f"not a quantity: {value!r}"
    return float(match.group(1)) * _UNITS.get(match.group(2), 1)


def resource_violations(pod: dict[str, Any]) -> list[str]:
    """Containers without CPU and memory requests and limits, or with a request above its limit."""
    found = []
    for container in all_containers(pod):
        resources = container.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            if request is None or limit is None:
                missing = [n for n, v in (("requests", request), ("limits", limit)) if v is None]
                found += [f"container {container['name']}: no {n}.{resource}" for n in missing]
            elif quantity(request) > quantity(limit):
                found.append(
                    f"container {container['name']}: {resource} request {request} above limit {limit}"
                )
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_restricted(built, overlay):
    labels = find(built[overlay], "Namespace", "caig")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_restricted(built, overlay):
    pods = pod_templates(built[overlay])
    kinds = {where.split()[0] for where, _ in pods}
    assert kinds == {"Deployment", "StatefulSet", "Job", "InferenceService", "ServingRuntime"}
    assert len(pods) >= 10  # selector, Feast, Redis, pipelines sync, 3 model servers, 3 runtimes
    for where, pod in pods:
        assert restricted_violations(pod) == [], f"{overlay}: {where}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(built, overlay):
    pods = pod_templates(built[overlay])
    assert sum(len(all_containers(pod)) for _, pod in pods) >= 11  # Feast's init container included
    for where, pod in pods:
        assert resource_violations(pod) == [], f"{overlay}: {where}"


def test_predictor_pod_is_what_kserve_runs(built):
    """The model's resources reach kserve-container; the runtime's security and volumes stay."""
    objects = built["production"]
    runtimes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServingRuntime"}
    predictor = find(objects, "InferenceService", "caig-pm")["spec"]["predictor"]
    pod = predictor_pod(predictor, runtimes)
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["limits"]["memory"] == predictor["model"]["resources"]["limits"]["memory"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert {v["name"] for v in pod["volumes"]} == {"profiles", "base-models", "tmp"}


def _break(pod: dict[str, Any], change: str) -> dict[str, Any]:
    """A copy of a compliant pod with one thing ``restricted`` or sizing forbids."""
    pod = copy.deepcopy(pod)
    container = pod["containers"][0]
    sc = container["securityContext"]
    if change == "hostNetwork":
        pod["hostNetwork"] = True
    elif change == "hostPath":
        pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    elif change == "privileged":
        sc["privileged"] = True
    elif change == "escalation":
        del sc["allowPrivilegeEscalation"]
    elif change == "drop":
        sc["capabilities"] = {"drop": ["NET_RAW"]}
    elif change == "add":
        sc["capabilities"]["add"] = ["SYS_ADMIN"]
    elif change == "seccomp":
        del pod["securityContext"]["seccompProfile"]
    elif change == "unconfined":
        sc["seccompProfile"] = {"type": "Unconfined"}
    elif change == "nonroot":
        del pod["securityContext"]["runAsNonRoot"]
        del sc["runAsNonRoot"]
    elif change == "root":
        sc["runAsUser"] = 0
    elif change == "hostPort":
        container["ports"][0]["hostPort"] = 8080
    elif change == "no-limits":
        del container["resources"]["limits"]["memory"]
    elif change == "over-limit":
        container["resources"]["requests"]["cpu"] = "4"
    elif change == "bare-init":
        pod["initContainers"] = [{"name": "init", "image": "x", "securityContext": copy.deepcopy(sc)}]
    return pod


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("hostNetwork", "hostNetwork is set"),
        ("hostPath", "['hostPath'] not allowed"),
        ("privileged", "selector: privileged"),
        ("escalation", "allowPrivilegeEscalation must be false"),
        ("drop", "capabilities must drop ALL"),
        ("add", "capabilities.add ['SYS_ADMIN']"),
        ("seccomp", "seccompProfile must be RuntimeDefault or Localhost"),
        ("unconfined", "seccompProfile must be RuntimeDefault or Localhost"),
        ("nonroot", "runAsNonRoot must be true"),
        ("root", "runAsUser is 0"),
        ("hostPort", "hostPort is set"),
        ("no-limits", "selector: no limits.memory"),
        ("over-limit", "cpu request 4 above limit 2"),
        ("bare-init", "init: no requests.cpu"),
    ],
)
def test_checks_catch_each_violation(built, change, message):
    pod = find(built["production"], "Deployment", "creative-selector")["spec"]["template"]["spec"]
    assert restricted_violations(pod) == [] and resource_violations(pod) == []
    broken = _break(pod, change)
    found = restricted_violations(broken) + resource_violations(broken)
    assert any(message in f for f in found), found


def test_runtime_alone_must_carry_its_own_seccomp(built):
    """A ServingRuntime is checked without a pod context: its containers must set seccomp themselves."""
    runtime = copy.deepcopy(find(built["production"], "ServingRuntime", "caig-rm"))
    del runtime["spec"]["containers"][0]["securityContext"]["seccompProfile"]
    ((_, pod),) = pod_templates([runtime])
    assert any("seccompProfile" in v for v in restricted_violations(pod))


def test_quantities_parse():
    assert quantity("500m") == 0.5 and quantity("4Gi") == 4 * 2**30 and quantity("64G") == 64e9
    with pytest.raises(AssertionError, match="not a quantity"):
        quantity("4 GB")
