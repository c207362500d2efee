"""Service networking end to end (pytest.mark.podman): real Podman pods, the service proxy on the
ClusterIP range, the cluster DNS on 10.96.0.10, NodePorts on the host, Service env vars.

One network-enabled cluster serves the whole module; it runs `run_cluster` in a background thread
(like tests/conftest.py's ClusterThread) and every API/runtime call is sent into its trio loop.
Only one such cluster can run on a machine (it binds 10.96.0.10:53 and the ClusterIPs), so the
fixture refuses to start, with the reason, when that address is taken. Everything it creates (pods,
and the service route if it added it) is removed at the end, also when a test fails.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import trio

from orchestra.api.policy.allocators import DEFAULT_SERVICE_CIDR
from orchestra.node.agent import find_container
from orchestra.node.sandbox import LABEL_NODE
from orchestra.runtime.base import RuntimeFailure
from tests.conftest import ClusterThread

pytestmark = [pytest.mark.podman, pytest.mark.slow]

IMAGE = "localhost/busybox:latest"
# wget's own -T segfaults in this busybox (Debian 1.35), so requests are bounded with `timeout`
# (longer than the resolver's 5 s retry: a UDP answer lost on a loaded machine is not a failure)
DNS_IP = "10.96.0.10"
NS = "default"
HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
Obj = dict[str, Any]
T = TypeVar("T")


def service_routed() -> bool:
    out = subprocess.run(["ip", "route", "show", "table", "local", DEFAULT_SERVICE_CIDR],
                         capture_output=True, text=True, check=False).stdout
    return f"local {DEFAULT_SERVICE_CIDR}" in out


def preflight() -> bool:
    """Fail with the reason when this machine cannot host the network cluster right now; returns
    whether the service range was already routed (then it is not ours to remove)."""
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if os.geteuid() != 0:
        pytest.fail("service networking tests need root (they route the service range to lo)")
    if not service_routed():
        return False  # nobody routes the range: nobody can be listening on it
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((DNS_IP, 53))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    pytest.fail(
                        f"{DNS_IP}:53 is already bound: another network-enabled orchestra runs on this "
                        "machine (only one may run at a time); stop it and re-run"
                    )
                raise
    return True


class NetCluster:
    """The running cluster, driven from the (sync) test thread."""

    def __init__(self, runner: ClusterThread) -> None:
        self.runner = runner
        self.cluster: Any = cast(Any, runner.cluster)  # orchestra.app.Cluster
        from orchestra.client.local import LocalClient

        self.client = LocalClient(self.cluster.core, field_manager="e2e")
        self.runtime = self.cluster.agents[0].runtime
        self.node = self.cluster.agents[0].node_name
        self.uids: set[str] = set()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return trio.from_thread.run(fn, *args, trio_token=self.runner._token)

    def rt(self, kind: str) -> Any:
        return self.client.kind(kind)

    # --- API ---------------------------------------------------------------------------------

    def create(self, kind: str, obj: Obj) -> Obj:
        out = self.run(self.client.create, self.rt(kind), NS, obj)
        if kind == "Pod":
            self.uids.add(out["metadata"]["uid"])
        return out

    def get(self, kind: str, name: str) -> Obj:
        return self.run(self.client.get, self.rt(kind), NS, name)

    def pods(self, selector: str) -> list[Obj]:
        items, _ = self.run(lambda: self.client.list(self.rt("Pod"), NS, label_selector=selector))
        for p in items:
            self.uids.add(p["metadata"]["uid"])
        return items

    def ready_ips(self, service: str) -> set[str]:
        """Addresses of ready endpoints in the Service's EndpointSlices."""
        items, _ = self.run(lambda: self.client.list(self.rt("EndpointSlice"), NS,
                                                     label_selector=f"kubernetes.io/service-name={service}"))
        return {ip for sl in items for ep in sl.get("endpoints") or []
                if (ep.get("conditions") or {}).get("ready") is not False for ip in ep.get("addresses") or []}

    def wait(self, what: str, cond: Callable[[], T | None], limit: float = 40.0, interval: float = 0.05) -> T:
        deadline = time.monotonic() + limit
        while True:
            value = cond()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {limit} s waiting for {what}")
            time.sleep(interval)

    def running_ready(self, selector: str, n: int) -> list[Obj]:
        def ready() -> list[Obj] | None:
            pods = [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]
            ok = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in (p.get("status") or {}).get("conditions") or [])]
            return ok if len(ok) == n == len(pods) else None
        return self.wait(f"{n} ready pods {selector}", ready, limit=60)

    def running_ready_one(self, name: str) -> bool:
        pod = self.get("Pod", name)
        self.uids.add(pod["metadata"]["uid"])
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or [])

    # --- in-pod commands ---------------------------------------------------------------------

    def exec(self, pod: Obj, cmd: list[str], timeout: float = 30.0) -> tuple[int, str]:
        async def go() -> tuple[int, str]:
            ref = await find_container(self.runtime, pod)
            res = await self.runtime.exec_run(ref.container_id, cmd, timeout)
            return res.exit_code, (res.stdout + res.stderr).decode()
        return self.run(go)

    def stream_lines(
        self, pod: Obj, cmd: list[str], until: Callable[[], bool], limit: float = 60.0
    ) -> list[tuple[float, str]]:
        """Run `cmd` in the pod while the test thread works; returns (arrival time, line) pairs.
        Runs in the cluster's loop; `until` (evaluated there) ends it."""
        lines: list[tuple[float, str]] = []

        async def go() -> None:
            ref = await find_container(self.runtime, pod)
            buf = b""
            with trio.move_on_after(limit):
                async with self.runtime.exec(ref.container_id, cmd) as session:
                    async for _stream, data in session:
                        buf += data
                        *done, buf = buf.split(b"\n")
                        now = time.monotonic()
                        lines.extend((now, d.decode().strip()) for d in done)
                        if until():
                            break
        self.run(go)
        return lines

    # --- clean-up ----------------------------------------------------------------------------

    async def _sandboxes(self) -> list[Any]:
        for _ in range(5):
            try:
                return list(await self.runtime.list_sandboxes({LABEL_NODE: self.node}))
            except RuntimeFailure:  # a pod vanished between Podman's list and its inspect: list again
                await trio.sleep(0.5)
        return []

    def cleanup(self) -> None:
        async def go() -> None:
            for kind, name in (("Deployment", "web"), ("Service", "web"), ("Service", "web-np"),
                               ("Service", "web-headless"), ("Pod", "client"), ("Pod", "late")):
                try:
                    await self.client.delete(self.rt(kind), NS, name, propagation_policy="Background",
                                             grace_period_seconds=0)
                except Exception:  # best effort: most are deleted by the tests already
                    pass
            with trio.move_on_after(30):
                while True:
                    items, _ = await self.client.list(self.rt("Pod"), NS)
                    if not items:
                        break
                    for p in items:
                        self.uids.add(p["metadata"]["uid"])
                        try:
                            await self.client.delete(
                                self.rt("Pod"), NS, p["metadata"]["name"], grace_period_seconds=0
                            )
                        except Exception:  # already going
                            pass
                    await trio.sleep(0.3)
            # whatever the agent did not get to: remove the sandboxes of pods this module made
            for sandbox in await self._sandboxes():
                if sandbox.uid in self.uids:
                    try:
                        await self.runtime.remove_sandbox(sandbox.id)
                    except RuntimeFailure:  # the agent removed it meanwhile
                        pass
        self.run(go)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetCluster]:
    from orchestra.app import ClusterConfig

    routed_before = preflight()
    state: Path = tmp_path_factory.mktemp("net-state")
    runner = ClusterThread(ClusterConfig(state_dir=state, listen_port=0, store="memory", podman=True,
                                         network=True, timings="fast"))
    try:
        runner.start()
        if runner.cluster is None:
            pytest.fail(f"the network cluster did not start within 60 s (state {state})")
        nc = NetCluster(runner)
        assert not nc.cluster.proxy.errors, f"the service proxy could not bind: {nc.cluster.proxy.errors}"
        try:
            _deploy(nc)
            yield nc
        finally:
            nc.cleanup()
    finally:
        runner.stop()
    if not routed_before:  # run_cluster removes the route it added (one already there is not ours)
        assert not service_routed(), f"the route 'local {DEFAULT_SERVICE_CIDR} dev lo' outlived the cluster"


def _deploy(nc: NetCluster) -> None:
    t0 = time.monotonic()
    nc.create(
        "Service",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    nc.create(
        "Service",
        {
            "metadata": {"name": "web-headless"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8080}]},
        },
    )
    nc.create(
        "Deployment",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [
                            {
                                "name": "web",
                                "image": IMAGE,
                                "command": ["sh", "-c", HTTPD],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": 8080},
                                    "periodSeconds": 1,
                                },
                            }
                        ],
                    },
                },
            },
        },
    )
    nc.create("Pod", {"metadata": {"name": "client"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": IMAGE, "command": SLEEPER}]}})
    nc.running_ready("app=web", 3)
    nc.wait("the client pod", lambda: nc.running_ready_one("client"))
    nc.wait("3 ready endpoints", lambda: len(nc.ready_ips("web")) == 3)
    print(f"deployed 3 web pods + client in {time.monotonic() - t0:.1f} s")


def test_service_by_short_and_full_name(net: NetCluster) -> None:
    client = net.get("Pod", "client")
    web = {p["metadata"]["name"] for p in net.pods("app=web")}
    for url in ("http://web", "http://web.default.svc.cluster.local", "http://web.default"):
        t0 = time.monotonic()
        code, out = net.exec(client, ["timeout", "15", "wget", "-qO-", url])
        assert code == 0, f"{url}: exit {code} after {time.monotonic() - t0:.1f} s: {out}"
        assert out.strip() in web, (url, out)


def test_requests_spread_over_every_replica(net: NetCluster) -> None:
    client = net.get("Pod", "client")
    web = {p["metadata"]["name"] for p in net.pods("app=web")}
    code, out = net.exec(
        client, ["sh", "-c", "for i in $(seq 30); do timeout 12 wget -qO- http://web || echo FAIL; done"]
    )
    hits = Counter(out.split())
    print(f"per-pod hits: {dict(hits)}")
    assert code == 0 and "FAIL" not in hits, out
    assert set(hits) == web and sum(hits.values()) == 30
    assert min(hits.values()) >= 5, hits  # round-robin: 10 each, give or take a retried backend


def test_nodeport_answers_on_the_host(net: NetCluster) -> None:
    from orchestra.net.routes import host_addresses

    svc = net.create("Service", {"metadata": {"name": "web-np"}, "spec": {
        "type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    web = {p["metadata"]["name"] for p in net.pods("app=web")}
    hosts = ["127.0.0.1", *host_addresses()[:1]]
    assert len(hosts) == 2, "this host has no global IPv4 address"
    for host in hosts:
        def answer(host: str = host) -> str | None:
            try:
                with urllib.request.urlopen(f"http://{host}:{node_port}/", timeout=2) as resp:
                    return str(resp.read().decode().strip())
            except OSError:
                return None
        assert net.wait(f"NodePort {node_port} on {host}", answer, limit=10, interval=0.1) in web


def test_headless_dns_lists_every_ready_pod(net: NetCluster) -> None:
    client = net.get("Pod", "client")
    want = {p["status"]["podIP"] for p in net.running_ready("app=web", len(net.ready_ips("web")))}
    code, out = net.exec(client, ["nslookup", "web-headless.default.svc.cluster.local"])
    assert code == 0, out
    answers = {line.split()[-1] for line in out.splitlines()
               if line.startswith("Address") and not line.split()[-1].startswith(DNS_IP)}
    assert answers == want, out
    # and the ClusterIP Service resolves to its ClusterIP through the search path
    _code, out = net.exec(client, ["nslookup", "web"])  # exit 1: the other search suffixes are NXDOMAIN
    assert net.get("Service", "web")["spec"]["clusterIP"] in out, out


def test_service_env_in_a_later_pod(net: NetCluster) -> None:
    ip = net.get("Service", "web")["spec"]["clusterIP"]
    client = net.get("Pod", "client")  # created after the Service
    _code, out = net.exec(client, ["env"])
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env.get("WEB_SERVICE_HOST") == ip and env.get("WEB_SERVICE_PORT") == "80", out
    assert env.get("WEB_PORT") == f"tcp://{ip}:80" and env.get("KUBERNETES_SERVICE_HOST"), out


LOOP = (
    "while [ ! -e /tmp/stop ]; do "
    'r=$(timeout 12 wget -qO- http://web 2>/dev/null) || r=FAIL; echo "$r"; done; '
    "rm -f /tmp/stop"
)


def test_scale_down_and_pod_kill_fail_no_request(net: NetCluster) -> None:
    client = net.get("Pod", "client")
    marks: dict[str, float] = {}
    box: dict[str, Any] = {}

    def scenario() -> None:
        try:
            time.sleep(1.0)
            before = net.ready_ips("web")
            marks["scale"] = time.monotonic()
            net.run(lambda: net.client.patch(net.rt("Deployment"), NS, "web", {"spec": {"replicas": 2}}))
            net.wait("2 ready endpoints", lambda: len(net.ready_ips("web")) == 2, interval=0.01)
            marks["scaled"] = time.monotonic()
            time.sleep(1.0)
            victim = sorted(net.running_ready("app=web", 2), key=lambda p: p["metadata"]["name"])[0]
            box["victim"] = victim["metadata"]["name"]
            marks["kill"] = time.monotonic()
            net.run(lambda: net.client.delete(net.rt("Pod"), NS, victim["metadata"]["name"]))
            net.wait(
                "the victim out of the endpoints",
                lambda: victim["status"]["podIP"] not in net.ready_ips("web"),
                interval=0.01,
            )
            marks["killed"] = time.monotonic()
            box["after"] = {p["metadata"]["name"] for p in net.running_ready("app=web", 2)}
            marks["replaced"] = time.monotonic()
            time.sleep(1.5)
            box["before"] = before
        finally:
            net.exec(client, ["touch", "/tmp/stop"])

    import threading

    worker = threading.Thread(target=lambda: box.setdefault("error", _catch(scenario)))
    worker.start()
    lines = net.stream_lines(client, ["sh", "-c", LOOP], until=lambda: False, limit=90)
    worker.join(60)
    if box.get("error"):
        raise box["error"]
    # a request's start is approximated by the arrival of the line before it
    starts = [(lines[i - 1][0] if i else 0.0, t, text) for i, (t, text) in enumerate(lines)]
    fails = [(s - marks["scale"], text) for s, _t, text in starts if text == "FAIL"]
    racy = [(s, t) for s, t, text in starts if text == "FAIL"
            and (marks["scale"] <= t <= marks["scaled"] or marks["kill"] <= t <= marks["killed"])]
    print(f"{len(lines)} requests; marks (s after scale): "
          f"{ {k: round(v - marks['scale'], 3) for k, v in marks.items()} }; failures: {fails}")
    assert len(fails) == len(racy), f"requests failed after the endpoint update: {fails}"
    assert not fails, f"failed requests while the endpoint update was under way: {fails}"
    late = Counter(text for s, _t, text in starts if s > marks["replaced"])
    assert set(late) == box["after"], (late, box["after"])  # the replacement serves, the victim does not
    assert box["victim"] not in late


def _catch(fn: Callable[[], None]) -> BaseException | None:
    try:
        fn()
    except BaseException as exc:  # handed to the test thread, which re-raises it
        return exc
    return None


def test_late_pod_gets_env(net: NetCluster) -> None:
    """A pod created after `web-np` too sees both Services' variables (the client predates web-np)."""
    net.create(
        "Pod",
        {
            "metadata": {"name": "late"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": IMAGE, "command": SLEEPER}],
            },
        },
    )
    net.wait("the late pod", lambda: net.running_ready_one("late"))
    _code, out = net.exec(net.get("Pod", "late"), ["env"])
    assert "WEB_SERVICE_HOST=" in out and "WEB_NP_SERVICE_HOST=" in out, out


def test_removed_endpoint_keeps_open_connections_but_gets_no_new_ones(net: NetCluster) -> None:
    """A pod relabelled out of the selector leaves the EndpointSlice (it keeps running): connections
    it already has through the ClusterIP finish, new ones never reach it."""
    ip = net.get("Service", "web")["spec"]["clusterIP"]
    n = len(net.ready_ips("web"))
    held = [socket.create_connection((ip, 80), timeout=5) for _ in range(n)]  # round-robin: one per pod
    try:
        for s in held:
            s.sendall(b"GET / HTTP/1.0\r\n")  # the request is not finished yet
        out = sorted(net.running_ready("app=web", n), key=lambda p: p["metadata"]["name"])[0]
        name = out["metadata"]["name"]
        net.run(
            lambda: net.client.patch(net.rt("Pod"), NS, name, {"metadata": {"labels": {"app": "web-out"}}})
        )
        net.wait(
            "the relabelled pod out of the endpoints",
            lambda: out["status"]["podIP"] not in net.ready_ips("web"),
            interval=0.01,
        )
        fresh = Counter(_get(ip) for _ in range(3 * n))
        assert name not in fresh and sum(fresh.values()) == 3 * n, fresh
        answers = set()
        for s in held:
            s.sendall(b"\r\n")
            answers.add(_read_all(s).split(b"\r\n\r\n", 1)[1].decode().strip())
        assert name in answers and len(answers) == n, answers
    finally:
        for s in held:
            s.close()
        net.run(lambda: net.client.delete(net.rt("Pod"), NS, name, grace_period_seconds=0))


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def _get(ip: str) -> str:
    with socket.create_connection((ip, 80), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return _read_all(s).split(b"\r\n\r\n", 1)[1].decode().strip()


def _host_veth(net: NetCluster, pod: Obj) -> Path:
    """The host side of a pod's eth0 (its peer's ifindex is the pod's eth0 iflink)."""
    code, out = net.exec(pod, ["cat", "/sys/class/net/eth0/iflink"])
    assert code == 0, out
    index = out.strip()
    return next(p for p in Path("/sys/class/net").iterdir() if (p / "ifindex").read_text().strip() == index)


def _gateway_mac(net: NetCluster, pod: Obj) -> str:
    """The MAC a pod has cached for its gateway, after talking through it once."""
    code, out = net.exec(pod, ["sh", "-c", "timeout 12 wget -qO- http://web >/dev/null && cat /proc/net/arp"])
    assert code == 0, out
    return next(line.split()[3] for line in out.splitlines()[1:] if line.split()[0].endswith(".1"))


def test_deleting_a_pod_keeps_the_bridge_address(net: NetCluster) -> None:
    """netavark 1.4's bridge takes the lowest MAC of its ports; orchestra pins it, so deleting the pod
    whose veth the address came from changes nothing for the others: the client, whose ARP entry for
    its gateway holds that address, still reaches the Service at once."""
    client = net.get("Pod", "client")
    bridge = _host_veth(net, client).joinpath("master").resolve()
    assert (bridge / "addr_assign_type").read_text().strip() == "3", (
        f"{bridge.name}'s MAC address is not pinned"
    )
    before = (bridge / "address").read_text().strip()
    assert _gateway_mac(net, client) == before
    replicas = int(net.get("Deployment", "web")["spec"]["replicas"])  # earlier tests scale and replace pods
    pods = net.running_ready("app=web", replicas)
    veths = {p["metadata"]["name"]: _host_veth(net, p) for p in pods}
    holder = next((n for n, v in veths.items() if (v / "address").read_text().strip() == before), None)
    victim = holder or sorted(veths)[0]
    print(
        f"bridge {bridge.name} {before}; deleting {victim} (holds the bridge's address: {holder is not None})"
    )
    index = (veths[victim] / "ifindex").read_text()

    def gone() -> bool:  # a replacement pod's veth may take the same name, never the same index
        try:
            return (veths[victim] / "ifindex").read_text() != index
        except OSError:
            return True
    net.run(lambda: net.client.delete(net.rt("Pod"), NS, victim, grace_period_seconds=0))
    net.wait(f"{victim}'s veth gone", gone, limit=30)
    assert (bridge / "address").read_text().strip() == before
    t0 = time.monotonic()
    assert _gateway_mac(net, client) == before  # the cached entry still right: the request went through
    print(f"the client reached the Service {time.monotonic() - t0:.2f} s after the deletion")
