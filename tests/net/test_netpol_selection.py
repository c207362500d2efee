"""NetworkPolicy semantics (net/netpol/selection.py): which pods are isolated and what their allows
are, for the examples of kube's NetworkPolicy docs page and the corners of the spec (combined
selectors, named ports resolved per pod, endPort, empty rule lists, pods on other nodes)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from orchestra.api.policy.defaults import default
from orchestra.net.netpol.model import Allow, Endpoint, NamedPort, PodRules, PortMatch
from orchestra.net.netpol.ranges import addresses, block, union
from orchestra.net.netpol.reconciler import dns_endpoint
from orchestra.net.netpol.selection import pod_rules

Obj = dict[str, Any]
NODE = "node-a"


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ep(
    name: str,
    addr: str,
    ns: str = "default",
    node: str = NODE,
    ports: tuple[NamedPort, ...] = (),
    **labels: str,
) -> Endpoint:
    return Endpoint(ns, name, labels, addr, node, ports)


DB = ep("db", "10.88.0.2", role="db")
FRONTEND = ep("frontend", "10.88.0.3", role="frontend")
OTHER = ep("other", "10.88.0.4", role="other")
ALICE_CLIENT = ep("alice-client", "10.88.1.2", ns="alice", role="client")
ALICE_WEB = ep("alice-web", "10.88.1.3", ns="alice", role="web")
PROJECT_POD = ep("p", "10.88.2.2", ns="myproject")
REMOTE_DB = ep("remote-db", "10.88.9.2", node="node-b", role="db")
PODS = [DB, FRONTEND, OTHER, ALICE_CLIENT, ALICE_WEB, PROJECT_POD, REMOTE_DB]
NAMESPACES = {
    "default": {"metadata": {"name": "default"}},
    "alice": {"metadata": {"name": "alice", "labels": {"user": "alice"}}},
    "myproject": {"metadata": {"name": "myproject", "labels": {"project": "myproject"}}},
}


def policy(name: str = "np", ns: str = "default", **spec: Any) -> Obj:
    spec.setdefault("podSelector", {})
    return default("NetworkPolicy", {"metadata": {"name": name, "namespace": ns}, "spec": spec})


def tcp(first: int | None = None, last: int | None = None) -> PortMatch:
    return PortMatch("tcp", first, first if last is None else last)


def rules_of(*policies: Obj, pods: list[Endpoint] = PODS, extra: tuple[Endpoint, ...] = ()) -> dict[str, Any]:
    """Pod name -> (ingress, egress) with allows as (peers, port) pairs (origins left out)."""

    def strip(allows: tuple[Allow, ...] | None) -> list[Any] | None:
        return None if allows is None else [(a.peers, a.port) for a in allows]

    out = pod_rules(list(policies), pods, NAMESPACES, node=NODE, extra=extra)
    return {r.endpoint.name: (strip(r.ingress), strip(r.egress)) for r in out}


LOCAL = ("db", "frontend", "other")  # the default namespace's pods on this node


# --- the docs' default policies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"policyTypes": ["Ingress"]}, ([], None)),
        ({"ingress": [{}], "policyTypes": ["Ingress"]}, ([(None, None)], None)),
        ({"policyTypes": ["Egress"]}, (None, [])),
        ({"egress": [{}], "policyTypes": ["Egress"]}, (None, [(None, None)])),
        ({"policyTypes": ["Ingress", "Egress"]}, ([], [])),
        ({}, ([], None)),
        (
            {"egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]},
            ([], [(None, PortMatch("udp", 53, 53))]),
        ),
    ],
    ids=[
        "default-deny-ingress",
        "allow-all-ingress",
        "default-deny-egress",
        "allow-all-egress",
        "default-deny-all",
        "types-defaulted-from-no-egress",
        "types-defaulted-from-egress",
    ],
)
def test_default_policies_isolate_every_pod_of_the_namespace_on_this_node(spec: Obj, expected: Any) -> None:
    got = rules_of(policy(**spec))
    assert got == {name: expected for name in LOCAL}  # not alice's, not the remote node's


def test_no_policy_isolates_nothing() -> None:
    assert rules_of() == {}


def test_the_docs_example() -> None:
    """test-network-policy: role=db isolated both ways; ingress on TCP 6379 from 172.17.0.0/16 but
    172.17.1.0/24, from myproject's pods and from default's role=frontend pods; egress to
    10.0.0.0/24 on TCP 5978."""
    np = policy(
        "test-network-policy",
        podSelector={"matchLabels": {"role": "db"}},
        policyTypes=["Ingress", "Egress"],
        ingress=[
            {
                "from": [
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                    {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                    {"podSelector": {"matchLabels": {"role": "frontend"}}},
                ],
                "ports": [{"protocol": "TCP", "port": 6379}],
            }
        ],
        egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}],
    )
    peers = union(
        [(ip("172.17.0.0"), ip("172.17.0.255")), (ip("172.17.2.0"), ip("172.17.255.255"))],
        addresses([ip(PROJECT_POD.ip), ip(FRONTEND.ip)]),
    )
    assert rules_of(np) == {"db": ([(peers, tcp(6379))], [(block("10.0.0.0/24", []), tcp(5978))])}


@pytest.mark.parametrize(
    ("peers", "allowed"),
    [
        (
            [
                {
                    "namespaceSelector": {"matchLabels": {"user": "alice"}},
                    "podSelector": {"matchLabels": {"role": "client"}},
                }
            ],
            [ALICE_CLIENT],
        ),
        (
            [
                {"namespaceSelector": {"matchLabels": {"user": "alice"}}},
                {"podSelector": {"matchLabels": {"role": "client"}}},
            ],
            [ALICE_CLIENT, ALICE_WEB],
        ),
        ([{"namespaceSelector": {}}], PODS),
        (
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "myproject"}}}],
            [PROJECT_POD],
        ),
        ([{"podSelector": {}}], [DB, FRONTEND, OTHER, REMOTE_DB]),
        (
            [{"podSelector": {"matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["db"]}]}}],
            [FRONTEND, OTHER],
        ),
    ],
    ids=[
        "namespace-and-pod-selector",
        "namespace-or-pod-selector",
        "every-namespace",
        "namespace-by-name",
        "every-pod-of-the-namespace",
        "expression",
    ],
)
def test_peer_selectors(peers: list[Obj], allowed: list[Endpoint]) -> None:
    np = policy(podSelector={"matchLabels": {"role": "db"}}, ingress=[{"from": peers}])
    assert rules_of(np)["db"] == ([(addresses(ip(e.ip) for e in allowed), None)], None)


def test_a_peer_selecting_nothing_allows_nothing() -> None:
    np = policy(
        podSelector={"matchLabels": {"role": "db"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "nobody"}}}]}],
    )
    assert rules_of(np) == {"db": ([], None)}


def test_policies_are_additive_and_other_namespaces_policies_do_not_apply() -> None:
    a = policy("a", podSelector={"matchLabels": {"role": "db"}}, ingress=[{"ports": [{"port": 80}]}])
    b = policy("b", ingress=[{"ports": [{"port": 443}]}])
    elsewhere = policy("c", ns="alice")
    assert rules_of(a, b, elsewhere) == {
        "db": ([(None, tcp(80)), (None, tcp(443))], None),
        "frontend": ([(None, tcp(443))], None),
        "other": ([(None, tcp(443))], None),
        "alice-client": ([], None),
        "alice-web": ([], None),
    }


# --- ports ----------------------------------------------------------------------------------------------


HTTP_8080 = ep("web-a", "10.88.0.10", app="web", ports=(NamedPort("http", "TCP", 8080),))
HTTP_9090 = ep("web-b", "10.88.0.11", app="web", ports=(NamedPort("http", "TCP", 9090),))
NO_HTTP = ep("web-c", "10.88.0.12", app="web", ports=(NamedPort("http", "UDP", 80),))
WEB = [HTTP_8080, HTTP_9090, NO_HTTP, FRONTEND]


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ({"port": 80}, tcp(80)),
        ({"port": 32000, "endPort": 32768}, tcp(32000, 32768)),
        ({"protocol": "UDP"}, PortMatch("udp")),
        ({"protocol": "SCTP", "port": 9}, PortMatch("sctp", 9, 9)),
    ],
    ids=["number", "range", "protocol-only", "sctp"],
)
def test_port_forms(port: Obj, expected: PortMatch) -> None:
    np = policy(podSelector={"matchLabels": {"role": "db"}}, ingress=[{"ports": [port]}])
    assert rules_of(np)["db"] == ([(None, expected)], None)


def test_a_named_ingress_port_is_resolved_on_each_policed_pod() -> None:
    np = policy(
        podSelector={"matchLabels": {"app": "web"}},
        ingress=[
            {"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}], "ports": [{"port": "http"}]}
        ],
    )
    front = addresses([ip(FRONTEND.ip)])
    assert rules_of(np, pods=WEB) == {
        "web-a": ([(front, tcp(8080))], None),
        "web-b": ([(front, tcp(9090))], None),
        "web-c": ([], None),  # its "http" is UDP: the TCP port name means nothing on it
    }


def test_a_named_egress_port_is_resolved_on_each_destination_pod() -> None:
    np = policy(
        podSelector={"matchLabels": {"role": "frontend"}},
        policyTypes=["Egress"],
        egress=[
            {"ports": [{"port": "http"}]},
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "http"}]},
        ],
    )
    assert rules_of(np, pods=WEB) == {
        "frontend": (
            None,
            [
                (addresses([ip(HTTP_8080.ip)]), tcp(8080)),
                (addresses([ip(HTTP_9090.ip)]), tcp(9090)),
            ],
        )
    }  # an ipBlock has no pods, so no named ports: the second rule allows nothing


# --- addresses ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "excepts", "expected"),
    [
        ("10.0.0.0/24", [], [("10.0.0.0", "10.0.0.255")]),
        (
            "10.0.0.0/16",
            ["10.0.1.0/24", "10.0.3.0/24"],
            [("10.0.0.0", "10.0.0.255"), ("10.0.2.0", "10.0.2.255"), ("10.0.4.0", "10.0.255.255")],
        ),
        ("10.0.0.7/32", [], [("10.0.0.7", "10.0.0.7")]),
        ("0.0.0.0/0", ["10.0.0.0/8"], [("0.0.0.0", "9.255.255.255"), ("11.0.0.0", "255.255.255.255")]),
        ("fd00::/64", [], []),
    ],
    ids=["plain", "two-holes", "one-address", "everything-but", "ipv6-is-no-pod-traffic"],
)
def test_ip_blocks(cidr: str, excepts: list[str], expected: list[tuple[str, str]]) -> None:
    assert block(cidr, excepts) == tuple((ip(a), ip(b)) for a, b in expected)


def test_the_cluster_dns_is_selectable_like_kube_dns_pods() -> None:
    dns = dns_endpoint("10.96.0.10")
    allow_dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": "dns-tcp"}],
    }
    np = policy(podSelector={"matchLabels": {"role": "db"}}, policyTypes=["Egress"], egress=[allow_dns])
    only_dns = addresses([ip("10.96.0.10")])
    assert rules_of(np, extra=(dns,)) == {
        "db": (None, [(only_dns, PortMatch("udp", 53, 53)), (only_dns, tcp(53))])
    }


@pytest.mark.parametrize(
    ("pod", "seen"),
    [
        ({"status": {"podIP": "10.88.0.5", "phase": "Running"}}, True),
        ({"status": {"phase": "Pending"}}, False),
        ({"status": {"podIP": "10.88.0.5", "phase": "Succeeded"}}, False),
        ({"status": {"podIP": "10.88.0.5", "phase": "Failed"}}, False),
        ({"spec": {"hostNetwork": True}, "status": {"podIP": "192.0.2.2", "phase": "Running"}}, False),
        ({"status": {"podIP": "fd00::5", "phase": "Running"}}, False),
    ],
    ids=["running", "no-address-yet", "succeeded", "failed", "host-network", "ipv6"],
)
def test_which_pods_policies_see(pod: Obj, seen: bool) -> None:
    pod = {
        "metadata": {"namespace": "default", "name": "p", "labels": {"a": "b"}},
        "spec": {
            "nodeName": NODE,
            "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9}]}
            ],
            **pod.get("spec", {}),
        },
        "status": pod["status"],
    }
    got = Endpoint.from_pod(pod)
    assert (got is not None) == seen
    if got is not None:
        assert got == ep("p", "10.88.0.5", ports=(NamedPort("http", "TCP", 8080),), a="b")


def test_rules_come_sorted_by_address_with_their_origin() -> None:
    out = pod_rules(
        [policy("deny"), policy("web", ingress=[{"ports": [{"port": 80}]}])], PODS, NAMESPACES, node=NODE
    )
    assert [r.endpoint.name for r in out] == ["db", "frontend", "other"]
    assert out[0] == PodRules(DB, (Allow(None, tcp(80), "default/web ingress[0]"),), None)
