"""Scheduler filters: each plugin's verdict and kube's exact FailedScheduling message (tables)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from orchestra.reconcilers.scheduler.filters import term_matches
from tests.controller.harness import make_api, wait_for
from tests.reconcilers.test_scheduler_helpers import (
    add_nodes,
    add_priority_classes,
    events,
    node,
    node_of,
    running,
    spod,
    wait_bound,
    wait_unschedulable,
)

Obj = dict[str, Any]
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def _anti(labels: dict[str, str], key: str = "kubernetes.io/hostname") -> Obj:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}


def _node_affinity(*terms: Obj) -> Obj:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


# (nodes, pods already bound, the pending pod, expected message)
CASES: dict[str, tuple[list[Obj], list[Obj], Obj, str]] = {
    "insufficient-cpu-unresolvable": (
        [node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="1")],
        [],
        spod("p", cpu="2"),
        f"0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}.",
    ),
    "insufficient-cpu-no-victims": (
        [node("a", cpu="2"), node("b", cpu="2"), node("c", cpu="2")],
        [spod(f"x{n}", cpu="1500m", node_name=n) for n in "abc"],
        spod("p", cpu="1"),
        f"0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 {NO_VICTIMS}.",
    ),
    "cpu-and-selector-aggregated": (
        [node("a", cpu="1", labels={"disk": "ssd"}), node("b"), node("c")],
        [],
        spod("p", cpu="2", nodeSelector={"disk": "ssd"}),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. "
        f"preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}.",
    ),
    "cpu-and-memory": (
        [node("a", cpu="1", memory="1Gi")],
        [],
        spod("p", cpu="2", memory="2Gi"),
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient "
        f"memory. preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.",
    ),
    "too-many-pods": (
        [node("a", pods="1")],
        [spod("x", node_name="a")],
        spod("p"),
        f"0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.",
    ),
    "untolerated-taint": (
        [
            node("a", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            node("b", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoExecute"}]),
        ],
        [],
        spod("p", tolerations=[{"key": "other", "operator": "Exists"}]),
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
        "1 node(s) had untolerated taint {node.kubernetes.io/network-unavailable: }. "
        f"preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
    ),
    "unschedulable-node": (
        [node("a", unschedulable=True), node("b", unschedulable=True)],
        [],
        spod("p"),
        "0/2 nodes are available: 2 node(s) were unschedulable. "
        f"preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
    ),
    "host-port-conflict": (
        [node("a")],
        [spod("x", node_name="a", host_port=8080)],
        spod("p", host_port=8080),
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. "
        f"preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.",
    ),
    "match-fields-and-gt": (
        [node("a", labels={"gen": "3"}), node("b", labels={"gen": "5"}), node("c", labels={"gen": "9"})],
        [],
        spod(
            "p",
            affinity=_node_affinity(
                {
                    "matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}],
                    "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["b"]}],
                }
            ),
            cpu="5",
        ),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. "
        f"preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}.",
    ),
    "pod-affinity": (
        [node("a"), node("b")],
        [spod("x", labels={"app": "web"}, node_name="a")],
        spod(
            "p",
            labels={"app": "api"},
            affinity={
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"app": "db"}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
        ),
        "0/2 nodes are available: 2 node(s) didn't match pod affinity "
        f"rules. preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
    ),
    "pod-anti-affinity": (
        [node("a")],
        [spod("x", labels={"app": "web"}, node_name="a")],
        spod("p", labels={"app": "web"}, affinity=_anti({"app": "web"})),
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules. "
        f"preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.",
    ),
    "existing-anti-affinity": (
        [node("a")],
        [spod("x", labels={"app": "db"}, node_name="a", affinity=_anti({"app": "web"}))],
        spod("p", labels={"app": "web"}),
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules. "
        f"preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.",
    ),
    "topology-spread": (
        [node("a", labels={"zone": "z1"}), node("b")],
        [spod("x", labels={"app": "web"}, node_name="a")],
        spod(
            "p",
            labels={"app": "web"},
            topologySpreadConstraints=[
                {
                    "maxSkew": 1,
                    "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "minDomains": 2,
                    "labelSelector": {"matchLabels": {"app": "web"}},
                }
            ],
        ),
        "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
        "1 node(s) didn't match pod topology spread constraints (missing required label). "
        f"preemption: 0/2 nodes are available: 1 {NO_VICTIMS}, 1 {NOT_HELPFUL}.",
    ),
    "preemption-policy-never": (
        [node("a", cpu="1")],
        [spod("x", cpu="1", node_name="a")],
        spod("p", cpu="1", priorityClassName="p10-never"),
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: not eligible due to preemptionPolicy=Never.",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_filter_failure_message(case: str, autojump_clock: trio.testing.MockClock) -> None:
    nodes, bound, pending, message = CASES[case]
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, *nodes)
        await add_priority_classes(api, p10_never=10)
        for p in bound:
            await api.create("Pod", p)
        async with running(api):
            await api.create("Pod", pending)
            cond = await wait_unschedulable(api, "p")
            assert cond["reason"] == "Unschedulable"
            assert cond["message"] == message
            await wait_for(api, lambda: bool(events(api, "FailedScheduling", "p")))
            (event,) = events(api, "FailedScheduling", "p")
            assert event["type"] == "Warning"
            assert event["message"] == message
            assert event["source"]["component"] == "default-scheduler"
            assert node_of(api, "p") is None


# (nodes, the pod, where it must go)
FITS: dict[str, tuple[list[Obj], Obj, str]] = {
    "tolerated-taint": (
        [
            node("a", unschedulable=True),
            node("b", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        ],
        spod(
            "p",
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        ),
        "b",
    ),
    "tolerated-unschedulable": (
        [node("a", unschedulable=True)],
        spod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]),
        "a",
    ),
    "prefer-no-schedule-is-not-a-filter": (
        [node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}])],
        spod("p"),
        "a",
    ),
    "node-selector": (
        [node("a"), node("b", labels={"disk": "ssd"}), node("c")],
        spod("p", nodeSelector={"disk": "ssd"}),
        "b",
    ),
    "not-in-and-lt": (
        [node("a", labels={"gen": "3", "tier": "x"}), node("b", labels={"gen": "1"})],
        spod(
            "p",
            affinity=_node_affinity(
                {
                    "matchExpressions": [
                        {"key": "tier", "operator": "NotIn", "values": ["x"]},
                        {"key": "gen", "operator": "Lt", "values": ["2"]},
                    ]
                }
            ),
        ),
        "b",
    ),
    "affinity-first-pod-matches-itself": (
        [node("a")],
        spod(
            "p",
            labels={"app": "db"},
            affinity={
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"app": "db"}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
        ),
        "a",
    ),
    "other-host-port": (
        [node("a")],
        spod("p", host_port=9090),
        "a",
    ),
}


@pytest.mark.parametrize("case", list(FITS), ids=list(FITS))
async def test_filter_pass(case: str, autojump_clock: trio.testing.MockClock) -> None:
    nodes, pending, want = FITS[case]
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, *nodes)
        if case == "other-host-port":
            await api.create("Pod", spod("x", node_name="a", host_port=8080))
        async with running(api):
            await api.create("Pod", pending)
            await wait_bound(api, "p")
            assert node_of(api, "p") == want


@pytest.mark.parametrize(("op", "values", "labels", "want"), [
    ("In", ["a", "b"], {"k": "a"}, True),
    ("In", ["a"], {}, False),
    ("NotIn", ["a"], {"k": "b"}, True),
    ("NotIn", ["a"], {}, True),
    ("NotIn", ["a"], {"k": "a"}, False),
    ("Exists", [], {"k": ""}, True),
    ("Exists", [], {}, False),
    ("DoesNotExist", [], {}, True),
    ("DoesNotExist", [], {"k": "x"}, False),
    ("Gt", ["5"], {"k": "6"}, True),
    ("Gt", ["5"], {"k": "5"}, False),
    ("Gt", ["5"], {"k": "x"}, False),
    ("Lt", ["5"], {"k": "4"}, True),
    ("Lt", ["5"], {}, False),
], ids=lambda v: str(v))
def test_node_selector_requirement(op: str, values: list[str], labels: dict[str, str], want: bool) -> None:
    term = {"matchExpressions": [{"key": "k", "operator": op, "values": values}]}
    assert term_matches(term, labels, "n") is want


def test_empty_node_selector_term_matches_nothing() -> None:
    assert term_matches({}, {"k": "v"}, "n") is False
    assert term_matches(
        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["m"]}]}, {}, "n"
    )
