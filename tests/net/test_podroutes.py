"""PodRoutes' decisions against a fake kernel (tests/net/podfake.py), Nodes fed through the real
in-memory API: host-gw on a shared link, VXLAN behind a router, nothing for a node of this host;
stale routes go when a Node goes or changes its address or networks; unpublished Nodes (simulated
ones) are never routed; malformed Nodes and kernel failures stay with their node."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.client.local import LocalClient
from orchestra.net.common import kind
from orchestra.net.podkernel import FdbEntry, Firewall, Neighbour, Route, RouteKernel, chain_name
from orchestra.net.podpeers import NETWORKS_ANNOTATION, VTEP_MAC_ANNOTATION, vtep_mac
from orchestra.net.podroutes import RESYNC, PodRoutes
from tests.net.podfake import FakeKernel

ME = "n1"
MY_NET = "10.244.1.0/24"


@pytest.fixture
def client(memory_client: LocalClient) -> LocalClient:
    return memory_client


async def add_node(client: LocalClient, name: str, address: str | None, networks: str | None = None,
                   mac: str | None = None) -> None:
    annotations = {k: v for k, v in ((NETWORKS_ANNOTATION, networks), (VTEP_MAC_ANNOTATION, mac)) if v}
    await client.create(kind("Node"), None, {"metadata": {"name": name, "annotations": annotations}})
    if address is not None:
        await set_address(client, name, address)


async def set_address(client: LocalClient, name: str, address: str) -> None:
    status = {"addresses": [{"type": "InternalIP", "address": address},
                            {"type": "Hostname", "address": name}]}
    await client.patch(kind("Node"), None, name, {"status": status}, subresource="status")


async def annotate(client: LocalClient, name: str, **values: str | None) -> None:
    names = {"networks": NETWORKS_ANNOTATION, "mac": VTEP_MAC_ANNOTATION}
    await client.patch(kind("Node"), None, name,
                       {"metadata": {"annotations": {names[k]: v for k, v in values.items()}}})


async def until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(30):
        while not condition():  # noqa: ASYNC110 (a fake kernel and a cache: poll them)
            await trio.sleep(0.1)


async def until_api(condition: Callable[[], Awaitable[bool]]) -> None:
    with trio.fail_after(30):
        while not await condition():  # noqa: ASYNC110 (polling the API, as clients do)
            await trio.sleep(0.1)


def hostgw(dst: str, via: str) -> Route:
    return Route(dst, via, "eth0")


def vxlan(dst: str) -> Route:
    return Route(dst, dst.split("/")[0], "orchvx0", onlink=True)


@pytest.fixture
async def started(client: LocalClient) -> AsyncIterator[tuple[PodRoutes, FakeKernel, LocalClient]]:
    """n1 (10.0.0.1, this host) with n2 on the shared link and n3 behind a router."""
    await add_node(client, ME, "10.0.0.1")
    await add_node(client, "n2", "10.0.0.2", "10.244.2.0/24", vtep_mac("10.0.0.2"))
    await add_node(client, "n3", "192.168.7.3", "10.244.3.0/24,10.245.3.0/24", vtep_mac("192.168.7.3"))
    kernel = FakeKernel()
    routes = PodRoutes(client, ME, own_networks=[MY_NET], kernel=kernel)  # type: ignore[arg-type]
    with trio.fail_after(600):  # virtual seconds in the tests on the autojump clock
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)
            yield routes, kernel, client
            nursery.cancel_scope.cancel()


async def test_host_gw_on_a_shared_link_and_vxlan_behind_a_router(
    started: tuple[PodRoutes, FakeKernel, LocalClient],
) -> None:
    routes, kernel, client = started
    assert kernel.routes_ == {hostgw("10.244.2.0/24", "10.0.0.2"), vxlan("10.244.3.0/24"),
                              Route("10.245.3.0/24", "10.244.3.0", "orchvx0", onlink=True)}
    assert kernel.vtep is not None
    assert (kernel.vtep.mac, kernel.vtep.address, kernel.vtep.vni, kernel.vtep.port, kernel.vtep.mtu) == (
        vtep_mac("10.0.0.1"), "10.244.1.0", 1, 8472, 1450)
    assert kernel.neighbours_ == {Neighbour("10.244.3.0", vtep_mac("192.168.7.3"))}
    assert kernel.fdb_ == {FdbEntry(vtep_mac("192.168.7.3"), "192.168.7.3")}  # the host-gw peer: none
    assert kernel.forwarding
    theirs = ["10.244.2.0/24", "10.244.3.0/24", "10.245.3.0/24"]
    assert kernel.firewall == {chain_name(ME): Firewall(
        chain_name(ME), nat=tuple((MY_NET, n) for n in theirs),
        forward=tuple(p for n in theirs for p in ((n, MY_NET), (MY_NET, n))))}
    me = await client.get(kind("Node"), None, ME)
    assert me["metadata"]["annotations"][NETWORKS_ANNOTATION] == MY_NET
    assert me["metadata"]["annotations"][VTEP_MAC_ANNOTATION] == vtep_mac("10.0.0.1")
    stats = routes.statistics()
    assert (stats["routes"], stats["nodes"], stats["errors"]) == (3, {"host-gw": 1, "vxlan": 1}, 0)


async def test_a_node_of_this_host_gets_no_route_but_no_nat(
    started: tuple[PodRoutes, FakeKernel, LocalClient],
) -> None:
    routes, kernel, client = started
    await add_node(client, "beside", "10.0.0.1", "10.244.9.0/24", vtep_mac("10.0.0.1"))
    await until(lambda: routes.statistics()["nodes"].get("local") == 1)
    assert not any(r.dst == "10.244.9.0/24" for r in kernel.routes_)
    assert (MY_NET, "10.244.9.0/24") in kernel.firewall[chain_name(ME)].nat


async def test_a_deleted_node_takes_its_routes_and_the_vxlan_device_along(
    started: tuple[PodRoutes, FakeKernel, LocalClient],
) -> None:
    routes, kernel, client = started
    await client.delete(kind("Node"), None, "n3")
    await until(lambda: kernel.routes_ == {hostgw("10.244.2.0/24", "10.0.0.2")})
    assert not kernel.neighbours_ and not kernel.fdb_  # no VXLAN peer left ...
    assert kernel.vtep is not None  # ... but n2 might reach this node over VXLAN: the device stays
    assert routes.statistics()["nodes"] == {"host-gw": 1}
    await client.delete(kind("Node"), None, "n2")
    await until(lambda: not kernel.routes_ and kernel.vtep is None)  # no node routed: no device
    assert kernel.firewall[chain_name(ME)] == Firewall(chain_name(ME))


async def test_an_address_change_moves_the_route_and_may_change_the_mode(
    started: tuple[PodRoutes, FakeKernel, LocalClient],
) -> None:
    _routes, kernel, client = started
    await set_address(client, "n2", "10.0.0.22")
    await until(lambda: hostgw("10.244.2.0/24", "10.0.0.22") in kernel.routes_)
    assert len([r for r in kernel.routes_ if r.dst == "10.244.2.0/24"]) == 1
    assert "delete_route" not in kernel.verbs()  # replaced in place: no moment without a route
    await set_address(client, "n3", "10.0.0.3")  # now on the shared link
    await until(lambda: hostgw("10.244.3.0/24", "10.0.0.3") in kernel.routes_)
    assert not kernel.fdb_ and not kernel.neighbours_


async def test_a_network_change_removes_the_old_route(
    started: tuple[PodRoutes, FakeKernel, LocalClient],
) -> None:
    _routes, kernel, client = started
    await annotate(client, "n3", networks="10.246.3.0/24")
    await until(lambda: {r.dst for r in kernel.routes_} == {"10.244.2.0/24", "10.246.3.0/24"})
    assert kernel.neighbours_ == {Neighbour("10.246.3.0", vtep_mac("192.168.7.3"))}  # its VTEP moved too


async def test_vxlan_when_this_nodes_address_is_not_on_the_shared_link(client: LocalClient) -> None:
    """The host of `orchestra up --nodes`: its InternalIP is on eth0, its workers on a bridge it
    holds; a worker sees the host behind its gateway (VXLAN), so the host must use VXLAN too."""
    await add_node(client, ME, "10.0.0.1")
    await add_node(client, "w1", "10.243.0.2", "10.244.2.0/24", vtep_mac("10.243.0.2"))
    kernel = FakeKernel(links={"10.0.0.0/24": "eth0", "10.243.0.0/24": "orchnodes"},
                        local={"10.0.0.1", "10.243.0.1"})
    routes = PodRoutes(client, ME, own_networks=[MY_NET], kernel=kernel)  # type: ignore[arg-type]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)
            assert kernel.routes_ == {vxlan("10.244.2.0/24")}
            assert kernel.fdb_ == {FdbEntry(vtep_mac("10.243.0.2"), "10.243.0.2")}
            assert routes.statistics()["nodes"] == {"vxlan": 1}
            nursery.cancel_scope.cancel()


async def test_a_vxlan_device_failure_holds_only_the_vxlan_peers(
    started: tuple[PodRoutes, FakeKernel, LocalClient], autojump_clock: trio.testing.MockClock,
) -> None:
    routes, kernel, client = started
    await client.delete(kind("Node"), None, "n3")
    await until(lambda: kernel.routes_ == {hostgw("10.244.2.0/24", "10.0.0.2")})
    kernel.vtep = None  # the device went (someone deleted it) ...
    kernel.fail["ensure_vtep"] = 2  # ... and cannot be made for a while
    await add_node(client, "n6", "192.168.7.6", "10.244.6.0/24", vtep_mac("192.168.7.6"))
    await add_node(client, "n7", "10.0.0.7", "10.244.7.0/24")
    await until(lambda: hostgw("10.244.7.0/24", "10.0.0.7") in kernel.routes_)
    assert "vxlan" in routes.statistics()["retrying"] and kernel.vtep is None
    await until(lambda: vxlan("10.244.6.0/24") in kernel.routes_)
    assert kernel.vtep is not None and routes.statistics()["retrying"] == []


async def test_unpublished_nodes_are_never_routed(client: LocalClient) -> None:
    await add_node(client, ME, "10.0.0.1")
    for i in range(3):  # what simulated nodes look like: addresses, a podCIDR, no annotation
        await add_node(client, f"sim-{i}", f"10.0.0.{10 + i}")
        await client.patch(kind("Node"), None, f"sim-{i}", {"spec": {"podCIDR": f"10.244.{10 + i}.0/24"}})
    kernel = FakeKernel()
    routes = PodRoutes(client, ME, own_networks=[MY_NET], kernel=kernel)  # type: ignore[arg-type]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)
            assert not kernel.routes_ and "path_to" not in kernel.verbs()
            assert routes.statistics()["skipped"] == [] and routes.statistics()["nodes"] == {}
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("change", "problem"), [
    pytest.param({"networks": "10.244.3.0/33"}, "10.244.3.0/33", id="bad-cidr"),
    pytest.param({"networks": "10.244.3.1/24"}, "host bits set", id="host-bits"),
    pytest.param({"networks": "fd00::/64"}, "fd00::/64", id="ipv6"),
    pytest.param({"networks": "10.244.0.0/16"}, "overlap 10.244.1.0/24", id="overlaps-mine"),
    pytest.param({"networks": "10.244.2.0/25"}, "overlap 10.244.2.0/24", id="overlaps-a-peer"),
    pytest.param({"mac": "not-a-mac"}, "not a MAC", id="bad-mac"),
    pytest.param({"mac": None}, "publishes no orchestra.io/vtep-mac", id="vxlan-without-mac"),
])
async def test_a_malformed_node_is_logged_once_and_skipped(
    started: tuple[PodRoutes, FakeKernel, LocalClient], caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock, change: dict[str, str | None], problem: str,
) -> None:
    routes, kernel, client = started
    caplog.set_level(logging.WARNING, "orchestra.net.podroutes")
    await annotate(client, "n3", **change)
    await until(lambda: routes.statistics()["skipped"] == ["n3"])
    await until(lambda: {r.dst for r in kernel.routes_} == {"10.244.2.0/24"})  # its routes went
    passes = routes.converges
    for i in range(3):  # more passes (a change elsewhere, a resync): no second message
        await annotate(client, "n2", mac=vtep_mac(f"10.0.0.{i + 50}"))
        await trio.sleep(RESYNC)
    assert routes.converges >= passes + 6
    said = [r.getMessage() for r in caplog.records if "n3" in r.getMessage()]
    assert len(said) == 1 and problem in said[0], said
    assert routes.statistics()["errors"] == 0
    await annotate(client, "n3", networks="10.244.3.0/24", mac=vtep_mac("192.168.7.3"))
    await until(lambda: vxlan("10.244.3.0/24") in kernel.routes_)
    assert routes.statistics()["skipped"] == []


async def test_a_node_without_internal_ip_is_skipped(
    started: tuple[PodRoutes, FakeKernel, LocalClient], caplog: pytest.LogCaptureFixture,
) -> None:
    routes, _kernel, client = started
    await add_node(client, "bare", None, "10.244.8.0/24")
    await until(lambda: routes.statistics()["skipped"] == ["bare"])
    assert any("has no InternalIP" in r.getMessage() for r in caplog.records)


async def test_a_kernel_failure_is_retried_with_backoff_for_that_node_only(
    started: tuple[PodRoutes, FakeKernel, LocalClient], caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, kernel, client = started
    kernel.fail["set_route 10.244.4.0/24"] = 3
    await add_node(client, "n4", "10.0.0.4", "10.244.4.0/24")
    await add_node(client, "n5", "10.0.0.5", "10.244.5.0/24")
    began = trio.current_time()
    await until(lambda: hostgw("10.244.5.0/24", "10.0.0.5") in kernel.routes_)
    assert "node/n4" in routes.statistics()["retrying"]
    await until(lambda: hostgw("10.244.4.0/24", "10.0.0.4") in kernel.routes_)
    assert trio.current_time() - began >= 1 + 2 + 4  # three failures: 1 s, 2 s, 4 s
    assert [v for v, a in kernel.calls if v == "set_route" and a == "10.244.4.0/24"] == ["set_route"] * 4
    stats = routes.statistics()
    assert stats["errors"] == 3 and stats["retrying"] == [] and stats["nodes"]["host-gw"] == 3
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed) == 3 and "node n4" in failed[0] and "ip set_route 10.244.4.0/24" in failed[0]


async def test_a_route_of_the_host_is_never_taken_over(client: LocalClient) -> None:
    await add_node(client, ME, "10.0.0.1")
    await add_node(client, "n2", "10.0.0.2", "10.88.0.0/16")
    kernel = FakeKernel(host_routes={"10.88.0.0/16"})  # e.g. this host's own Podman bridge
    routes = PodRoutes(client, ME, own_networks=[MY_NET], kernel=kernel)  # type: ignore[arg-type]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)
            assert not kernel.routes_ and routes.statistics()["retrying"] == ["node/n2"]
            assert "File exists" in routes.statistics()["last_error"]
            nursery.cancel_scope.cancel()


async def test_a_resync_restores_what_was_removed_behind_its_back(
    started: tuple[PodRoutes, FakeKernel, LocalClient], autojump_clock: trio.testing.MockClock,
) -> None:
    routes, kernel, _client = started
    wanted = set(kernel.routes_)
    kernel.routes_.clear()
    kernel.firewall.clear()
    passes = routes.converges
    await trio.sleep(RESYNC + 1)
    assert kernel.routes_ == wanted and chain_name(ME) in kernel.firewall
    assert routes.converges == passes + 1


async def test_heartbeats_do_not_wake_it(
    started: tuple[PodRoutes, FakeKernel, LocalClient], autojump_clock: trio.testing.MockClock,
) -> None:
    routes, kernel, client = started
    passes, calls = routes.converges, len(kernel.calls)
    for i in range(5):
        cond = {"type": "Ready", "status": "True", "lastHeartbeatTime": f"2024-01-01T00:00:0{i}Z"}
        await client.patch(kind("Node"), None, "n2", {"status": {"conditions": [cond]}}, subresource="status")
        await trio.sleep(1)
    assert (routes.converges, len(kernel.calls)) == (passes, calls)


async def test_publish_waits_for_its_node_and_repairs_the_annotation(client: LocalClient) -> None:
    kernel = FakeKernel()
    routes = PodRoutes(client, ME, own_networks=[MY_NET, "10.88.0.0/16"], kernel=kernel)  # type: ignore[arg-type]

    async def annotations() -> dict[str, Any]:
        return dict((await client.get(kind("Node"), None, ME))["metadata"].get("annotations") or {})

    async def published(*keys: str) -> bool:
        have = await annotations()
        return all(k in have for k in keys)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)  # no Node yet: nothing to publish on
            await add_node(client, ME, None)
            await until_api(lambda: published(NETWORKS_ANNOTATION))
            # no address yet: no VTEP MAC
            assert await annotations() == {NETWORKS_ANNOTATION: f"{MY_NET},10.88.0.0/16"}
            await set_address(client, ME, "10.0.0.1")
            await until_api(lambda: published(VTEP_MAC_ANNOTATION))
            await annotate(client, ME, networks=None)  # someone removed it
            assert not await published(NETWORKS_ANNOTATION)
            await until_api(lambda: published(NETWORKS_ANNOTATION))
            assert (await annotations())[VTEP_MAC_ANNOTATION] == vtep_mac("10.0.0.1")
            nursery.cancel_scope.cancel()


async def test_remove_takes_out_everything_and_a_stop_leaves_it(client: LocalClient) -> None:
    await add_node(client, ME, "10.0.0.1")
    await add_node(client, "n2", "10.0.0.2", "10.244.2.0/24")
    await add_node(client, "n3", "192.168.7.3", "10.244.3.0/24", vtep_mac("192.168.7.3"))
    kernel = FakeKernel()
    routes = PodRoutes(client, ME, own_networks=[MY_NET], kernel=kernel)  # type: ignore[arg-type]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)
            nursery.cancel_scope.cancel()
        assert len(kernel.routes_) == 2 and kernel.vtep is not None and kernel.firewall  # a stop: kept
        async with trio.open_nursery() as nursery:  # the next start adopts them: nothing to add
            before = len([v for v, _ in kernel.calls if v == "set_route"])
            await nursery.start(routes.run)
            assert len([v for v, _ in kernel.calls if v == "set_route"]) == before
            nursery.cancel_scope.cancel()
        await routes.remove()
    assert not kernel.routes_ and kernel.vtep is None and not kernel.fdb_ and not kernel.firewall
    assert routes.statistics()["routes"] == 0


class Broken(Exception):
    pass


async def test_run_again_after_it_raised(client: LocalClient) -> None:
    await add_node(client, ME, "10.0.0.1")
    await add_node(client, "n2", "10.0.0.2", "10.244.2.0/24")
    kernel = FakeKernel()
    routes = PodRoutes(client, ME, own_networks=[MY_NET], kernel=kernel)  # type: ignore[arg-type]
    kernel.crash = Broken("a bug, not a kernel refusal")
    with trio.fail_after(10):
        with pytest.raises(BaseExceptionGroup) as raised:
            async with trio.open_nursery() as nursery:
                await nursery.start(routes.run)
        assert raised.group_contains(Broken, depth=None)
        kernel.crash = None
        async with trio.open_nursery() as nursery:
            await nursery.start(routes.run)
            assert kernel.routes_ == {hostgw("10.244.2.0/24", "10.0.0.2")}
            nursery.cancel_scope.cancel()


def test_the_real_kernel_runs_in_the_namespace_it_is_given() -> None:
    kernel = RouteKernel(netns="orpa-x")
    assert kernel._iproute(kernel.ip, "-j", "route", "show")[1:3] == ["-n", "orpa-x"]
    assert kernel._inside("iptables", "-C")[:4] == [kernel.ip, "netns", "exec", "orpa-x"]
    assert RouteKernel()._inside("iptables", "-C") == ["iptables", "-C"]
