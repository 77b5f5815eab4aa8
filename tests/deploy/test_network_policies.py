"""The NetworkPolicies of each overlay: default-deny both ways for every pod, and exactly the allow-list.

What each pod may reach (and be reached from) is computed the way Kubernetes does: the union of the rules
of every policy whose podSelector selects the pod's labels, per direction. The pods are the overlay's pod
templates, the model servers as KServe labels them, and the pipeline steps that run in the namespace (pods
of an Argo workflow, one of them a Redis client: the features step).
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest
from tests.deploy.conftest import OVERLAYS, find

NAMESPACE = "caig"
METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"

DNS = {"kube-system/k8s-app=kube-dns:53/UDP", "kube-system/k8s-app=kube-dns:53/TCP"}
REDIS = {"caig/app.kubernetes.io/name=redis:6379/TCP"}
KUBE_API = {"0.0.0.0/0 except 169.254.0.0/16:443/TCP", "0.0.0.0/0 except 169.254.0.0/16:6443/TCP"}
OBJECT_STORE = {"kubeflow/app in (minio,seaweedfs):9000/TCP", "kubeflow/app in (minio,seaweedfs):8333/TCP"}
KFP_API = {"kubeflow/app=ml-pipeline:8888/TCP"}
KFP_STEP = KFP_API | {"kubeflow/app=ml-pipeline:8887/TCP", "kubeflow/component=metadata-grpc-server:8080/TCP"}
MODEL_SERVERS = ("caig-pm", "caig-rm", "caig-render")

EXPECTED_EGRESS = {
    "Deployment creative-selector": DNS | REDIS,
    "Deployment feast-feature-server": DNS | REDIS | KUBE_API,
    "StatefulSet redis": DNS,
    "Job caig-pipelines-sync": DNS | KFP_API,
    **{f"InferenceService {name}": DNS | OBJECT_STORE for name in MODEL_SERVERS},
    "pipeline step": DNS | KFP_STEP | OBJECT_STORE | KUBE_API,
    "features step": DNS | KFP_STEP | OBJECT_STORE | KUBE_API | REDIS,
}
KNATIVE = {"knative-serving/*:*", "istio-system/*:*"}
EXPECTED_INGRESS = {
    "Deployment creative-selector": {"ad-server/*:8080/TCP"},
    "Deployment feast-feature-server": {"ad-server/*:6566/TCP"},
    "StatefulSet redis": {"caig/caig.io/redis-client=true:6379/TCP"},
    "Job caig-pipelines-sync": set(),
    **{f"InferenceService {name}": KNATIVE for name in MODEL_SERVERS},
    "pipeline step": set(),
    "features step": set(),
}


def pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Labels of every pod the namespace would hold, by where it comes from."""
    found = {}
    for obj in objects:
        where = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            found[where] = obj["spec"]["template"]["metadata"]["labels"]
        elif obj["kind"] == "InferenceService":
            # KServe copies the InferenceService's labels to its pods and adds its own
            found[where] = {
                **obj["metadata"].get("labels", {}),
                "serving.kserve.io/inferenceservice": obj["metadata"]["name"],
                "component": "predictor",
            }
    step = {WORKFLOW_LABEL: "caig-training-x7k2p", "pipelines.kubeflow.org/v2_component": "true"}
    found["pipeline step"] = step
    found["features step"] = {**step, "caig.io/redis-client": "true"}
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _selector(selector: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted(selector.get("matchLabels", {}).items())]
    for expr in selector.get("matchExpressions", []):
        values = ",".join(expr.get("values", []))
        parts.append(
            f"{expr['key']} {expr['operator'].lower()} ({values})"
            if values
            else f"{expr['key']} {expr['operator']}"
        )
    return ",".join(parts) or "*"


def _peer(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        excepted = f" except {','.join(block['except'])}" if block.get("except") else ""
        return f"{block['cidr']}{excepted}"
    if "namespaceSelector" in peer:
        names = peer["namespaceSelector"].get("matchLabels", {})
        namespace = names.get("kubernetes.io/metadata.name") or f"ns[{_selector(peer['namespaceSelector'])}]"
    else:
        namespace = NAMESPACE
    return f"{namespace}/{_selector(peer.get('podSelector', {}))}"


def reach(policies: list[dict[str, Any]], labels: dict[str, str], direction: str) -> set[str] | None:
    """'peer:port/protocol' allowed to or from a pod; None if no policy isolates it in that direction."""
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p
        for p in policies
        if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return None
    allowed = set()
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = [_peer(p) for p in rule.get(peers_key, [])] or ["*"]
            ports = [f"{p['port']}/{p.get('protocol', 'TCP')}" for p in rule.get("ports", [])] or ["*"]
            allowed |= {f"{peer}:{port}" for peer in peers for port in ports}
    return allowed


def _policies(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_both_ways(built, overlay):
    deny = find(_policies(built[overlay]), "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_isolated_both_ways(built, overlay):
    policies = _policies(built[overlay])
    for where, labels in pods(built[overlay]).items():
        assert reach(policies, labels, "Ingress") is not None, f"{where}: no ingress policy selects it"
        assert reach(policies, labels, "Egress") is not None, f"{where}: no egress policy selects it"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_is_the_allow_list(built, overlay):
    policies = _policies(built[overlay])
    found = pods(built[overlay])
    assert set(found) == set(EXPECTED_EGRESS)
    for where, labels in found.items():
        assert reach(policies, labels, "Egress") == EXPECTED_EGRESS[where], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_is_the_allow_list(built, overlay):
    policies = _policies(built[overlay])
    for where, labels in pods(built[overlay]).items():
        assert reach(policies, labels, "Ingress") == EXPECTED_INGRESS[where], where


def metadata_routes(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Egress ipBlocks that contain the cloud metadata address without excepting it."""
    blocks = [
        peer["ipBlock"]
        for policy in policies
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    return [
        block
        for block in blocks
        if METADATA_ADDRESS in ipaddress.ip_network(block["cidr"])
        and not any(METADATA_ADDRESS in ipaddress.ip_network(e) for e in block.get("except", []))
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_egress_to_cloud_metadata(built, overlay):
    policies = _policies(built[overlay])
    assert any("ipBlock" in str(p["spec"]) for p in policies)  # the Kubernetes API rules exist
    assert metadata_routes(policies) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rule_names_peers_and_ports(built, overlay):
    for policy in _policies(built[overlay]):
        for key, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(key, []):
                assert rule.get(peers_key), f"{policy['metadata']['name']}: a {key} rule open to everyone"
                if policy["metadata"]["name"] != "model-servers-from-knative":  # Knative's ports vary
                    assert rule.get("ports"), f"{policy['metadata']['name']}: a {key} rule on every port"


def test_redis_clients_carry_the_label(built):
    objects = built["production"]
    for name in ("creative-selector", "feast-feature-server"):
        labels = find(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert labels["caig.io/redis-client"] == "true", name


def test_checks_catch_open_policies(built):
    """An allow-all egress rule, a missing default-deny or an open metadata route is each detected."""
    objects = built["production"]
    policies = copy.deepcopy(_policies(objects))
    selector_labels = pods(objects)["Deployment creative-selector"]
    open_egress = copy.deepcopy(find(policies, "NetworkPolicy", "redis-clients-egress"))
    open_egress["spec"]["egress"].append({})
    assert "*:*" in reach([*policies, open_egress], selector_labels, "Egress")
    without_deny = [p for p in policies if p["metadata"]["name"] != "default-deny"]
    assert reach(without_deny, selector_labels, "Ingress") == {"ad-server/*:8080/TCP"}
    assert reach(without_deny, {"app.kubernetes.io/name": "nothing-selects-me"}, "Ingress") is None
    api = copy.deepcopy(find(policies, "NetworkPolicy", "kube-api-egress"))
    del api["spec"]["egress"][0]["to"][0]["ipBlock"]["except"]
    assert metadata_routes([api]) == [{"cidr": "0.0.0.0/0"}]
    assert selects(
        {"matchExpressions": [{"key": WORKFLOW_LABEL, "operator": "Exists"}]}, pods(objects)["pipeline step"]
    )
    assert not selects({"matchLabels": {"caig.io/redis-client": "true"}}, pods(objects)["pipeline step"])
