"""NetworkPolicy end to end (pytest.mark.podman): real Podman pods (busybox httpd and wget), the rules
in the kernel (nftables, table `inet orchestra-netpol`), the service proxy's connections policed as
their client pod.

The cluster is tests/e2e/test_network_podman.py's (run_cluster with service networking in a
background thread; only one such cluster can run on a machine). Namespaces: np-a (a server and a
client pod, the server behind a Service) and np-b (an outsider pod). A blocked request is a wget
that gets no answer within BLOCKED seconds (the rules drop). "Within a second" is measured from the
API write to the kernel holding the new rules, read back with `nft -j` (JSON).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import ClusterThread
from tests.e2e.test_network_podman import IMAGE, SLEEPER, NetCluster, preflight, service_routed

pytestmark = [pytest.mark.podman, pytest.mark.slow]

Obj = dict[str, Any]
TABLE = "orchestra-netpol"
BLOCKED = 2  # seconds a blocked wget waits
HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"


def nft_table() -> list[dict[str, Any]] | None:
    proc = subprocess.run(
        ["nft", "-j", "list", "table", "inet", TABLE], capture_output=True, text=True, timeout=10, check=False
    )
    if proc.returncode != 0:
        return None
    return [i for i in json.loads(proc.stdout)["nftables"] if "metainfo" not in i]


def chains() -> set[str]:
    return {i["chain"]["name"] for i in nft_table() or [] if "chain" in i}


class Policies:
    """The cluster plus what these tests need: pods by name, requests from pods, timed policy writes."""

    def __init__(self, nc: NetCluster) -> None:
        self.nc = nc
        self.ips: dict[str, str] = {}

    def create(self, kind: str, ns: str | None, obj: Obj) -> Obj:
        return self.nc.run(self.nc.client.create, self.nc.rt(kind), ns, obj)

    def pod(self, ns: str, name: str) -> Obj:
        return self.nc.run(self.nc.client.get, self.nc.rt("Pod"), ns, name)

    def fetch(self, ns: str, name: str, target: str) -> bool:
        """A GET of http://<target> (an address or a Service name) from the pod; True if answered."""
        url = f"http://{target}" if ":" in target or not target[0].isdigit() else f"http://{target}:8080"
        code, _out = self.nc.exec(self.pod(ns, name), ["timeout", str(BLOCKED), "wget", "-qO-", url])
        return code == 0

    def timed(self, what: str, write: Any, until: Any, limit: float = 1.0) -> float:
        """Do `write` (an API call) and return how long until `until(chains())` holds: at most `limit`."""
        t0 = time.monotonic()
        write()
        while not until(chains()):
            if time.monotonic() - t0 > 5:
                raise AssertionError(f"{what}: the kernel's rules did not follow within 5 s: {chains()}")
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        print(f"{what}: in the kernel after {elapsed * 1000:.0f} ms")
        assert elapsed < limit, f"{what} took {elapsed:.2f} s"
        return elapsed

    def apply(self, ns: str, policy: Obj, isolated: str) -> None:
        """Create a policy and wait (at most a second) for the pod `isolated` to have its chain."""
        direction = "egress" if "Egress" in policy["spec"].get("policyTypes", []) else "ingress"
        chain = f"{direction}-{self.ips[isolated]}"
        self.timed(
            f"create {policy['metadata']['name']}",
            lambda: self.create("NetworkPolicy", ns, policy),
            lambda names: chain in names,
        )

    def remove(self, ns: str, name: str) -> None:
        """Delete a policy and wait (at most a second) for every pod chain to go."""
        self.timed(
            f"delete {name}",
            lambda: self.nc.run(self.nc.client.delete, self.nc.rt("NetworkPolicy"), ns, name),
            lambda names: names == {"forward", "input", "output"},
        )


def _pods(p: Policies) -> None:
    for ns, labels in (("np-a", {"team": "a"}), ("np-b", {"team": "b"})):
        p.create("Namespace", None, {"metadata": {"name": ns, "labels": labels}})
    p.create(
        "Pod",
        "np-a",
        {
            "metadata": {"name": "server", "labels": {"app": "server"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "web",
                        "image": IMAGE,
                        "command": ["sh", "-c", HTTPD],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                    }
                ],
            },
        },
    )
    for ns, name in (("np-a", "client"), ("np-b", "outsider")):
        p.create(
            "Pod",
            ns,
            {
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": IMAGE, "command": SLEEPER}],
                },
            },
        )
    p.create(
        "Service",
        "np-a",
        {
            "metadata": {"name": "server"},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    for ns, name in (("np-a", "server"), ("np-a", "client"), ("np-b", "outsider")):

        def ready(ns: str = ns, name: str = name) -> bool:
            pod = p.pod(ns, name)
            p.nc.uids.add(pod["metadata"]["uid"])
            return _ready(pod)

        p.nc.wait(f"{ns}/{name} ready", ready, limit=60)
        p.ips[name] = p.pod(ns, name)["status"]["podIP"]


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _cleanup(p: Policies) -> None:
    async def go() -> None:
        for ns in ("np-a", "np-b"):
            try:
                await p.nc.client.delete(p.nc.rt("Namespace"), None, ns)
            except Exception:  # best effort: it may not have been created
                pass
        with trio.move_on_after(60):
            while True:
                left = [x for ns in ("np-a", "np-b") for x in (await p.nc.client.list(p.nc.rt("Pod"), ns))[0]]
                if not left:
                    break
                await trio.sleep(0.3)

    p.nc.run(go)


@pytest.fixture(scope="module")
def np(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Policies]:
    from orchestra.app import ClusterConfig

    routed_before = preflight()
    state: Path = tmp_path_factory.mktemp("netpol-state")
    runner = ClusterThread(
        ClusterConfig(
            state_dir=state, listen_port=0, store="memory", podman=True, network=True, timings="fast"
        )
    )
    try:
        runner.start()
        if runner.cluster is None:
            pytest.fail(f"the network cluster did not start within 60 s (state {state})")
        nc = NetCluster(runner)
        assert nc.cluster.netpol is not None, "NetworkPolicy enforcement did not start (see the log)"
        p = Policies(nc)
        try:
            _pods(p)
            yield p
        finally:
            _cleanup(p)
    finally:
        runner.stop()
    assert nft_table() is None, "the NetworkPolicy table outlived the cluster"
    if not routed_before:
        assert not service_routed()


def deny_all(name: str = "deny-all", types: tuple[str, ...] = ("Ingress",), **selector: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": selector} if selector else {}, "policyTypes": list(types)},
    }


def test_pods_talk_while_no_policy_selects_them(np: Policies) -> None:
    server = np.ips["server"]
    assert np.fetch("np-a", "client", server) and np.fetch("np-b", "outsider", server)
    assert np.fetch("np-a", "client", "server.np-a")  # the Service, through the proxy


def test_deny_all_ingress_blocks_and_removing_it_restores_within_a_second(np: Policies) -> None:
    server = np.ips["server"]
    np.apply("np-a", deny_all(), "server")
    assert not np.fetch("np-a", "client", server)
    assert not np.fetch("np-b", "outsider", server)
    assert not np.fetch("np-a", "client", "server.np-a")  # Service traffic too: the proxy shows the client
    # the node itself still reaches its pods (kubelet probes keep the server Ready)
    with urllib.request.urlopen(f"http://{server}:8080/", timeout=5) as resp:
        assert resp.status == 200
    time.sleep(2.5)  # a few readiness probes (every second)
    assert _ready(np.pod("np-a", "server"))
    np.remove("np-a", "deny-all")
    t0 = time.monotonic()
    assert np.fetch("np-a", "client", server)
    print(f"first request after the delete answered {time.monotonic() - t0:.2f} s after the kernel had it")


def test_service_traffic_is_policed_as_its_client_pod(np: Policies) -> None:
    np.apply(
        "np-a",
        {
            "metadata": {"name": "from-client"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
            },
        },
        "server",
    )
    try:
        assert np.fetch("np-a", "client", "server.np-a")
        assert np.fetch("np-a", "client", np.ips["server"])
        assert not np.fetch("np-b", "outsider", "server.np-a.svc.cluster.local")
        assert not np.fetch("np-b", "outsider", np.ips["server"])
    finally:
        np.remove("np-a", "from-client")


def test_namespace_selector_follows_namespace_labels(np: Policies) -> None:
    np.apply(
        "np-a",
        {
            "metadata": {"name": "from-team-b"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}],
            },
        },
        "server",
    )
    try:
        assert np.fetch("np-b", "outsider", np.ips["server"])
        assert not np.fetch("np-a", "client", np.ips["server"])
        outsider = np.ips["outsider"]

        def allowed_sources() -> list[Any]:
            rules = [
                i["rule"]
                for i in nft_table() or []
                if "rule" in i and i["rule"]["chain"] == f"ingress-{np.ips['server']}"
            ]
            rights = [r["expr"][0]["match"]["right"] for r in rules if "match" in r["expr"][0]]
            # nft lists a one-element set as its element
            return [right["set"] if isinstance(right, dict) else [right] for right in rights]

        assert allowed_sources() == [[outsider]]
        relabel = {"metadata": {"labels": {"team": "c"}}}
        np.timed(
            "relabel np-b",
            lambda: np.nc.run(np.nc.client.patch, np.nc.rt("Namespace"), None, "np-b", relabel),
            lambda _names: allowed_sources() == [],
        )
        assert not np.fetch("np-b", "outsider", np.ips["server"])
    finally:
        np.nc.run(
            np.nc.client.patch, np.nc.rt("Namespace"), None, "np-b", {"metadata": {"labels": {"team": "b"}}}
        )
        np.remove("np-a", "from-team-b")


def test_ip_block_with_except(np: Policies) -> None:
    np.apply(
        "np-a",
        {
            "metadata": {"name": "pod-network-but-client"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.88.0.0/16", "except": [f"{np.ips['client']}/32"]}}]}
                ],
            },
        },
        "server",
    )
    try:
        assert np.fetch("np-b", "outsider", np.ips["server"])
        assert not np.fetch("np-a", "client", np.ips["server"])
    finally:
        np.remove("np-a", "pod-network-but-client")


@pytest.mark.parametrize(
    ("port", "answered"),
    [
        ({"port": "http"}, True),
        ({"port": 8000, "endPort": 8100}, True),
        ({"port": 9090}, False),
        ({"protocol": "UDP"}, False),
    ],
    ids=["named", "range", "other-port", "other-protocol"],
)
def test_ports(np: Policies, port: Obj, answered: bool) -> None:
    np.apply(
        "np-a",
        {
            "metadata": {"name": "port"},
            "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "ingress": [{"ports": [port]}]},
        },
        "server",
    )
    try:
        assert np.fetch("np-a", "client", np.ips["server"]) is answered
    finally:
        np.remove("np-a", "port")


def test_egress_deny_and_the_allows_a_client_needs(np: Policies) -> None:
    np.apply("np-a", deny_all("deny-egress", ("Egress",), app="client"), "client")
    try:
        assert not np.fetch("np-a", "client", np.ips["server"])
        code, out = np.nc.exec(np.pod("np-a", "client"), ["timeout", str(BLOCKED), "nslookup", "server.np-a"])
        assert code != 0, out  # DNS too: the cluster DNS is policed like kube-dns pods
        assert np.fetch("np-b", "outsider", np.ips["server"])  # the server is not egress-isolated
        # the usual DNS rule and a rule to the server: the client reaches it by Service name again
        np.create(
            "NetworkPolicy",
            "np-a",
            {
                "metadata": {"name": "client-needs"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "client"}},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                    },
                                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                                }
                            ],
                            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                        },
                        {
                            "to": [{"podSelector": {"matchLabels": {"app": "server"}}}],
                            "ports": [{"port": 8080}],
                        },
                    ],
                },
            },
        )
        np.nc.wait("the client's egress allows", lambda: np.fetch("np-a", "client", "server.np-a"), limit=5)
        np.nc.run(np.nc.client.delete, np.nc.rt("NetworkPolicy"), "np-a", "client-needs")
    finally:
        np.remove("np-a", "deny-egress")
