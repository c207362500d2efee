"""PriorityClass (scheduling.k8s.io/v1) and the Priority admission plugin: the API core's behaviour,
then the real kubectl against a running cluster."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from orchestra.api.errors import Forbidden, Invalid
from orchestra.app.bootstrap import bootstrap
from tests.conftest import LiveCluster
from tests.controller.harness import Api, make_api

Obj = dict[str, Any]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def pod(name: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def pclass(name: str, value: int, **fields: Any) -> Obj:
    return {"metadata": {"name": name}, "value": value, **fields}


async def api_with_classes() -> Api:
    api = await make_api()
    await bootstrap(api.core)
    return api


async def test_bootstrap_creates_the_system_classes() -> None:
    api = await api_with_classes()
    node = api.get("PriorityClass", "system-node-critical", None)
    cluster = api.get("PriorityClass", "system-cluster-critical", None)
    assert node is not None and cluster is not None
    assert (node["value"], cluster["value"]) == (2000001000, 2000000000)
    assert node["preemptionPolicy"] == "PreemptLowerPriority" and not node.get("globalDefault")
    await bootstrap(api.core)  # a restart finds them there


async def test_pod_without_a_class_gets_priority_zero() -> None:
    api = await api_with_classes()
    spec = (await api.create("Pod", pod("p")))["spec"]
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert "priorityClassName" not in spec


async def test_pod_gets_priority_and_policy_from_its_class() -> None:
    api = await api_with_classes()
    await api.create("PriorityClass", pclass("batch", 1000, preemptionPolicy="Never"), None)
    spec = (await api.create("Pod", pod("p", priorityClassName="batch")))["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "Never")
    crit = (await api.create("Pod", pod("q", priorityClassName="system-node-critical")))["spec"]
    assert crit["priority"] == 2000001000
    # a pod update that leaves the computed fields out keeps them
    body = api.get("Pod", "p")
    assert body is not None
    del body["spec"]["priority"], body["spec"]["preemptionPolicy"]
    body["metadata"]["labels"] = {"x": "y"}
    updated = await api.client.update(api.rt("Pod"), body)
    assert (updated["spec"]["priority"], updated["spec"]["preemptionPolicy"]) == (1000, "Never")


async def test_unknown_class_and_contradicting_priority_are_forbidden() -> None:
    api = await api_with_classes()
    await api.create("PriorityClass", pclass("batch", 1000), None)
    with pytest.raises(Forbidden) as e:
        await api.create("Pod", pod("p", priorityClassName="nope"))
    assert e.value.message == 'pods "p" is forbidden: no PriorityClass with name nope was found'
    with pytest.raises(Forbidden) as e:
        await api.create("Pod", pod("p", priorityClassName="batch", priority=5))
    assert e.value.message == (
        'pods "p" is forbidden: the integer value of priority (5) must not be provided in pod '
        "spec; priority admission controller computed 1000 from the given PriorityClass name"
    )
    with pytest.raises(Forbidden) as e:
        await api.create("Pod", pod("p", priorityClassName="batch", preemptionPolicy="Never"))
    assert "the string value of PreemptionPolicy (Never) must not be provided in pod spec" in e.value.message
    assert api.get("Pod", "p") is None  # nothing stored
    ok = await api.create("Pod", pod("p", priorityClassName="batch", priority=1000))  # agreeing is fine
    assert ok["spec"]["priority"] == 1000


async def test_global_default_applies_to_pods_without_a_class_and_is_unique() -> None:
    api = await api_with_classes()
    await api.create("PriorityClass", pclass("normal", 100, globalDefault=True), None)
    spec = (await api.create("Pod", pod("p")))["spec"]
    assert (spec["priorityClassName"], spec["priority"]) == ("normal", 100)
    with pytest.raises(Forbidden) as e:
        await api.create("PriorityClass", pclass("other", 5, globalDefault=True), None)
    assert e.value.message == (
        'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass normal is '
        "already marked as default. Only one default can exist"
    )
    current = api.get("PriorityClass", "normal", None)
    assert current is not None
    current["description"] = "the default"
    await api.client.update(api.rt("PriorityClass"), current)  # the default itself may be updated


async def test_priority_class_validation() -> None:
    api = await api_with_classes()
    with pytest.raises(Invalid) as e:
        await api.create("PriorityClass", pclass("huge", 1_000_000_001), None)
    assert [c.message for c in e.value.causes] == [
        "Forbidden: maximum allowed value of a user defined priority is 1000000000"
    ]
    with pytest.raises(Invalid) as e:
        await api.create("PriorityClass", pclass("system-mine", 10), None)
    assert e.value.causes[0].field == "metadata.name"
    assert (
        "priority class names with 'system-' prefix are reserved for system use only"
        in e.value.causes[0].message
    )
    created = await api.create("PriorityClass", pclass("batch", 10), None)
    changed = {**created, "value": 11}
    with pytest.raises(Invalid) as e:
        await api.client.update(api.rt("PriorityClass"), changed)
    assert [(c.field, c.message) for c in e.value.causes] == [
        ("value", "Forbidden: may not be changed in an update.")
    ]
    changed = {**created, "preemptionPolicy": "Never"}
    with pytest.raises(Invalid) as e:
        await api.client.update(api.rt("PriorityClass"), changed)
    assert [(c.field, c.message) for c in e.value.causes] == [
        ("preemptionPolicy", 'Invalid value: "Never": field is immutable')
    ]


async def test_system_classes_cannot_be_deleted() -> None:
    api = await api_with_classes()
    with pytest.raises(Forbidden) as e:
        await api.client.delete(api.rt("PriorityClass"), None, "system-cluster-critical")
    assert e.value.message == ('priorityclasses.scheduling.k8s.io "system-cluster-critical" is forbidden: '
                               "this is a system priority class and cannot be deleted")
    await api.create("PriorityClass", pclass("batch", 10), None)
    await api.client.delete(api.rt("PriorityClass"), None, "batch")
    assert api.get("PriorityClass", "batch", None) is None


# --- kubectl ---------------------------------------------------------------------------------------


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True,
                              env=live_cluster.kubectl_env(), timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


@pytest.mark.kubectl
def test_kubectl_priority_classes(kubectl: Kubectl) -> None:
    out = kubectl("get", "priorityclasses").stdout.splitlines()
    assert out[0].split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["system-node-critical"][1:3] == ["2000001000", "false"]
    assert rows["system-cluster-critical"][-1] == "PreemptLowerPriority"
    assert "priorityclass.scheduling.k8s.io/kubectl-batch created" in kubectl(
        "create", "priorityclass", "kubectl-batch", "--value=500", "--preemption-policy=Never",
        "--description=batch jobs").stdout
    try:
        kubectl("create", "namespace", "pc-test")
        p = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "pc-test"},
            "spec": {
                "priorityClassName": "kubectl-batch",
                "containers": [
                    {"name": "c", "image": "localhost/busybox:latest", "command": ["sleep", "60"]}
                ],
            },
        }
        kubectl("apply", "-f", "-", input=json.dumps(p))
        described = kubectl("describe", "pod", "p", "-n", "pc-test").stdout
        assert "Priority:             500" in described
        assert "Priority Class Name:  kubectl-batch" in described
        p["metadata"]["name"], p["spec"]["priorityClassName"] = "q", "missing"
        err = kubectl("apply", "-f", "-", input=json.dumps(p), check=False)
        assert err.returncode != 0
        assert 'pods "q" is forbidden: no PriorityClass with name missing was found' in err.stderr
        err = kubectl("delete", "pc", "system-node-critical", check=False)
        assert "this is a system priority class and cannot be deleted" in err.stderr
    finally:
        kubectl("delete", "namespace", "pc-test", "--wait=false", check=False)
        kubectl("delete", "priorityclass", "kubectl-batch", check=False)
