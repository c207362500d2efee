"""The official `kubernetes` Python client drives every kind: create, list, watch, patch, delete."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import LiveCluster

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture(scope="module")
def api(live_cluster: LiveCluster) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    cfg.host = live_cluster.url
    cfg.api_key = {"authorization": live_cluster.token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    cfg.ssl_ca_cert = str(live_cluster.ca_cert)
    with client.ApiClient(cfg) as api_client:
        core = client.CoreV1Api(api_client)
        core.create_namespace({"metadata": {"name": "py"}})
        yield api_client


POD_SPEC = {
    "containers": [{"name": "main", "image": "localhost/busybox:latest", "command": ["sleep", "3600"]}]
}
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}
JOB_TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {**POD_SPEC, "restartPolicy": "Never"}}

# kind -> (api class, method suffix, namespaced, body)
KINDS: dict[str, tuple[str, str, bool, dict[str, Any]]] = {
    "Namespace": ("CoreV1Api", "namespace", False, {}),
    "Pod": ("CoreV1Api", "namespaced_pod", True, {"spec": POD_SPEC}),
    "Service": (
        "CoreV1Api",
        "namespaced_service",
        True,
        {"spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}},
    ),
    "Endpoints": ("CoreV1Api", "namespaced_endpoints", True, {"subsets": []}),
    "Node": ("CoreV1Api", "node", False, {"spec": {}}),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map", True, {"data": {"a": "b"}}),
    "Secret": ("CoreV1Api", "namespaced_secret", True, {"stringData": {"a": "b"}}),
    "Event": (
        "CoreV1Api",
        "namespaced_event",
        True,
        {
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "py"},
            "reason": "Test",
            "message": "m",
            "type": "Normal",
        },
    ),
    "ServiceAccount": ("CoreV1Api", "namespaced_service_account", True, {}),
    "ReplicationController": (
        "CoreV1Api",
        "namespaced_replication_controller",
        True,
        {"spec": {"replicas": 0, "selector": {"app": "x"}, "template": TEMPLATE}},
    ),
    "PodTemplate": ("CoreV1Api", "namespaced_pod_template", True, {"template": TEMPLATE}),
    "Deployment": (
        "AppsV1Api",
        "namespaced_deployment",
        True,
        {"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    ),
    "ReplicaSet": (
        "AppsV1Api",
        "namespaced_replica_set",
        True,
        {"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    ),
    "DaemonSet": (
        "AppsV1Api",
        "namespaced_daemon_set",
        True,
        {"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    ),
    "StatefulSet": (
        "AppsV1Api",
        "namespaced_stateful_set",
        True,
        {"spec": {"serviceName": "x", "selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    ),
    "Job": ("BatchV1Api", "namespaced_job", True, {"spec": {"template": JOB_TEMPLATE}}),
    "CronJob": (
        "BatchV1Api",
        "namespaced_cron_job",
        True,
        {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}}},
    ),
    "Lease": ("CoordinationV1Api", "namespaced_lease", True, {"spec": {"holderIdentity": "me"}}),
    "EndpointSlice": (
        "DiscoveryV1Api",
        "namespaced_endpoint_slice",
        True,
        {"addressType": "IPv4", "endpoints": []},
    ),
    "HorizontalPodAutoscaler": (
        "AutoscalingV2Api",
        "namespaced_horizontal_pod_autoscaler",
        True,
        {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": 3,
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}},
            }
        },
    ),
    # the same stored objects at autoscaling/v1: every verb converts, the models must accept what comes back
    "HorizontalPodAutoscaler-v1": (
        "AutoscalingV1Api",
        "namespaced_horizontal_pod_autoscaler",
        True,
        {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 40,
            }
        },
    ),
}


def _call(api: Any, verb: str, suffix: str, namespaced: bool, *args: Any, **kw: Any) -> Any:
    fn: Callable[..., Any] = getattr(api, f"{verb}_{suffix}")
    return fn(*args, "py", **kw) if namespaced else fn(*args, **kw)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crud_watch_every_kind(api: client.ApiClient, kind: str) -> None:
    cls, suffix, namespaced, extra = KINDS[kind]
    a = getattr(client, cls)(api)
    name = f"t-{kind.lower()}"
    created = _call(a, "create", suffix, False, **({"namespace": "py"} if namespaced else {}),
                    body={"metadata": {"name": name, "labels": {"t": "1"}}, **extra})
    assert created.metadata.name == name
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp

    listed = _call(a, "list", suffix, namespaced, label_selector="t=1")
    assert name in [i.metadata.name for i in listed.items]

    seen: list[str] = []

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(getattr(a, f"list_{suffix}"), *(["py"] if namespaced else []),
                           resource_version=listed.metadata.resource_version, timeout_seconds=10):
            seen.append(ev["type"])
            if ev["type"] == "MODIFIED":
                w.stop()

    t = threading.Thread(target=watcher)
    t.start()
    patched = _call(a, "patch", suffix, False, name, **({"namespace": "py"} if namespaced else {}),
                    body={"metadata": {"labels": {"patched": "yes"}}})
    assert patched.metadata.labels["patched"] == "yes"
    t.join(15)
    assert "MODIFIED" in seen

    got = _call(a, "read", suffix, False, name, **({"namespace": "py"} if namespaced else {}))
    assert {k: v for k, v in got.metadata.labels.items() if "kubernetes.io" not in k} == {
        "t": "1",
        "patched": "yes",
    }
    if kind == "Namespace":
        return  # namespace deletion needs the namespace controller (tested with the reconcilers)
    _call(a, "delete", suffix, False, name, **({"namespace": "py"} if namespaced else {}))
    with pytest.raises(ApiException) as exc:
        _call(a, "read", suffix, False, name, **({"namespace": "py"} if namespaced else {}))
    assert exc.value.status == 404


def test_scale_subresource(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        "py",
        {
            "metadata": {"name": "scaled"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE},
        },
    )
    scale = apps.patch_namespaced_deployment_scale("scaled", "py", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    assert apps.read_namespaced_deployment("scaled", "py").spec.replicas == 4


def test_conflict_on_stale_resource_version(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map("py", {"metadata": {"name": "stale"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("stale", "py", {"data": {"a": "2"}})
    cm.data = {"a": "3"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("stale", "py", cm)
    assert exc.value.status == 409
    assert "the object has been modified" in exc.value.body


def test_replication_controller_apis_like_the_clients_own_e2e(api: client.ApiClient) -> None:
    """The official client's e2e test_replication_controller_apis, plus its scale subresource."""
    core = client.CoreV1Api(api)
    container = {"image": "nginx", "name": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
    body = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"labels": {"name": "frontend"},
                                                                              "name": "frontend"},
            "spec": {"replicas": 2, "selector": {"name": "frontend"},
                     "template": {"metadata": {"labels": {"name": "frontend"}},
                                  "spec": {"containers": [container]}}}}
    created = core.create_namespaced_replication_controller(body=body, namespace="py")
    assert created.metadata.name == "frontend" and created.spec.replicas == 2
    assert core.read_namespaced_replication_controller(name="frontend", namespace="py").spec.replicas == 2
    scale = core.patch_namespaced_replication_controller_scale("frontend", "py", {"spec": {"replicas": 0}})
    assert scale.spec.replicas == 0 and scale.status.selector == "name=frontend"
    listed = core.list_namespaced_replication_controller("py", field_selector="metadata.name=frontend")
    assert [rc.metadata.name for rc in listed.items] == ["frontend"]
    core.delete_namespaced_replication_controller(name="frontend", namespace="py", body={})
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_replication_controller(name="frontend", namespace="py")
    assert exc.value.status == 404


def test_events_k8s_io_events(api: client.ApiClient) -> None:
    """events.k8s.io/v1 through EventsV1Api; the same objects through CoreV1Api."""
    core, events = client.CoreV1Api(api), client.EventsV1Api(api)
    core.create_namespace({"metadata": {"name": "py-events"}})
    body = {"metadata": {"name": "synced", "labels": {"t": "ev"}}, "eventTime": "2024-05-01T10:00:00.000000Z",
            "reportingController": "example.com/ctl", "reportingInstance": "ctl-1", "action": "Sync",
            "reason": "Synced", "type": "Normal", "note": "all good",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "py-events"}}
    created = events.create_namespaced_event("py-events", body)
    assert created.note == "all good" and created.regarding.name == "p"
    listed = events.list_namespaced_event("py-events", label_selector="t=ev")
    assert [e.metadata.name for e in listed.items] == ["synced"]
    assert [e.metadata.name for e in events.list_event_for_all_namespaces(
        field_selector="regarding.name=p,reportingController=example.com/ctl").items] == ["synced"]
    legacy = core.read_namespaced_event("synced", "py-events")
    assert legacy.message == "all good" and legacy.involved_object.name == "p"
    assert legacy.reporting_component == "example.com/ctl"
    seen: list[str] = []

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(events.list_namespaced_event, "py-events",
                           resource_version=listed.metadata.resource_version, timeout_seconds=10):
            seen.append(ev["type"])
            if ev["type"] == "MODIFIED":
                assert ev["object"].series.count == 2
                w.stop()

    t = threading.Thread(target=watcher)
    t.start()
    series = {"series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"}}
    assert events.patch_namespaced_event("synced", "py-events", series).series.count == 2
    t.join(15)
    assert "MODIFIED" in seen
    with pytest.raises(ApiException) as exc:
        events.create_namespaced_event("py-events", {**body, "metadata": {"name": "bad"}, "action": ""})
    assert exc.value.status == 422 and "action: Required value" in exc.value.body
    events.delete_namespaced_event("synced", "py-events")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_event("synced", "py-events")
    assert gone.value.status == 404
