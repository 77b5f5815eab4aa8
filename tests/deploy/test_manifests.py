"""The kustomize tree: every overlay builds, every object validates against its schema, and the security,
image and network rules the deployment promises hold in what Argo CD would apply."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.deploy.conftest import (
    K8S_VERSION,
    KSERVE_KINDS,
    MANIFESTS,
    OVERLAYS,
    ROOT,
    find,
    kserve_strict,
    kustomize,
)

from caig.orchestration.images import DEFAULT_REGISTRY, DEFAULT_TAG, RELEASE_IMAGES
from caig.profile import load_profile

WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Argo CD's Application has no schema in either validator; its fields are checked by hand below.
NO_SCHEMA = {"Application"}


def test_both_overlays_exist():
    assert OVERLAYS == ["local", "production"]


def test_base_builds_on_its_own():
    kinds = {o["kind"] for o in kustomize(MANIFESTS / "base")}
    assert {
        "InferenceService",
        "ServingRuntime",
        "Deployment",
        "StatefulSet",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
    } <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_schemas(built, overlay):
    checked = 0
    for obj in built[overlay]:
        where = f"{overlay}: {obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in KSERVE_KINDS:
            kserve_strict(obj, KSERVE_KINDS[obj["kind"]], where)
        elif obj["kind"] not in NO_SCHEMA:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 25


def test_schema_checks_catch_mistakes(built):
    """Each validator rejects a typo, so the test above can fail."""
    deployment = copy.deepcopy(find(built["production"], "Deployment", "creative-selector"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    deployment = copy.deepcopy(find(built["production"], "Deployment", "creative-selector"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    isvc = copy.deepcopy(find(built["production"], "InferenceService", "caig-pm"))
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://x"
    with pytest.raises(AssertionError, match="storageURI"):
        kserve_strict(isvc, "V1beta1InferenceService")
    isvc = copy.deepcopy(find(built["production"], "InferenceService", "caig-pm"))
    del isvc["spec"]["predictor"]
    with pytest.raises(ValueError, match="predictor"):
        kserve_strict(isvc, "V1beta1InferenceService")
    runtime = copy.deepcopy(find(built["production"], "ServingRuntime", "caig-pm"))
    del runtime["spec"]["containers"][0]["name"]
    with pytest.raises(ValueError, match="name"):
        kserve_strict(runtime, "V1alpha1ServingRuntime")
    runtime = copy.deepcopy(find(built["production"], "ServingRuntime", "caig-pm"))
    runtime["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(AssertionError, match="expected int"):
        kserve_strict(runtime, "V1alpha1ServingRuntime")


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(where, pod-level spec, containers) of every workload, runtime and model server."""
    specs = []
    for obj in objects:
        where = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in WORKLOADS:
            pod = obj["spec"]["template"]["spec"]
            specs.append((where, pod, pod["containers"]))
        elif obj["kind"] == "InferenceService":
            predictor = obj["spec"]["predictor"]
            specs.append((where, predictor, [predictor["model"]]))
        elif obj["kind"] == "ServingRuntime":
            specs.append((where, None, obj["spec"]["containers"]))
    return specs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(built, overlay):
    """Non-root, read-only root fs, no privilege escalation, all capabilities dropped, seccomp."""
    specs = _pod_specs(built[overlay])
    assert len(specs) == 10  # 3 runtimes, 3 model servers, selector, Feast server, Redis, pipelines sync
    for where, pod, containers in specs:
        if pod is not None:
            ctx = pod["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] >= 10000, where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
        if where.startswith("InferenceService"):
            continue  # the container is the ServingRuntime's, checked on its own
        for container in containers:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_come_from_images_module(built, overlay):
    """Our containers run caig-step, caig-serve or caig-selector from one registry and tag; nothing floats on
    :latest."""
    registries = {"production": DEFAULT_REGISTRY, "local": "localhost:5001"}
    ours = set()
    for _, _, containers in _pod_specs(built[overlay]):
        for container in containers:
            if "image" not in container:
                continue  # an InferenceService's model takes the runtime's image
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, image
            if name.endswith(tuple(f"/{n}" for n in RELEASE_IMAGES)):
                registry, _, short = name.rpartition("/")
                assert registry == registries[overlay], image
                assert tag == DEFAULT_TAG, image
                ours.add(short)
            else:
                assert name == "redis", f"unexpected third-party image {image}"
    assert ours == {"caig-serve", "caig-step", "caig-selector"}


def test_base_names_only_known_images():
    for path in (MANIFESTS / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            for image in _images_in(doc):
                assert image in RELEASE_IMAGES or image.startswith("redis:"), f"{path.name}: {image}"
    for overlay in OVERLAYS:
        spec = yaml.safe_load((MANIFESTS / "overlays" / overlay / "kustomization.yaml").read_text())
        assert {i["name"] for i in spec["images"]} <= set(RELEASE_IMAGES)


def _images_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["image"]] if isinstance(node.get("image"), str) else []
        return found + [i for v in node.values() for i in _images_in(v)]
    if isinstance(node, list):
        return [i for v in node for i in _images_in(v)]
    return []


def test_gpu_models_on_gpu_pool_in_production(built):
    for name in ("caig-pm", "caig-rm", "caig-render"):
        predictor = find(built["production"], "InferenceService", name)["spec"]["predictor"]
        assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert predictor["nodeSelector"] == {"caig.io/node-pool": "gpu"}
        assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert predictor["minReplicas"] >= 1 and predictor["maxReplicas"] > predictor["minReplicas"]
        assert predictor["model"]["storageUri"]
    assert (
        find(built["production"], "InferenceService", "caig-pm")["spec"]["predictor"]["canaryTrafficPercent"]
        == 10
    )
    assert (
        "canaryTrafficPercent"
        not in find(built["production"], "InferenceService", "caig-render")["spec"]["predictor"]
    )


# a 7B model (LLaVA-v1.6-7B, SD1.5 + ControlNet) loads before its server listens: allow half an hour
MODEL_LOAD_S = 30 * 60
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _seconds(duration: str) -> int:
    """A Go duration as Knative reads it ('45m', '1h30m', '600s') in seconds."""
    match = _DURATION.match(duration)
    assert match and any(match.groups()), f"not a duration: {duration!r}"
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_model_servers_are_cluster_local_and_survive_a_long_load(built, overlay):
    objects = built[overlay]
    for name in ("caig-pm", "caig-rm", "caig-render"):
        isvc = find(objects, "InferenceService", name)
        assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local", name
        deadline = _seconds(isvc["metadata"]["annotations"]["serving.knative.dev/progress-deadline"])
        assert deadline > MODEL_LOAD_S, f"{name}: Knative would fail the revision during the load"
        runtime = find(objects, "ServingRuntime", isvc["spec"]["predictor"]["model"]["runtime"])
        container = runtime["spec"]["containers"][0]
        startup = container["startupProbe"]
        assert startup["failureThreshold"] * startup["periodSeconds"] >= MODEL_LOAD_S, name
        assert deadline >= startup["failureThreshold"] * startup["periodSeconds"] + 600, name
        liveness = container["livenessProbe"]
        assert liveness["httpGet"]["path"] == "/v2/health/live" and "initialDelaySeconds" not in liveness
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60, name


def test_duration_parsing():
    assert _seconds("45m") == 2700 and _seconds("1h30m") == 5400 and _seconds("600s") == 600
    with pytest.raises(AssertionError, match="not a duration"):
        _seconds("45 minutes")


# At least 7.4.6, and in each later release line the release that fixed CVE-2025-49844 (Lua use-after-free,
# remote code execution; the selector runs Lua) and CVE-2025-21605; a line not listed is newer than them all
REDIS_MINIMUM = (7, 4, 6)
REDIS_FIXED = {(7, 4): (7, 4, 6), (8, 0): (8, 0, 4), (8, 2): (8, 2, 2)}


def redis_version(image: str) -> tuple[int, int, int]:
    """The version of a ``redis:TAG[@sha256:...]`` image ('7.4.6-alpine' -> (7, 4, 6))."""
    tag = image.split("@", 1)[0].rpartition(":")[2]
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:-[a-z0-9.]+)?$", tag)
    assert match, f"{image}: the Redis image needs an exact version tag (7.4.6-alpine), not {tag!r}"
    return tuple(int(g) for g in match.groups())  # type: ignore[return-value]


def redis_is_patched(version: tuple[int, int, int]) -> bool:
    """At or above REDIS_MINIMUM and its release line's fix."""
    if version < REDIS_MINIMUM:
        return False
    fixed = REDIS_FIXED.get(version[:2])
    return version >= fixed if fixed is not None else version[:2] > max(REDIS_FIXED)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_image_is_patched(built, overlay):
    images = [
        c["image"]
        for o in built[overlay]
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
        for c in o["spec"]["template"]["spec"].get("initContainers", [])
        + o["spec"]["template"]["spec"]["containers"]
        if c["image"].split("@")[0].rpartition(":")[0].rpartition("/")[2] == "redis"
    ]
    assert images, "no Redis container"
    for image in images:
        assert redis_is_patched(redis_version(image)), f"{image}: below the patched release {REDIS_MINIMUM}"


def test_redis_version_check_can_fail():
    assert not redis_is_patched(redis_version("redis:7.4.2-alpine"))
    assert not redis_is_patched(redis_version("redis:7.2.11"))  # patched line, but below 7.4.6
    assert not redis_is_patched(redis_version("redis:8.0.3"))  # newer than 7.4.6, yet unpatched
    assert redis_is_patched(redis_version("docker.io/library/redis:7.4.6-alpine@sha256:" + "0" * 64))
    assert redis_is_patched(redis_version("redis:8.4.0"))
    with pytest.raises(AssertionError, match="exact version tag"):
        redis_version("redis:7-alpine")


def test_local_overlay_has_no_gpu(built):
    for name in ("caig-pm", "caig-rm", "caig-render"):
        resources = find(built["local"], "InferenceService", name)["spec"]["predictor"]["model"]["resources"]
        assert "nvidia.com/gpu" not in resources["limits"] and "nvidia.com/gpu" not in resources["requests"]


def test_selector_scales_and_survives_disruption(built):
    objects = built["production"]
    deployment = find(objects, "Deployment", "creative-selector")
    hpa = find(objects, "HorizontalPodAutoscaler", "creative-selector")
    pdb = find(objects, "PodDisruptionBudget", "creative-selector")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "creative-selector" and hpa["spec"]["minReplicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["serve", "selector"] and container["image"].endswith("/caig-selector:0.1.0")
    assert {"readinessProbe", "livenessProbe"} <= set(container)
    assert container["resources"]["limits"] and "nvidia.com/gpu" not in container["resources"]["limits"]


def test_only_ad_server_may_call_selector(built):
    policies = [o for o in built["production"] if o["kind"] == "NetworkPolicy"]
    deny = find(policies, "NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {} and "ingress" not in deny["spec"]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    selector_labels = find(built["production"], "Deployment", "creative-selector")["spec"]["template"][
        "metadata"
    ]["labels"]
    allowing = [
        p
        for p in policies
        if _selects(p["spec"]["podSelector"], selector_labels) and p["spec"].get("ingress")
    ]
    sources = [src for p in allowing for rule in p["spec"]["ingress"] for src in rule["from"]]
    assert sources == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ad-server"}}}]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
        if expr["operator"] == "Exists" and expr["key"] not in labels:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_least_privilege_identities(built, overlay):
    """No account mounts a token by default; only the Feast server's pod does (its Kubernetes auth). What
    each identity may do is the table of tests/deploy/test_rbac.py."""
    objects = built[overlay]
    for sa in (o for o in objects if o["kind"] == "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]
    for where, pod, _ in _pod_specs(objects):
        if pod is not None and not where.startswith("InferenceService"):
            expected = where == "Deployment feast-feature-server"
            assert pod["automountServiceAccountToken"] is expected, where
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles = [o for o in objects if o["kind"] == "Role"]
    assert {r["metadata"]["name"] for r in roles} == {"caig-register", "caig-feast-auth"}
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert not {
                "create",
                "update",
                "delete",
                "deletecollection",
                "escalate",
                "bind",
                "impersonate",
            } & set(rule["verbs"])
            assert "secrets" not in rule["resources"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_profiles_configmap_is_the_checked_in_profile(built, overlay, tmp_path):
    objects = built[overlay]
    profiles = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("caig-profiles")
    )
    settings = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("caig-settings")
    )
    assert settings["data"]["CAIG_PROFILE"] == overlay
    for name, text in profiles["data"].items():
        assert text == (ROOT / "configs" / name).read_text()
    chosen = tmp_path / f"{overlay}.yaml"
    chosen.write_text(profiles["data"][f"{overlay}.yaml"])
    profile = load_profile(str(chosen))
    assert profile.deploy.overlay == overlay
    # every pod that loads the profile mounts this ConfigMap (its hashed name) and reads CAIG_PROFILE
    mounted = {
        v["configMap"]["name"]
        for _, pod, _ in _pod_specs(objects)
        if pod
        for v in pod.get("volumes", [])
        if "configMap" in v
    }
    runtimes = {
        v["configMap"]["name"]
        for o in objects
        if o["kind"] == "ServingRuntime"
        for v in o["spec"]["volumes"]
        if "configMap" in v
    }
    assert mounted | runtimes == {profiles["metadata"]["name"]}


def test_kfp_sync_job_runs_deploy_pipelines(built):
    job = find(built["production"], "Job", "caig-pipelines-sync")
    # a Sync hook: a PostSync one waits until every resource is healthy, and the model servers become
    # healthy only once a pipeline this job uploads has registered a run (the first sync would deadlock)
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["caig"] and container["args"][:2] == ["deploy", "pipelines"]
    assert container["image"].endswith("/caig-step:0.1.0")


def test_configs_kustomization_lists_every_profile():
    spec = yaml.safe_load((ROOT / "configs" / "Kustomization").read_text())
    listed = set(spec["configMapGenerator"][0]["files"])
    assert listed == {"local.yaml", "production.yaml"}
    assert all((ROOT / "configs" / f).is_file() for f in listed)
