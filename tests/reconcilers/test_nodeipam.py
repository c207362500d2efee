"""The node IPAM controller (reconcilers/nodeipam.py): the CIDR set's tables, a /24 per Node, released on
delete, never shared, and rebuilt from the Nodes after a restart."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from orchestra.reconcilers.nodeipam import CidrSet, CidrSetError, CidrSetFull, NodeIpamController
from tests.controller.harness import Api, make_api, wait_for


@pytest.mark.parametrize(
    ("cluster", "mask", "steps", "expected"),
    [
        ("10.244.0.0/16", 24, ["+", "+", "+"], ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]),
        ("10.244.0.0/16", 24, ["occupy 10.244.0.0/24", "+"], ["10.244.1.0/24"]),
        # a released CIDR is given again only after the others (kube's nextCandidate)
        (
            "10.244.0.0/16",
            24,
            ["+", "+", "release 10.244.0.0/24", "+"],
            ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"],
        ),
        (
            "10.0.0.0/23",
            24,
            ["+", "+", "release 10.0.0.0/24", "+"],
            ["10.0.0.0/24", "10.0.1.0/24", "10.0.0.0/24"],
        ),
        ("10.0.0.0/23", 24, ["+", "+", "+"], ["10.0.0.0/24", "10.0.1.0/24", "full"]),
        (
            "10.0.0.0/22",
            24,
            ["occupy 10.0.1.0/24", "occupy 10.0.2.0/24", "+", "+", "+"],
            ["10.0.0.0/24", "10.0.3.0/24", "full"],
        ),
        ("10.244.0.0/16", 25, ["+", "+"], ["10.244.0.0/25", "10.244.0.128/25"]),
    ],
    ids=["in-order", "skips-occupied", "released-last", "wraps-to-released", "full", "fills-gaps", "mask-25"],
)
def test_cidr_set(cluster: str, mask: int, steps: list[str], expected: list[str]) -> None:
    cidrs = CidrSet(cluster, mask)
    got = []
    for step in steps:
        if step == "+":
            try:
                got.append(cidrs.allocate())
            except CidrSetFull:
                got.append("full")
        elif step.startswith("occupy "):
            assert cidrs.occupy(step.split()[1])
        else:
            cidrs.release(step.split()[1])
    assert got == expected


@pytest.mark.parametrize(
    "cidr",
    ["10.245.0.0/24", "10.244.0.0/25", "10.244.0.0/16", "nonsense"],
    ids=["outside", "other-mask", "whole-range", "malformed"],
)
def test_occupy_refuses_what_is_not_a_node_subnet(cidr: str) -> None:
    cidrs = CidrSet()
    assert not cidrs.occupy(cidr)
    assert cidrs.taken() == []


@pytest.mark.parametrize(
    ("cluster", "mask", "message"),
    [
        ("10.244.0.1/16", 24, "invalid cluster CIDR '10.244.0.1/16'"),
        ("bogus", 24, "invalid cluster CIDR 'bogus'"),
        ("10.244.0.0/16", 8, "node CIDR mask /8 must be between the cluster CIDR's /16 and /30"),
    ],
    ids=["host-bits", "malformed", "mask-too-wide"],
)
def test_bad_cluster_cidr(cluster: str, mask: int, message: str) -> None:
    with pytest.raises(CidrSetError, match=message.replace("(", r"\(")):
        CidrSet(cluster, mask)


def _cidrs(api: Api) -> dict[str, tuple[str, list[str]]]:
    specs = {n["metadata"]["name"]: n.get("spec") or {} for n in api.list("Node")}
    return {name: (spec.get("podCIDR", ""), spec.get("podCIDRs", [])) for name, spec in specs.items()}


async def test_each_node_gets_its_own_cidr_released_on_delete(autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(NodeIpamController(api.client).run)
            for name in ("a", "b"):
                await api.create("Node", {"metadata": {"name": name}}, None)
            await wait_for(api, lambda: all(c for c, _ in _cidrs(api).values()))
            assert _cidrs(api) == {
                "a": ("10.244.0.0/24", ["10.244.0.0/24"]),
                "b": ("10.244.1.0/24", ["10.244.1.0/24"]),
            }
            await api.client.delete(api.rt("Node"), None, "a")
            await trio.sleep(1)
            for name in ("c", "d"):
                await api.create("Node", {"metadata": {"name": name}}, None)
            await wait_for(api, lambda: len(_cidrs(api)) == 3 and all(c for c, _ in _cidrs(api).values()))
            # c takes the next one; d the released one (the only one left before wrapping further)
            assert _cidrs(api)["c"][0] == "10.244.2.0/24"
            assert len({c for c, _ in _cidrs(api).values()}) == 3
            nursery.cancel_scope.cancel()


async def test_allocations_survive_a_restart(autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api()
    # Nodes allocated by an earlier run (and one with a CIDR outside the range, left alone)
    await api.create(
        "Node",
        {"metadata": {"name": "old-1"}, "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}},
        None,
    )
    await api.create(
        "Node",
        {"metadata": {"name": "old-2"}, "spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}},
        None,
    )
    await api.create("Node", {"metadata": {"name": "outside"}, "spec": {"podCIDR": "192.168.7.0/24"}}, None)
    await api.create("Node", {"metadata": {"name": "new"}}, None)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(NodeIpamController(api.client).run)
            await wait_for(api, lambda: _cidrs(api)["new"][0] != "")
            assert _cidrs(api) == {
                "old-1": ("10.244.0.0/24", ["10.244.0.0/24"]),
                "old-2": ("10.244.2.0/24", ["10.244.2.0/24"]),
                "outside": ("192.168.7.0/24", []),
                "new": ("10.244.1.0/24", ["10.244.1.0/24"]),
            }
            nursery.cancel_scope.cancel()


async def test_a_full_range_waits_with_an_event(autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(NodeIpamController(api.client, cluster_cidr="10.9.0.0/24").run)
            await api.create("Node", {"metadata": {"name": "a"}}, None)
            await wait_for(api, lambda: _cidrs(api)["a"][0] != "")
            await api.create("Node", {"metadata": {"name": "b"}}, None)
            await wait_for(api, lambda: any(e.get("reason") == "CIDRNotAvailable" for e in api.list("Event")))
            assert _cidrs(api)["b"][0] == ""
            await api.client.delete(api.rt("Node"), None, "a")
            await wait_for(api, lambda: _cidrs(api)["b"][0] == "10.9.0.0/24")
            nursery.cancel_scope.cancel()
