"""Node lifecycle: Lease heartbeats -> Ready Unknown after the grace period -> taints -> NoExecute
eviction after tolerationSeconds, all asserted against virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from orchestra.objects import min_toleration_seconds, ready_condition
from orchestra.reconcilers.node_lifecycle import (
    FAST_TIMINGS,
    LEASE_NAMESPACE,
    NOT_READY,
    UNREACHABLE,
    NodeLifecycleController,
)
from tests.controller.harness import Api, make_api, pod, wait_for

GRACE = FAST_TIMINGS.grace_period


class Kubelet:
    """Renews the node's Lease every 2 s while `alive` (what a node agent does)."""

    def __init__(self, api: Api, node: str) -> None:
        self.api, self.node, self.alive, self.last_renew = api, node, True, 0.0
        self._n = 0

    async def register(self, *, ready: str = "True") -> None:
        await self.api.create(
            "Node",
            {
                "metadata": {"name": self.node},
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": ready,
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": "2025-01-01T00:00:00Z",
                            "lastTransitionTime": "2025-01-01T00:00:00Z",
                        },
                        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                    ]
                },
            },
            None,
        )
        await self.api.create(
            "Lease",
            {
                "metadata": {"name": self.node},
                "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": self._stamp()},
            },
            LEASE_NAMESPACE,
        )
        self.last_renew = trio.current_time()

    def _stamp(self) -> str:
        self._n += 1
        return f"2025-01-01T00:{self._n // 60 % 60:02d}:{self._n % 60:02d}.000000Z"

    async def run(self) -> None:
        rt = self.api.rt("Lease")
        while True:
            await trio.sleep(2)
            if not self.alive:
                continue
            lease = self.api.get("Lease", self.node, LEASE_NAMESPACE)
            assert lease is not None
            lease["spec"]["renewTime"] = self._stamp()
            await self.api.client.update(rt, lease)
            self.last_renew = trio.current_time()


def _ready(api: Api, node: str) -> str | None:
    obj = api.get("Node", node, None)
    return (ready_condition(obj) or {}).get("status") if obj else None


def _taints(api: Api, node: str) -> set[tuple[str, str]]:
    obj = api.get("Node", node, None)
    return {(t["key"], t["effect"]) for t in (obj or {}).get("spec", {}).get("taints") or []}


def _terminating(api: Api, name: str) -> bool:
    obj = api.get("Pod", name)
    return obj is None or bool(obj["metadata"].get("deletionTimestamp"))


async def test_node_failure_unknown_taints_eviction_and_recovery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(2000):
        api = await make_api(LEASE_NAMESPACE)
        kubelet, healthy = Kubelet(api, "n1"), Kubelet(api, "n2")
        await kubelet.register()
        await healthy.register()
        await api.create("Pod", pod("default-tol", node="n1"))  # admission: 300 s for unreachable
        await api.create("Pod", pod("short", node="n1", tolerations=[
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]))
        await api.create("Pod", pod("forever", node="n1", tolerations=[
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]))
        await api.create("Pod", pod("elsewhere", node="n2"))
        ctl = NodeLifecycleController(api.client, timings=FAST_TIMINGS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kubelet.run)
            nursery.start_soon(healthy.run)
            await nursery.start(ctl.run)
            await trio.sleep(30)
            assert _ready(api, "n1") == "True" and _taints(api, "n1") == set()

            kubelet.alive = False
            await trio.testing.wait_all_tasks_blocked()  # a renewal in flight completes
            stopped = kubelet.last_renew
            unknown_at = await wait_for(api, lambda: _ready(api, "n1") == "Unknown")
            assert unknown_at == pytest.approx(stopped + GRACE)
            node = api.get("Node", "n1", None)
            assert node is not None
            ready = ready_condition(node)
            assert ready is not None
            assert (ready["reason"], ready["message"]) == (
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            )
            assert {c["type"]: c["status"] for c in node["status"]["conditions"]}[
                "MemoryPressure"
            ] == "Unknown"
            tainted_at = await wait_for(
                api, lambda: _taints(api, "n1") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
            )
            assert tainted_at == pytest.approx(unknown_at)
            assert all("timeAdded" in t for t in node_taints(api, "n1") if t["effect"] == "NoExecute")
            reasons = {e["reason"] for e in api.list("Event", "default")}
            assert "NodeNotReady" in reasons

            short_at = await wait_for(api, lambda: _terminating(api, "short"))
            assert short_at == pytest.approx(tainted_at + 60)
            default_at = await wait_for(api, lambda: _terminating(api, "default-tol"))
            assert default_at == pytest.approx(tainted_at + 300)
            evicted = api.get("Pod", "default-tol")
            assert evicted is not None
            assert any(c["type"] == "DisruptionTarget" and c["reason"] == "DeletionByTaintManager"
                       for c in evicted["status"]["conditions"])
            assert "TaintManagerEviction" in {e["reason"] for e in api.list("Event", "default")}
            await trio.sleep(600)
            assert not _terminating(api, "forever")
            assert not _terminating(api, "elsewhere") and _ready(api, "n2") == "True"

            kubelet.alive = True
            resumed = trio.current_time()
            back_at = await wait_for(api, lambda: _ready(api, "n1") == "True" and not _taints(api, "n1"))
            assert back_at - resumed <= 2.0  # at the first renewal
            ready = ready_condition(api.get("Node", "n1", None) or {})
            assert ready is not None and ready["reason"] == "KubeletReady"
            nursery.cancel_scope.cancel()


def node_taints(api: Api, name: str) -> list[dict[str, Any]]:
    return (api.get("Node", name, None) or {}).get("spec", {}).get("taints") or []


async def test_ready_false_gets_not_ready_taints(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        api = await make_api(LEASE_NAMESPACE)
        kubelet = Kubelet(api, "n1")
        await kubelet.register(ready="False")
        await api.create("Pod", pod("p", node="n1"))
        ctl = NodeLifecycleController(api.client, timings=FAST_TIMINGS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kubelet.run)
            start = trio.current_time()
            await nursery.start(ctl.run)
            at = await wait_for(
                api, lambda: _taints(api, "n1") == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
            )
            assert at == start
            evicted_at = await wait_for(api, lambda: _terminating(api, "p"))
            assert evicted_at == pytest.approx(start + 300)  # the default not-ready toleration
            nursery.cancel_scope.cancel()


# (pod tolerations, eviction offset after the taint appears; None = never)
TAINT = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
EVICTION_CASES = [
    ([], 0.0),
    ([{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}], None),
    ([{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoExecute"}], 0.0),
    ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 45}], 45.0),
    ([{"operator": "Exists"}], None),
    ([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}], 0.0),
    ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20},
      {"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 90}], 20.0),
]


@pytest.mark.parametrize(("tolerations", "offset"), EVICTION_CASES,
                         ids=["none", "equal", "other-value", "seconds", "wildcard", "wrong-effect",
                              "shortest-wins"])
async def test_taint_manager(autojump_clock: trio.testing.MockClock, tolerations: list[dict[str, Any]],
                             offset: float | None) -> None:
    with trio.fail_after(600):
        api = await make_api(LEASE_NAMESPACE)
        kubelet = Kubelet(api, "n1")
        await kubelet.register()
        await api.create("Pod", pod("p", node="n1", tolerations=tolerations))
        ctl = NodeLifecycleController(api.client, timings=FAST_TIMINGS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kubelet.run)
            await nursery.start(ctl.run)
            await trio.sleep(5)
            node = api.get("Node", "n1", None)
            assert node is not None
            node.setdefault("spec", {})["taints"] = [TAINT]
            await api.client.update(api.rt("Node"), node)
            tainted = trio.current_time()
            if offset is None:
                await trio.sleep(400)
                assert not _terminating(api, "p")
            else:
                at = await wait_for(api, lambda: _terminating(api, "p"), limit=400)
                assert at == pytest.approx(tainted + offset)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"),
    [
        ([], [TAINT], None),
        ([{"operator": "Exists", "tolerationSeconds": -5}], [TAINT], 0.0),
        ([{"operator": "Exists"}], [TAINT, {"key": "b", "effect": "NoExecute"}], float("inf")),
        ([{"key": "dedicated", "operator": "Exists"}], [TAINT, {"key": "b", "effect": "NoExecute"}], None),
    ],
    ids=["untolerated", "negative-is-zero", "all-forever", "one-untolerated"],
)
def test_min_toleration_seconds(
    tolerations: list[dict[str, Any]], taints: list[dict[str, Any]], expected: float | None
) -> None:
    assert min_toleration_seconds(tolerations, taints) == expected
