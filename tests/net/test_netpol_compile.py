"""The nft ruleset compiled from PodRules (net/netpol/compile.py): its shape as data, and nft itself
accepting it (`nft --check`, which changes nothing) for the docs' policies."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from orchestra.net.netpol.compile import TABLE, HostSettings, removal, ruleset
from orchestra.net.netpol.model import Allow, Endpoint, PodRules, PortMatch
from orchestra.net.netpol.ranges import address_elements, addresses, block, mark_elements
from orchestra.net.netpol.selection import pod_rules
from tests.net.test_netpol_selection import NAMESPACES, NODE, PODS, policy

Obj = dict[str, Any]
HOST = HostSettings(service_cidr="10.96.0.0/12", dns_ip="10.96.0.10")
A = Endpoint("default", "a", {}, "10.88.0.2", NODE)
B = Endpoint("default", "b", {}, "10.88.0.3", NODE)
ALL = addresses(int(ipaddress.IPv4Address(e.ip)) for e in (A, B))


def rules(commands: list[Obj], chain: str) -> list[Any]:
    return [
        c["add"]["rule"]
        for c in commands
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def chains(commands: list[Obj]) -> list[str]:
    return [c["add"]["chain"]["name"] for c in commands if "chain" in c.get("add", {})]


def test_the_table_is_replaced_in_one_transaction_and_chains_come_before_rules() -> None:
    commands = ruleset([PodRules(A, (), None)], pods=ALL, host=HOST)
    assert commands[:3] == [
        {"add": {"table": {"family": "inet", "name": TABLE}}},
        {"delete": {"table": {"family": "inet", "name": TABLE}}},
        {"add": {"table": {"family": "inet", "name": TABLE}}},
    ]
    kinds = [next(iter(c.values())).keys() for c in commands[3:]]
    first_rule = next(i for i, k in enumerate(kinds) if "rule" in k)
    assert all("chain" in k for k in kinds[:first_rule]) and all("rule" in k for k in kinds[first_rule:])
    assert chains(commands) == ["forward", "input", "output", "ingress-10.88.0.2", "proxied-10.88.0.2"]
    assert removal() == commands[:2]


def test_no_isolated_pod_leaves_only_the_base_chains() -> None:
    commands = ruleset([], pods=ALL, host=HOST)
    assert chains(commands) == ["forward", "input", "output"]
    for chain in ("forward", "output"):
        assert [r["comment"] for r in rules(commands, chain)] == ["replies of allowed connections"]
    # the proxied service range is still let through on input (the DNS address is not part of it)
    accept = rules(commands, "input")[1]["expr"][0]["match"]["right"]["set"]
    assert accept == [{"range": ["10.96.0.0", "10.96.0.9"]}, {"range": ["10.96.0.11", "10.111.255.255"]}]


def test_dispatch_and_pod_chains() -> None:
    ingress = (
        Allow(
            addresses([int(ipaddress.IPv4Address(B.ip))]), PortMatch("tcp", 80, 90), "default/np ingress[0]"
        ),
        Allow(None, PortMatch("udp"), "default/np ingress[1]"),
    )
    commands = ruleset(
        [PodRules(A, ingress, ()), PodRules(B, None, (Allow(None, None, "default/e egress[0]"),))],
        pods=ALL,
        host=HOST,
    )
    forward = rules(commands, "forward")
    assert forward[1]["expr"] == [
        {
            "vmap": {
                "key": {"payload": {"protocol": "ip", "field": "saddr"}},
                "data": {
                    "set": [
                        ["10.88.0.2", {"jump": {"target": "egress-10.88.0.2"}}],
                        ["10.88.0.3", {"jump": {"target": "egress-10.88.0.3"}}],
                    ]
                },
            }
        }
    ]
    assert forward[2]["expr"][0]["vmap"]["data"]["set"] == [
        ["10.88.0.2", {"jump": {"target": "ingress-10.88.0.2"}}]
    ]
    output = rules(commands, "output")
    assert output[1]["expr"][0]["vmap"]["key"] == {"meta": {"key": "mark"}}
    assert output[1]["expr"][0]["vmap"]["data"]["set"][0] == [
        0x0A580002,
        {"jump": {"target": "egress-10.88.0.2"}},
    ]
    assert output[2]["expr"][0] == {
        "match": {
            "op": "==",
            "left": {"meta": {"key": "mark"}},
            "right": {"set": [{"range": [0x0A580002, 0x0A580003]}]},
        }
    }
    assert rules(commands, "ingress-10.88.0.2") == [
        {
            "family": "inet",
            "table": TABLE,
            "chain": "ingress-10.88.0.2",
            "comment": "default/np ingress[0]",
            "expr": [
                {
                    "match": {
                        "op": "==",
                        "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                        "right": {"set": ["10.88.0.3"]},
                    }
                },
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
                {
                    "match": {
                        "op": "==",
                        "left": {"payload": {"protocol": "th", "field": "dport"}},
                        "right": {"range": [80, 90]},
                    }
                },
                {"return": None},
            ],
        },
        {
            "family": "inet",
            "table": TABLE,
            "chain": "ingress-10.88.0.2",
            "comment": "default/np ingress[1]",
            "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}},
                {"return": None},
            ],
        },
        {
            "family": "inet",
            "table": TABLE,
            "chain": "ingress-10.88.0.2",
            "comment": "default/a is isolated for ingress",
            "expr": [{"drop": None}],
        },
    ]
    proxied = rules(commands, "proxied-10.88.0.2")[0]["expr"][0]["match"]
    assert proxied["left"] == {"meta": {"key": "mark"}} and proxied["right"] == {"set": [0x0A580003]}
    assert [r["expr"] for r in rules(commands, "egress-10.88.0.2")] == [[{"drop": None}]]
    assert [r["expr"] for r in rules(commands, "egress-10.88.0.3")] == [[{"return": None}], [{"drop": None}]]


@pytest.mark.parametrize(
    ("peers", "addrs", "marks"),
    [
        (
            block("10.0.0.0/8", ["10.1.0.0/16"]),
            [{"prefix": {"addr": "10.0.0.0", "len": 16}}, {"range": ["10.2.0.0", "10.255.255.255"]}],
            [{"range": [0x0A000000, 0x0A00FFFF]}, {"range": [0x0A020000, 0x0AFFFFFF]}],
        ),
        (
            block("10.0.0.0/8", []),
            [{"prefix": {"addr": "10.0.0.0", "len": 8}}],
            [{"range": [0x0A000000, 0x0AFFFFFF]}],
        ),
        (addresses([1, 2, 3, 7]), [{"range": ["0.0.0.1", "0.0.0.3"]}, "0.0.0.7"], [{"range": [1, 3]}, 7]),
    ],
    ids=["holes", "prefix", "merged-addresses"],
)
def test_set_elements(peers: Any, addrs: list[Any], marks: list[Any]) -> None:
    assert address_elements(peers) == addrs and mark_elements(peers) == marks


def test_long_comments_are_cut_to_what_nft_keeps() -> None:
    long = Allow(None, None, "ns/" + "p" * 300 + " ingress[0]")
    comment = rules(ruleset([PodRules(A, (long,), None)], pods=ALL, host=HOST), "ingress-10.88.0.2")[0][
        "comment"
    ]
    assert len(comment.encode()) == 127


# --- nft itself accepts what is compiled -----------------------------------------------------------------


def nft_check(commands: list[Obj]) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    return subprocess.run(
        [nft, "-c", "-j", "-f", "-"],
        input=json.dumps({"nftables": commands}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


DOCS = {
    "default-deny-ingress": [policy(policyTypes=["Ingress"])],
    "allow-all-ingress": [policy(ingress=[{}], policyTypes=["Ingress"])],
    "default-deny-all": [policy(policyTypes=["Ingress", "Egress"])],
    "test-network-policy": [
        policy(
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
            egress=[
                {"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}
            ],
        )
    ],
    "multi-port-egress": [
        policy(
            podSelector={"matchLabels": {"role": "db"}},
            policyTypes=["Egress"],
            egress=[
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                    "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}],
                }
            ],
        )
    ],
    "sctp-and-overlapping-peers": [
        policy(
            ingress=[
                {
                    "from": [
                        {"ipBlock": {"cidr": "10.88.0.0/16"}},
                        {"podSelector": {}},
                        {"ipBlock": {"cidr": "10.88.0.0/24"}},
                    ],
                    "ports": [{"protocol": "SCTP", "port": 9}, {"protocol": "UDP"}],
                }
            ]
        )
    ],
}


@pytest.mark.skipif(os.geteuid() != 0, reason="nft --check talks to the kernel: needs root")
@pytest.mark.parametrize("name", list(DOCS))
def test_nft_accepts_the_ruleset(name: str) -> None:
    compiled = ruleset(
        pod_rules(DOCS[name], PODS, NAMESPACES, node=NODE),
        pods=addresses(int(ipaddress.IPv4Address(e.ip)) for e in PODS),
        host=HOST,
    )
    proc = nft_check(compiled)
    assert proc.returncode == 0, proc.stderr


def test_large_peer_sets_are_named_sets_written_once() -> None:
    many = addresses(range(0x0A590000, 0x0A590000 + 40, 2))  # 20 separate addresses
    allow = (Allow(many, None, "default/np ingress[0]"),)
    commands = ruleset([PodRules(A, allow, None), PodRules(B, allow, None)], pods=ALL, host=HOST)
    sets = [c["add"]["set"] for c in commands if "set" in c.get("add", {})]
    assert [(s["name"], s["type"], s["flags"], len(s["elem"])) for s in sets] == [
        ("peers-0", "ipv4_addr", ["interval"], 20),
        ("marks-1", "mark", ["interval"], 20),
    ]
    for chain, ref in (
        ("ingress-10.88.0.2", "@peers-0"),
        ("ingress-10.88.0.3", "@peers-0"),
        ("proxied-10.88.0.3", "@marks-1"),
    ):
        assert rules(commands, chain)[0]["expr"][0]["match"]["right"] == ref
    first_set = next(i for i, c in enumerate(commands) if "set" in c.get("add", {}))
    first_rule = next(i for i, c in enumerate(commands) if "rule" in c.get("add", {}))
    assert first_set < first_rule


@pytest.mark.skipif(os.geteuid() != 0, reason="nft --check talks to the kernel: needs root")
def test_nft_accepts_named_sets_of_thousands_of_pods() -> None:
    pods = [
        Endpoint(
            f"ns{i % 5}",
            f"p{i}",
            {"app": f"a{i % 3}"},
            str(ipaddress.IPv4Address(0x0A580002 + i)),
            NODE if i % 50 == 0 else "other",
        )
        for i in range(3000)
    ]
    spaces = {f"ns{i}": {"metadata": {"name": f"ns{i}", "labels": {"team": str(i % 2)}}} for i in range(5)}
    policies = [
        policy(
            f"np{j}",
            ns=f"ns{j}",
            podSelector={"matchLabels": {"app": "a0"}},
            ingress=[
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "1"}},
                            "podSelector": {"matchLabels": {"app": "a1"}},
                        }
                    ],
                    "ports": [{"port": 80}],
                }
            ],
        )
        for j in range(5)
    ]
    compiled = ruleset(
        pod_rules(policies, pods, spaces, node=NODE),
        pods=addresses(int(ipaddress.IPv4Address(e.ip)) for e in pods),
        host=HOST,
    )
    assert any("set" in c.get("add", {}) for c in compiled)
    proc = nft_check(compiled)
    assert proc.returncode == 0, proc.stderr
