"""Who may do what to the Kubernetes API: the table below is the whole of it, and the overlays grant exactly it.

Each entry says which code needs the verb. A Role rule that grants more (another verb, another resource, any
object where the table names one) fails, as does a grant the table lists that no Role gives.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.deploy.conftest import OVERLAYS

from caig.deploy.targets import TARGETS

Grant = tuple[str, str, str | None, str]  # apiGroup, resource, resourceName (None: any), verb

_ISVCS = ("caig-pm", "caig-rm", "caig-render")
PERMISSIONS: dict[str, set[Grant]] = {
    # the register step and `caig deploy` (caig.deploy.cluster.apply_plan): read the object, then PATCH it
    # (pm, rm, render: JSON merge patch of storageUri and canaryTrafficPercent; selector: strategic merge
    # patch of its run volume); `caig deploy selector` then reads deployments/status until rolled out
    # (_wait_deployment); KServeClient.wait_isvc_ready polls with GET
    "caig-register": {
        *(
            ("serving.kserve.io", "inferenceservices", name, verb)
            for name in _ISVCS
            for verb in ("get", "patch")
        ),
        ("apps", "deployments", "creative-selector", "get"),
        ("apps", "deployments", "creative-selector", "patch"),
        ("apps", "deployments/status", "creative-selector", "get"),
    },
    # Feast's KubernetesTokenParser.get_roles: list_namespaced_role_binding in its own namespace
    "caig-feast": {("rbac.authorization.k8s.io", "rolebindings", None, "list")},
}
# identities that mount an API token, and how: a pod's automountServiceAccountToken, or a token Secret
TOKEN_MOUNTS = {"caig-feast": "pod", "caig-register": "secret"}


def granted(objects: list[dict[str, Any]]) -> dict[str, set[Grant]]:
    """Every (apiGroup, resource, name, verb) each service account of the namespace is granted."""
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Role"}
    found: dict[str, set[Grant]] = {}
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        ref = binding["roleRef"]
        assert ref["kind"] == "Role" and ref["name"] in roles, f"{binding['metadata']['name']}: {ref}"
        namespace = binding["metadata"]["namespace"]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", subject
            assert subject.get("namespace", namespace) == namespace, f"{subject}: outside {namespace}"
            grants = found.setdefault(subject["name"], set())
            for rule in roles[ref["name"]].get("rules", []):
                names = rule.get("resourceNames") or [None]
                grants |= {
                    (group, resource, name, verb)
                    for group in rule["apiGroups"]
                    for resource in rule["resources"]
                    for name in names
                    for verb in rule["verbs"]
                }
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_roles_grant_exactly_the_table(built, overlay):
    found = granted(built[overlay])
    assert set(found) == set(PERMISSIONS)
    for identity, grants in found.items():
        assert grants - PERMISSIONS[identity] == set(), f"{identity} may do more than the table says"
        assert PERMISSIONS[identity] - grants == set(), f"{identity} lacks what the table says it needs"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_cluster_wide_rbac_and_no_unbound_role(built, overlay):
    objects = built[overlay]
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    bound = {o["roleRef"]["name"] for o in objects if o["kind"] == "RoleBinding"}
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Role"} == bound


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_identities_exist_and_only_they_mount_tokens(built, overlay):
    objects = built[overlay]
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    assert set(PERMISSIONS) <= set(accounts)
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())
    mounted = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            pod = obj["spec"]["template"]["spec"]
            if pod.get("automountServiceAccountToken", True):
                mounted[pod["serviceAccountName"]] = "pod"
        elif obj["kind"] == "InferenceService":
            assert obj["spec"]["predictor"]["serviceAccountName"] == "caig-model-server"
        elif obj["kind"] == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
            assert "data" not in obj and "stringData" not in obj  # Kubernetes fills the token in
            mounted[obj["metadata"]["annotations"]["kubernetes.io/service-account.name"]] = "secret"
    assert mounted == TOKEN_MOUNTS


def test_register_identity_covers_every_rollout_target():
    """The objects `caig deploy` and register act on are the ones the table names, no more, no fewer."""
    named = {(g, r, n) for g, r, n, _ in PERMISSIONS["caig-register"] if r != "deployments/status"}
    targets = {
        (t.api_version.rpartition("/")[0], t.kind.lower() + "s", t.object_name) for t in TARGETS.values()
    }
    assert named == targets


def test_table_check_can_fail(built):
    """A Role that also grants list, or drops resourceNames, is caught."""
    objects = copy.deepcopy(built["production"])
    role = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "caig-register")
    role["rules"][0]["verbs"].append("list")
    assert ("serving.kserve.io", "inferenceservices", "caig-pm", "list") in granted(objects)["caig-register"]
    del role["rules"][1]["resourceNames"]
    assert ("apps", "deployments", None, "patch") in granted(objects)["caig-register"]
    assert granted(objects)["caig-register"] - PERMISSIONS["caig-register"]
