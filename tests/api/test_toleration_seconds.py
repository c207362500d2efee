"""The DefaultTolerationSeconds admission plugin: kube's cases (plugin/pkg/admission/
defaulttolerationseconds), which writes it sees, and its effect through the API core, the HTTP API
and `orchestra up`'s configuration (run_cluster, the flags' values or the timings profile's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from orchestra.api.policy.admission import Attributes
from orchestra.api.policy.tolerationseconds import DefaultTolerationSeconds
from orchestra.api.request.core import ApiCore
from orchestra.app import ClusterConfig, run_cluster
from orchestra.app.config import Cluster
from orchestra.client.http import HttpClient
from orchestra.client.local import LocalClient
from orchestra.store import Store

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def default_toleration(key: str, seconds: int = 300) -> Obj:
    return {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}


def attributes(obj: Obj, *, operation: str = "CREATE", kind: str = "Pod", group: str = "",
               subresource: str = "") -> Attributes:
    return Attributes(operation, kind, "default", "p", obj, None, None, lambda kind, ns, name: None,
                      subresource, group=group)


async def admitted(tolerations: list[Obj] | None, plugin: DefaultTolerationSeconds | None = None) -> Any:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    pod = {"metadata": {"name": "p"}, "spec": spec}
    await (plugin or DefaultTolerationSeconds()).admit(attributes(pod))
    return pod["spec"].get("tolerations")


FOO = {"key": "foo", "operator": "Equal", "value": "bar", "effect": "NoSchedule", "tolerationSeconds": 700}
MINE_NOT_READY = {**default_toleration(NOT_READY, 700)}
MINE_UNREACHABLE = {**default_toleration(UNREACHABLE, 700)}
UNREACHABLE_ANY_EFFECT = {"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 700}
NOT_READY_NO_SCHEDULE = {"key": NOT_READY, "operator": "Exists", "effect": "NoSchedule"}
WILDCARD = {"operator": "Exists", "tolerationSeconds": 700}
WILDCARD_NO_EXECUTE = {"operator": "Exists", "effect": "NoExecute"}
WILDCARD_NO_SCHEDULE = {"operator": "Exists", "effect": "NoSchedule"}
# an Equal toleration with a value the taint never has still counts: kube's test looks at key and effect
NOT_READY_EQUAL = {"key": NOT_READY, "operator": "Equal", "value": "x", "effect": "NoExecute"}
ALPHA_NOT_READY = default_toleration("node.alpha.kubernetes.io/notReady")

# (the pod's tolerations, what admission leaves) — kube's TestForgivenessAdmission and more
CASES = {
    "none": (None, [default_toleration(NOT_READY), default_toleration(UNREACHABLE)]),
    "empty-list": ([], [default_toleration(NOT_READY), default_toleration(UNREACHABLE)]),
    "other-key": ([FOO], [FOO, default_toleration(NOT_READY), default_toleration(UNREACHABLE)]),
    "old-alpha-key-counts-not": ([ALPHA_NOT_READY], [ALPHA_NOT_READY, default_toleration(NOT_READY),
                                                     default_toleration(UNREACHABLE)]),
    "own-not-ready": ([MINE_NOT_READY], [MINE_NOT_READY, default_toleration(UNREACHABLE)]),
    "own-unreachable": ([MINE_UNREACHABLE], [MINE_UNREACHABLE, default_toleration(NOT_READY)]),
    "own-both": ([MINE_NOT_READY, MINE_UNREACHABLE], [MINE_NOT_READY, MINE_UNREACHABLE]),
    "key-without-effect": ([UNREACHABLE_ANY_EFFECT], [UNREACHABLE_ANY_EFFECT, default_toleration(NOT_READY)]),
    "key-with-other-effect": ([NOT_READY_NO_SCHEDULE], [NOT_READY_NO_SCHEDULE, default_toleration(NOT_READY),
                                                        default_toleration(UNREACHABLE)]),
    "key-equal-operator": ([NOT_READY_EQUAL], [NOT_READY_EQUAL, default_toleration(UNREACHABLE)]),
    "empty-key-exists": ([WILDCARD], [WILDCARD]),
    "empty-key-no-execute": ([WILDCARD_NO_EXECUTE], [WILDCARD_NO_EXECUTE]),
    "empty-key-other-effect": ([WILDCARD_NO_SCHEDULE], [WILDCARD_NO_SCHEDULE, default_toleration(NOT_READY),
                                                        default_toleration(UNREACHABLE)]),
    "null-key-and-effect": ([{"key": None, "operator": "Exists", "effect": None}],
                            [{"key": None, "operator": "Exists", "effect": None}]),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
async def test_kube_cases(given: list[Obj] | None, expected: list[Obj]) -> None:
    assert await admitted(given) == expected


async def test_custom_seconds_per_taint() -> None:
    plugin = DefaultTolerationSeconds(not_ready_seconds=30, unreachable_seconds=45)
    assert await admitted(None, plugin) == [default_toleration(NOT_READY, 30),
                                            default_toleration(UNREACHABLE, 45)]
    assert await admitted([MINE_NOT_READY], plugin) == [MINE_NOT_READY, default_toleration(UNREACHABLE, 45)]


async def test_a_wrong_type_is_left_to_validation() -> None:
    assert await admitted("nope") == "nope"  # type: ignore[arg-type]


# which writes the plugin changes: pods themselves, on create and on update (kube's Handles: Create and
# Update), never a subresource, another kind (a template is not a pod) or a custom kind named Pod
WRITES = {
    "pod-create": ({}, True),
    "pod-update": ({"operation": "UPDATE"}, True),
    "pod-status-update": ({"operation": "UPDATE", "subresource": "status"}, False),
    "pod-ephemeralcontainers": ({"operation": "UPDATE", "subresource": "ephemeralcontainers"}, False),
    "replicaset": ({"kind": "ReplicaSet"}, False),
    "podtemplate": ({"kind": "PodTemplate"}, False),
    "custom-kind-named-pod": ({"group": "example.com"}, False),
}


@pytest.mark.parametrize(("how", "changed"), WRITES.values(), ids=WRITES.keys())
async def test_which_writes(how: Obj, changed: bool) -> None:
    obj: Obj = {"metadata": {"name": "p"}, "spec": {"template": {"spec": {}}}}
    await DefaultTolerationSeconds().admit(attributes(obj, **how))
    assert ("tolerations" in obj["spec"]) is changed


# --- through the API core -------------------------------------------------------------------------


def replicaset() -> Obj:
    return {"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


async def test_core_gives_created_pods_the_configured_seconds_and_templates_none() -> None:
    both = [default_toleration(NOT_READY, 30), default_toleration(UNREACHABLE, 30)]
    core = ApiCore(Store.open_memory(), admission=(DefaultTolerationSeconds(30, 30),))
    client = LocalClient(core)
    await client.create(client.kind("Namespace"), None, {"metadata": {"name": "default"}})
    pod = await client.create(client.kind("Pod"), "default", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert pod["spec"]["tolerations"] == both
    rs = await client.create(client.kind("ReplicaSet"), "default", replicaset())
    assert "tolerations" not in rs["spec"]["template"]["spec"]
    # an update keeps what the pod has (covered: nothing added); one that drops a default toleration
    # gets it back, so the update is only an addition as validation requires
    pod["metadata"]["labels"] = {"changed": "yes"}
    pod = await client.update(client.kind("Pod"), pod)
    assert pod["spec"]["tolerations"] == both
    pod["spec"]["tolerations"] = pod["spec"]["tolerations"][:1]
    pod = await client.update(client.kind("Pod"), pod)
    assert pod["spec"]["tolerations"] == both


async def test_a_core_without_the_plugin_adds_none() -> None:
    """Defaulting no longer adds them: they come from the plugin the core is given, as in kube."""
    core = ApiCore(Store.open_memory())
    client = LocalClient(core)
    await client.create(client.kind("Namespace"), None, {"metadata": {"name": "default"}})
    pod = await client.create(client.kind("Pod"), "default", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert "tolerations" not in pod["spec"]


# --- through `orchestra up`'s configuration and the HTTP API --------------------------------------


@asynccontextmanager
async def cluster(state: Path, **config: Any) -> AsyncIterator[Cluster]:
    cfg = ClusterConfig(state_dir=state, listen_port=0, store="memory", podman=False, network=False,
                        controllers=False, **config)
    async with trio.open_nursery() as nursery:
        running: Cluster = await nursery.start(run_cluster, cfg)
        yield running
        nursery.cancel_scope.cancel()


CONFIGS = {
    "kube-default": ({}, (300, 300)),
    "fast-timings": ({"timings": "fast"}, (30, 30)),
    "flags": ({"default_not_ready_toleration_seconds": 30, "default_unreachable_toleration_seconds": 60},
              (30, 60)),
    "fast-and-one-flag": ({"timings": "fast", "default_unreachable_toleration_seconds": 0}, (30, 0)),
}


@pytest.mark.parametrize(("config", "seconds"), CONFIGS.values(), ids=CONFIGS.keys())
async def test_pods_created_over_http_get_the_configured_seconds(tmp_path: Path, config: Obj,
                                                                 seconds: tuple[int, int]) -> None:
    with trio.fail_after(60):
        async with cluster(tmp_path, **config) as c, \
                HttpClient.from_kubeconfig(c.kubeconfig, field_manager="test") as client:
            pod = await client.create(client.kind("Pod"), "default", {
                "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
            expected = [default_toleration(NOT_READY, seconds[0]),
                        default_toleration(UNREACHABLE, seconds[1])]
            assert pod["spec"]["tolerations"] == expected
            stored = await client.get(client.kind("Pod"), "default", "p")
            assert stored["spec"]["tolerations"] == expected
