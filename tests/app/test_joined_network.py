"""A joined node's network (app/network.py) beside another one: a ClusterIP port another socket holds
stops it with a message naming --no-network, and its proxy serves LoadBalancer Services without writing
their status (the server's proxy does). ClusterIPs 10.96.a.b are bound as 127.96.a.b here (all of 127/8
is loopback), so no root and no route are needed."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from orchestra.app.network import _check_cluster_ips
from orchestra.client.local import LocalClient
from orchestra.net.common import kind
from orchestra.net.proxy import ServiceProxy
from orchestra.net.routes import NetworkSetupError
from tests.net.test_proxy import to_loopback


@pytest.fixture
def client(memory_client: LocalClient) -> LocalClient:
    return memory_client


async def test_a_cluster_ip_port_another_socket_holds_stops_the_node(client: LocalClient) -> None:
    await client.create(kind("Service"), "default", {"metadata": {"name": "web"}, "spec": {
        "clusterIP": "10.96.200.7", "ports": [{"port": 18080}]}})
    proxy = ServiceProxy(client, host_addresses=[], bind=to_loopback, nodeport_host="127.0.0.1",
                         load_balancer_status=False)
    with socket.socket() as held, trio.fail_after(10):
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as another orchestra's proxy holds it
        held.bind(("127.96.200.7", 18080))
        held.listen()
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.run)
            with pytest.raises(NetworkSetupError) as caught:
                _check_cluster_ips(proxy, "127.96.0.0/16")
            _check_cluster_ips(proxy, "10.100.0.0/16")  # outside the range: only the proxy's warning
            nursery.cancel_scope.cancel()
    message = str(caught.value)
    assert "cannot listen on the ClusterIP 127.96.200.7:18080/TCP" in message, message
    assert "start this one with --no-network" in message and "free port 18080" in message, message


async def test_a_joined_nodes_proxy_serves_load_balancers_without_writing_their_status(
        client: LocalClient) -> None:
    svc = await client.create(kind("Service"), "default", {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "ports": [{"port": 18082}]}})
    proxy = ServiceProxy(client, host_addresses=["127.0.0.1"], bind=to_loopback, nodeport_host="127.0.0.1",
                         load_balancer_status=False)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.run)
            await trio.testing.wait_all_tasks_blocked()
            # its ClusterIP, NodePort and host address, and the kubernetes Service's ClusterIP
            assert proxy.statistics()["listeners"] == 4
            nursery.cancel_scope.cancel()
    got = await client.get(kind("Service"), "default", "lb")
    assert not got["status"]["loadBalancer"]  # as created: {}
    assert got["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]
