"""A create answers the object kube-apiserver would: every kind with a status starts with the zero
status kube's encoder writes (`"status":{}` for a Deployment, `{"replicas":0}` for a ReplicaSet...),
whatever status the client sent, so clients reading `.status` (kr8s' wait) find it; a kind served at
several versions answers each version's zero status (autoscaling/v1 and v2 HorizontalPodAutoscalers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store
from tests.csrs import csr, request_pem

LABELS = {"app": "x"}
POD_SPEC = {"containers": [{"name": "c", "image": "img"}]}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": POD_SPEC}
WORKLOAD = {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}
JOB_SPEC = {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}
HPA_SPEC = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3}
ZERO_NODE_INFO = {f: "" for f in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                                  "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                                  "operatingSystem", "architecture")}

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("apps/v1", "Deployment", WORKLOAD, {}),
    ("apps/v1", "ReplicaSet", WORKLOAD, {"replicas": 0}),
    ("apps/v1", "DaemonSet", WORKLOAD, {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                        "desiredNumberScheduled": 0, "numberReady": 0}),
    ("apps/v1", "StatefulSet", {**WORKLOAD, "serviceName": "x"}, {"replicas": 0, "availableReplicas": 0}),
    ("batch/v1", "Job", JOB_SPEC, {}),
    ("batch/v1", "CronJob", {"schedule": "* * * * *", "jobTemplate": {"spec": JOB_SPEC}}, {}),
    ("v1", "Service", {"ports": [{"port": 80}]}, {"loadBalancer": {}}),
    ("policy/v1", "PodDisruptionBudget", {"minAvailable": 1, "selector": {"matchLabels": LABELS}},
     {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
    ("v1", "PersistentVolumeClaim",
     {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, {"phase": "Pending"}),
    ("v1", "PersistentVolume", {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                "hostPath": {"path": "/tmp/pv"}}, {"phase": "Pending"}),
    ("networking.k8s.io/v1", "Ingress",
     {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}, {"loadBalancer": {}}),
    ("v1", "ResourceQuota", {"hard": {"pods": "10"}}, {}),
    ("v1", "ReplicationController", {"selector": LABELS, "template": TEMPLATE}, {"replicas": 0}),
    # conditions are omitempty; a Local APIService (no spec.service) is Available at once
    ("apiregistration.k8s.io/v1", "APIService",
     {"group": "x.example.com", "version": "v1", "groupPriorityMinimum": 100, "versionPriority": 10,
      "service": {"namespace": "default", "name": "api"}, "insecureSkipTLSVerify": True}, {}),
    ("v1", "Pod", POD_SPEC, {"phase": "Pending", "qosClass": "BestEffort"}),
    ("v1", "Namespace", {}, {"phase": "Active"}),
    ("v1", "Node", {}, {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": ZERO_NODE_INFO}),
    # stored at v2 (desiredReplicas and currentMetrics are not omitempty); v1 shows it converted
    ("autoscaling/v2", "HorizontalPodAutoscaler", HPA_SPEC,
     {"desiredReplicas": 0, "currentMetrics": None}),
    ("autoscaling/v1", "HorizontalPodAutoscaler", HPA_SPEC,
     {"currentReplicas": 0, "desiredReplicas": 0}),
    ("certificates.k8s.io/v1", "CertificateSigningRequest",
     csr("x", request_pem("system:node:n1"))["spec"], {}),
]
NAMES = {"APIService": "v1.x.example.com"}  # an APIService is named <version>.<group>


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


@pytest.mark.parametrize(("api_version", "kind", "spec", "status"), CASES,
                         ids=[f"{c[1]}-{c[0]}" for c in CASES])
async def test_create_returns_the_zero_status(core: ApiCore, api_version: str, kind: str,
                                              spec: dict[str, Any], status: dict[str, Any]) -> None:
    rt = core.registry.by_api_version_kind(api_version, kind)
    assert rt is not None
    name = NAMES.get(kind, f"zero-{kind.lower()}")
    body = {"metadata": {"name": name}, "spec": spec}
    if kind == "Deployment":
        body["status"] = {"observedGeneration": 7}  # a client's status is dropped on create
    created = await core.create(rt, "default" if rt.namespaced else None, body)
    assert created.obj["status"] == status
    stored = core.get(rt, "default" if rt.namespaced else None, name)
    assert stored["status"] == status


async def test_every_kind_with_a_status_subresource_is_covered(core: ApiCore) -> None:
    """At every version it is served at (a served-but-not-stored version converts the zero status)."""
    with_status = {(t.api_version, t.kind) for t in core.registry.served if t.has_subresource("status")}
    crd_kind = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")  # its own test below
    assert with_status <= {c[:2] for c in CASES} | {crd_kind}


def crd(kind: str, *, status_subresource: bool) -> dict[str, Any]:
    plural = kind.lower() + "s"
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if status_subresource:
        version["subresources"] = {"status": {}}
    return {"metadata": {"name": f"{plural}.zero.example.com"},
            "spec": {"group": "zero.example.com", "scope": "Namespaced",
                     "names": {"plural": plural, "kind": kind}, "versions": [version]}}


async def test_a_crd_starts_with_kube_zero_status(core: ApiCore) -> None:
    """CustomResourceDefinitionStatus: acceptedNames and storedVersions are not omitempty (the
    naming controller fills the names in)."""
    rt = core.registry.by_kind("CustomResourceDefinition")
    assert rt is not None
    body = {**crd("Gizmo", status_subresource=True),
            "status": {"acceptedNames": {"kind": "X", "plural": "xs"}}}
    created = await core.create(rt, None, body)
    assert created.obj["status"] == {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}


@pytest.fixture
async def crd_core(core: ApiCore) -> AsyncIterator[ApiCore]:
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(core)).run)
        yield core
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("kind", "status_subresource", "expected"), [
    ("Gizmo", True, None),
    ("Gizmo", False, {"ready": True}),
    ("Deployment", True, None),
], ids=["status-subresource", "no-status-subresource", "named-like-a-built-in"])
async def test_a_custom_resource_create_keeps_no_zero_status(
        crd_core: ApiCore, kind: str, status_subresource: bool, expected: dict[str, Any] | None) -> None:
    """kube's customResourceStrategy: with a status subresource the status sent is dropped and none is
    written (an unstructured object has no zero status, whatever its kind is called); without one, the
    status is the client's."""
    definitions = crd_core.registry.by_kind("CustomResourceDefinition")
    assert definitions is not None
    await crd_core.create(definitions, None, crd(kind, status_subresource=status_subresource))
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()  # the CRD controller established it
    rt = crd_core.registry.by_path("zero.example.com", "v1", kind.lower() + "s")
    assert rt is not None
    body = {"apiVersion": "zero.example.com/v1", "kind": kind, "metadata": {"name": "z"},
            "spec": {"size": 1}, "status": {"ready": True}}
    created = (await crd_core.create(rt, "default", body)).obj
    assert created.get("status") == expected
    assert crd_core.get(rt, "default", "z").get("status") == expected
