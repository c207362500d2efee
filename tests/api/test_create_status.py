"""A create answers the object kube-apiserver would: every kind with a status starts with the zero
status kube's encoder writes (`"status":{}` for a Deployment, `{"replicas":0}` for a ReplicaSet...),
whatever status the client sent, so clients reading `.status` (kr8s' wait) find it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestra.api.request.core import ApiCore
from orchestra.app import bootstrap
from orchestra.store import Store

LABELS = {"app": "x"}
POD_SPEC = {"containers": [{"name": "c", "image": "img"}]}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": POD_SPEC}
WORKLOAD = {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}
JOB_SPEC = {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}
ZERO_NODE_INFO = {f: "" for f in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                                  "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                                  "operatingSystem", "architecture")}

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Deployment", WORKLOAD, {}),
    ("ReplicaSet", WORKLOAD, {"replicas": 0}),
    ("DaemonSet", WORKLOAD, {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                             "desiredNumberScheduled": 0, "numberReady": 0}),
    ("StatefulSet", {**WORKLOAD, "serviceName": "x"}, {"replicas": 0, "availableReplicas": 0}),
    ("Job", JOB_SPEC, {}),
    ("CronJob", {"schedule": "* * * * *", "jobTemplate": {"spec": JOB_SPEC}}, {}),
    ("Service", {"ports": [{"port": 80}]}, {"loadBalancer": {}}),
    ("PodDisruptionBudget", {"minAvailable": 1, "selector": {"matchLabels": LABELS}},
     {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
    ("PersistentVolumeClaim",
     {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, {"phase": "Pending"}),
    ("PersistentVolume", {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                          "hostPath": {"path": "/tmp/pv"}}, {"phase": "Pending"}),
    ("Pod", POD_SPEC, {"phase": "Pending", "qosClass": "BestEffort"}),
    ("Namespace", {}, {"phase": "Active"}),
    ("Node", {}, {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": ZERO_NODE_INFO}),
]


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


@pytest.mark.parametrize(("kind", "spec", "status"), CASES, ids=[c[0] for c in CASES])
async def test_create_returns_the_zero_status(core: ApiCore, kind: str, spec: dict[str, Any],
                                              status: dict[str, Any]) -> None:
    rt = core.registry.by_kind(kind)
    assert rt is not None
    body = {"metadata": {"name": f"zero-{kind.lower()}"}, "spec": spec}
    if kind == "Deployment":
        body["status"] = {"observedGeneration": 7}  # a client's status is dropped on create
    created = await core.create(rt, "default" if rt.namespaced else None, body)
    assert created.obj["status"] == status
    stored = core.get(rt, "default" if rt.namespaced else None, f"zero-{kind.lower()}")
    assert stored["status"] == status


async def test_every_kind_with_a_status_subresource_is_covered(core: ApiCore) -> None:
    with_status = {t.kind for t in core.registry.types if t.has_subresource("status")}
    assert with_status <= {c[0] for c in CASES}
