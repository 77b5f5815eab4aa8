"""Carry out a plan on a cluster with the kubernetes client, and wait for readiness with KServe's client.

The only module of the stage that talks to the Kubernetes API; the clients are imported here, lazily, so
planning and ``--dry-run`` work without them or a cluster.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from caig.deploy.kubeconfig import kubeconfig_path, load_kube_config
from caig.deploy.plan import Plan
from caig.errors import UserError

log = logging.getLogger("caig.deploy")

KSERVE_GROUP = "serving.kserve.io"
KSERVE_PLURAL = "inferenceservices"


def apply_plan(
    plan: Plan,
    field_manager: str,
    wait_s: int = 0,
    kubeconfig: str | None = None,
    token_dir: str | None = None,
) -> dict[str, Any]:
    """Create the plan's object if the cluster lacks it, else send its patch; optionally wait until ready.

    Returns ``{"result": "created" | "patched", "kind", "name", "namespace", "generation", "ready"}``.
    """
    from kubernetes.client.rest import ApiException

    load_kube_config(kubeconfig, token_dir=token_dir)
    api = _Api(plan.patch.kind)
    patch = plan.patch
    try:
        exists = api.get(patch.namespace, patch.name) is not None
        if not exists and plan.object is None:
            raise UserError(
                f"{patch.kind} {patch.namespace}/{patch.name} does not exist; `caig deploy {plan.target}` it first"
            )
        if exists:
            written = api.patch(patch.namespace, patch.name, patch.body, field_manager)
            result = "patched"
        else:
            written = api.create(patch.namespace, plan.object, field_manager)
            result = "created"
    except ApiException as err:
        raise UserError(
            f"the Kubernetes API refused {patch.kind} {patch.namespace}/{patch.name}: "
            f"{err.status} {err.reason}"
        ) from None
    generation = written.get("metadata", {}).get("generation")
    log.info("%s %s %s/%s (generation %s)", result, patch.kind, patch.namespace, patch.name, generation)
    ready = (
        _wait(patch.kind, patch.namespace, patch.name, generation, wait_s, kubeconfig) if wait_s > 0 else None
    )
    return {
        "result": result,
        "kind": patch.kind,
        "name": patch.name,
        "namespace": patch.namespace,
        "generation": generation,
        "ready": ready,
    }


class _Api:
    """get/create/patch of the two kinds we roll out, returning plain dicts (None when absent on get)."""

    def __init__(self, kind: str) -> None:
        from kubernetes import client

        self.kind = kind
        self.custom = client.CustomObjectsApi()
        self.apps = client.AppsV1Api()
        self.client = client.ApiClient()

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        try:
            if self.kind == "InferenceService":
                return self.custom.get_namespaced_custom_object(
                    KSERVE_GROUP, "v1beta1", namespace, KSERVE_PLURAL, name
                )
            return self.client.sanitize_for_serialization(
                self.apps.read_namespaced_deployment(name, namespace)
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def create(self, namespace: str, body: dict[str, Any], manager: str) -> dict[str, Any]:
        if self.kind == "InferenceService":
            return self.custom.create_namespaced_custom_object(
                KSERVE_GROUP, "v1beta1", namespace, KSERVE_PLURAL, body, field_manager=manager
            )
        created = self.apps.create_namespaced_deployment(namespace, body, field_manager=manager)
        return self.client.sanitize_for_serialization(created)

    def patch(self, namespace: str, name: str, body: dict[str, Any], manager: str) -> dict[str, Any]:
        # CustomObjectsApi sends a dict as a JSON merge patch, AppsV1Api as a strategic merge patch: the
        # content types the plan records.
        if self.kind == "InferenceService":
            return self.custom.patch_namespaced_custom_object(
                KSERVE_GROUP, "v1beta1", namespace, KSERVE_PLURAL, name, body, field_manager=manager
            )
        patched = self.apps.patch_namespaced_deployment(name, namespace, body, field_manager=manager)
        return self.client.sanitize_for_serialization(patched)


def _wait(
    kind: str, namespace: str, name: str, generation: int | None, timeout_s: int, kubeconfig: str | None
) -> bool:
    if kind == "InferenceService":
        from kserve import KServeClient

        try:
            KServeClient(config_file=kubeconfig_path(kubeconfig)).wait_isvc_ready(
                name,
                namespace=namespace,
                timeout_seconds=timeout_s,
                polling_interval=5,
                expected_generation=generation,
            )
        except RuntimeError as err:
            raise UserError(
                f"InferenceService {namespace}/{name} not ready after {timeout_s} s: "
                f"{str(err).splitlines()[0]}; see `kubectl describe isvc -n {namespace} {name}`"
            ) from None
        return True
    return _wait_deployment(namespace, name, generation, timeout_s)


def _wait_deployment(namespace: str, name: str, generation: int | None, timeout_s: int) -> bool:
    from kubernetes import client

    apps = client.AppsV1Api()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dep = apps.read_namespaced_deployment_status(name, namespace)
        status, wanted = dep.status, dep.spec.replicas or 0
        if (
            (status.observed_generation or 0) >= (generation or 0)
            and (status.updated_replicas or 0) >= wanted
            and (status.available_replicas or 0) >= wanted
        ):
            return True
        time.sleep(2)
    raise UserError(
        f"Deployment {namespace}/{name} not rolled out after {timeout_s} s; "
        f"see `kubectl rollout status -n {namespace} deployment/{name}`"
    )


def read_config_map(
    namespace: str, name: str, kubeconfig: str | None = None
) -> tuple[dict[str, str] | None, str]:
    """A ConfigMap's data, or (None, why it could not be read): no credentials, refused, absent, unreachable.

    Read-only, so ``--dry-run`` may use it; a cluster that cannot be read is reported, never an error.
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError

    try:
        load_kube_config(kubeconfig)
    except UserError as err:
        return None, str(err)
    try:
        found = client.CoreV1Api().read_namespaced_config_map(name, namespace, _request_timeout=10)
    except ApiException as err:
        return None, f"the API server answered {err.status} {err.reason}"
    except HTTPError as err:
        return None, f"cannot reach the API server ({type(err).__name__})"
    return dict(found.data or {}), ""
