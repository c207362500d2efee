"""Environment resolution (table tests) and its use in a running pod."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.node.env import ConfigError, NodeFacts, Sources, expand, resolve_env
from orchestra.runtime.simulated import SimulatedRuntime

from .harness import open_env, waiting_reason

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"},
                 "annotations": {"note": "hi"}},
    "spec": {"nodeName": "n1", "serviceAccountName": "sa",
             "containers": [{"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                                         "requests": {"cpu": "250m", "memory": "128Mi"}}},
                            {"name": "bare"}]},
}
SOURCES = Sources(
    config_maps={"cm": {"metadata": {"namespace": "ns", "name": "cm"}, "data": {"color": "blue", "size": "L",
                                                                                  "bad-key!": "x"}}},
    secrets={"sec": {"metadata": {"namespace": "ns", "name": "sec"},
                     "data": {"password": base64.b64encode(b"s3cret").decode()}}},
)
FACTS = NodeFacts(node_name="n1", host_ip="192.0.2.2", pod_ip="10.88.0.9", allocatable_cpu="8",
                  allocatable_memory="32Gi")


def field(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def res(resource: str, divisor: str | None = None, container: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource}
    if divisor:
        ref["divisor"] = divisor
    if container:
        ref["containerName"] = container
    return {"valueFrom": {"resourceFieldRef": ref}}


CASES = [
    ("plain", {"value": "v"}, "v"),
    ("configmap", {"valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}}, "blue"),
    ("secret-decoded", {"valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}}, "s3cret"),
    (
        "optional-missing",
        {"valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        None,
    ),
    ("name", field("metadata.name"), "p"),
    ("namespace", field("metadata.namespace"), "ns"),
    ("uid", field("metadata.uid"), "u-1"),
    ("label", field("metadata.labels['app']"), "web"),
    ("annotation", field("metadata.annotations['note']"), "hi"),
    ("node", field("spec.nodeName"), "n1"),
    ("sa", field("spec.serviceAccountName"), "sa"),
    ("pod-ip", field("status.podIP"), "10.88.0.9"),
    ("host-ip", field("status.hostIP"), "192.0.2.2"),
    ("cpu-limit-millis", res("limits.cpu", "1m"), "500"),
    ("cpu-limit-cores-rounds-up", res("limits.cpu"), "1"),
    ("cpu-request", res("requests.cpu", "1m"), "250"),
    ("mem-limit-mi", res("limits.memory", "1Mi"), "256"),
    ("mem-request-bytes", res("requests.memory"), str(128 * 1024 * 1024)),
    ("unset-limit-is-allocatable", res("limits.memory", "1Gi", "bare"), "32"),
    ("expansion", {"value": "$(A)-$$(A)-$(UNDEFINED)"}, "a-$(A)-$(UNDEFINED)"),
]


@pytest.mark.parametrize(("entry", "want"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_env_value(entry: dict[str, Any], want: str | None) -> None:
    container = {**POD["spec"]["containers"][0], "env": [{"name": "A", "value": "a"}, {"name": "X", **entry}]}
    env = resolve_env(POD, container, SOURCES, FACTS)
    assert env.get("X") == want


def test_env_from_with_prefix_and_order() -> None:
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                                          {"secretRef": {"name": "sec"}}],
                 "env": [{"name": "CM_color", "value": "red"}]}
    env = resolve_env(POD, container, SOURCES, FACTS, extra={"SVC_HOST": "10.96.0.1", "CM_size": "S"})
    assert env["CM_color"] == "red"  # env overrides envFrom
    assert env["CM_size"] == "L"  # declared beats the service env
    assert env["password"] == "s3cret" and env["SVC_HOST"] == "10.96.0.1"
    assert "CM_bad-key!" not in env  # invalid names skipped, as the kubelet does


@pytest.mark.parametrize(("entry", "message"), [
    ({"valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}, 'configmap "nope" not found'),
    ({"valueFrom": {"secretKeyRef": {"name": "sec", "key": "nokey"}}},
     "couldn't find key nokey in Secret ns/sec"),
], ids=["missing-configmap", "missing-key"])
def test_env_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_env(POD, {"name": "c", "env": [{"name": "X", **entry}]}, SOURCES, FACTS)


def test_expand_edge_cases() -> None:
    assert expand("$(A", {"A": "1"}) == "$(A"
    assert expand("$A $(A)", {"A": "1"}) == "$A 1"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_env_reaches_container_and_config_errors_wait(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    def services(pod: dict[str, Any]) -> dict[str, str]:  # the hook the service-env engineer fills
        return {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}

    with trio.fail_after(60):
        async with open_env(tmp_path, extra_env=services) as env:
            await env.create_pod("e", [{"name": "c", "image": "busybox", "command": ["echo", "$(GREETING)"],
                                        "env": [{"name": "GREETING", "value": "hi"},
                                                {"name": "MISSING", "valueFrom": {"configMapKeyRef": {
                                                    "name": "later", "key": "k"}}}]}])
            pod = await env.wait_pod("e", lambda p: waiting_reason(p) == "CreateContainerConfigError")
            assert (
                'configmap "later" not found'
                in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            )  # type: ignore[index]
            await env.client.create(env.rt("ConfigMap"), "default",
                                    {"metadata": {"name": "later"}, "data": {"k": "v"}})
            await env.wait_pod("e", lambda p: (p or {}).get("status", {}).get("phase") == "Running")
            sim = env.runtime
            assert isinstance(sim, SimulatedRuntime)
            spec = next(c.spec for c in sim._containers.values() if c.name == "c")
            assert spec.env["MISSING"] == "v" and spec.env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
            assert spec.command == ("echo", "hi")


@pytest.mark.parametrize(
    ("limit", "ref", "want"),
    [("1e30", res("limits.memory"), str(2**63 - 1)), ("1e5000", res("limits.memory"), str(2**63 - 1)),
     ("1e20", res("limits.cpu", "1m"), str(2**63 - 1)), ("100Ei", res("limits.memory", "1Ki"), str(2**53))],
    ids=["memory-1e30", "memory-1e5000", "cpu-1e20-millis", "100Ei-capped-like-kube"],
)
def test_huge_resource_field_refs_saturate_at_int64(limit: str, ref: dict[str, Any], want: str) -> None:
    """kube accepts these limits; the kubelet's int64 result saturates here instead of overflowing."""
    what = ref["valueFrom"]["resourceFieldRef"]["resource"].split(".")[1]
    container = {"name": "c", "resources": {"limits": {what: limit}}, "env": [{"name": "X", **ref}]}
    pod = {**POD, "spec": {**POD["spec"], "containers": [container]}}
    assert resolve_env(pod, container, SOURCES, FACTS)["X"] == want
