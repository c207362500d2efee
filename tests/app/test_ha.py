"""Two run_cluster servers over one real etcd (tests/etcdserver.py): both serve the API, exactly one
holds the Lease kube-system/orchestra-controllers and runs the controllers; stopping it hands the
Lease to the other, which starts its controllers and schedules pods."""

from __future__ import annotations

import functools
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import trio

from orchestra.api.errors import ApiError
from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.app import ClusterConfig, run_cluster
from orchestra.app.config import Cluster
from orchestra.app.joinservers import follow_servers, load_known
from orchestra.app.leader import LEASE_NAME, LEASE_NAMESPACE
from orchestra.client.http import Endpoint, HttpClient
from tests.etcdserver import EtcdServer, cluster_or_skip, start_or_skip

IDENTITY_SELECTOR = "apiserver.kubernetes.io/identity=orchestra"
SHARED = ("token", "encryption-config.json", "pki/ca.crt", "pki/ca.key", "pki/sa.key")


def share_state(first: Path, second: Path) -> None:
    """What a second server needs of the first's state directory (README: several servers)."""
    for name in SHARED:
        (second / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(first / name, second / name)


@asynccontextmanager
async def server(state: Path, etcd: EtcdServer,
                 prefix: str) -> AsyncIterator[tuple[Cluster, trio.CancelScope]]:
    cfg = ClusterConfig(state_dir=state, listen_port=0, podman=False, network=False, store=etcd.url,
                        timings="fast", simulate_nodes=1, simulated_node_prefix=prefix)
    async with trio.open_nursery() as nursery:
        running: Cluster = await nursery.start(run_cluster, cfg)
        yield running, nursery.cancel_scope
        nursery.cancel_scope.cancel()


def holder(cluster: Cluster) -> str:
    rt = cluster.core.registry.by_kind("Lease")
    assert rt is not None
    return str(cluster.core.get(rt, LEASE_NAMESPACE, LEASE_NAME)["spec"]["holderIdentity"])


def servers(cluster: Cluster) -> list[str]:
    rt = cluster.core.registry.by_kind("Lease")
    assert rt is not None
    selector = parse_label_selector(IDENTITY_SELECTOR)
    leases = cluster.core.list(rt, "kube-system", label_selector=selector).items
    return sorted(lease["spec"]["holderIdentity"] for lease in leases)


async def wait_until(predicate: object, step: float = 0.05) -> None:
    while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 (state fed by a real etcd)
        await trio.sleep(step)


async def test_one_leader_runs_the_controllers_and_a_stopped_leader_hands_over(tmp_path: Path) -> None:
    etcd = start_or_skip()
    try:
        with trio.fail_after(90):
            async with server(tmp_path / "a", etcd, "sim-a-") as (a, stop_a):
                share_state(tmp_path / "a", tmp_path / "b")
                async with server(tmp_path / "b", etcd, "sim-b-") as (b, _):
                    assert a.elector.leading and a.controllers  # the first server won at once
                    assert not b.elector.leading and not b.controllers
                    assert holder(a) == holder(b) == a.elector.identity
                    assert b.server.ca_pem == a.server.ca_pem  # one cluster CA
                    cs = b.server.component_statuses.get("scheduler")["conditions"][0]
                    assert cs["status"] == "True" and a.elector.identity in cs["message"]
                    assert servers(b) == sorted([a.elector.identity, b.elector.identity])  # identity Leases
                    stop_a.cancel()  # a clean stop releases the Lease: b need not wait 6 s
                    stopped = trio.current_time()
                    await wait_until(lambda: b.elector.leading and b.controllers)
                    assert trio.current_time() - stopped < 5
                    assert holder(b) == b.elector.identity
                    assert servers(b) == [b.elector.identity]  # a deleted its identity Lease on the way out
                    pods = b.core.registry.by_kind("Pod")
                    assert pods is not None
                    await b.core.create(pods, "default", {"metadata": {"name": "p"}, "spec": {
                        "containers": [{"name": "c", "image": "busybox"}]}})
                    # only b's scheduler runs now: it binds the pod
                    await wait_until(lambda: (b.core.get(pods, "default", "p")["spec"].get("nodeName") or ""))
    finally:
        etcd.remove()


async def test_a_leader_whose_lease_is_taken_stops_its_controllers_then_leads_again(tmp_path: Path) -> None:
    """The Lease written by someone else (as a server that took it over would): the leader's renewals
    fail, it stops its controllers within the renew deadline, and once that holder's lease expired it
    leads again with a fresh set of controllers that work (a new term's informers)."""
    etcd = start_or_skip()
    try:
        with trio.fail_after(90):
            async with server(tmp_path / "a", etcd, "sim-a-") as (a, _):
                first = list(a.controllers)
                rt = a.core.registry.by_kind("Lease")
                assert rt is not None and first
                lease = a.core.get(rt, LEASE_NAMESPACE, LEASE_NAME)
                lease["spec"]["holderIdentity"] = "someone-else"
                await a.core.update(rt, LEASE_NAMESPACE, LEASE_NAME, lease, None)
                taken = trio.current_time()
                await wait_until(lambda: not a.elector.leading)
                assert trio.current_time() - taken <= 4 + 1 + 0.5  # fast: 4 s renew deadline, 1 s retry
                assert a.controllers == []
                cs = a.server.component_statuses.get("controller-manager")["conditions"][0]
                assert "standby; leader someone-else" in cs["message"]
                await wait_until(lambda: a.elector.leading and a.controllers)  # 6 s after it saw the change
                assert trio.current_time() - taken >= 6
                assert not any(new is old for new in a.controllers for old in first)
                spec = a.core.get(rt, LEASE_NAMESPACE, LEASE_NAME)["spec"]
                assert spec["holderIdentity"] == a.elector.identity and spec["leaseTransitions"] == 1
                pods = a.core.registry.by_kind("Pod")
                assert pods is not None
                await a.core.create(pods, "default", {"metadata": {"name": "p"}, "spec": {
                    "containers": [{"name": "c", "image": "busybox"}]}})
                await wait_until(lambda: (a.core.get(pods, "default", "p")["spec"].get("nodeName") or ""))
    finally:
        etcd.remove()


async def test_a_leader_that_loses_etcd_stops_leading_within_its_lease(tmp_path: Path) -> None:
    """etcd killed: the leader's renewals fail, it stops its controllers before the lease (6 s, fast)
    could have expired for anyone else; etcd back: it leads again."""
    etcd = start_or_skip()
    try:
        with trio.fail_after(90):
            async with server(tmp_path / "a", etcd, "sim-a-") as (a, _):
                assert a.elector.leading and a.controllers
                await trio.to_thread.run_sync(etcd.kill)
                lost = trio.current_time()
                await wait_until(lambda: not a.elector.leading)
                # the last renewal was at most 1 s before the kill; then the 4 s renew deadline
                assert trio.current_time() - lost <= 4 + 1 + 0.5 < 6
                assert a.controllers == []
                await trio.to_thread.run_sync(etcd.start)
                await wait_until(lambda: a.elector.leading and a.controllers)
                assert holder(a) == a.elector.identity
    finally:
        etcd.remove()


async def test_the_kubernetes_endpoints_and_kubeconfigs_list_every_live_server(tmp_path: Path) -> None:
    """Each server keeps `default/kubernetes` listing every live server (from the identity Leases) and
    its kubeconfig naming the others; a client given one server learns the other from the Endpoints
    (app/joinservers.py) and keeps working through it once the first stops; the stopped server leaves
    the Endpoints at once."""
    etcd = start_or_skip()
    try:
        with trio.fail_after(90):
            async with server(tmp_path / "a", etcd, "sim-a-") as (a, stop_a):
                share_state(tmp_path / "a", tmp_path / "b")
                async with server(tmp_path / "b", etcd, "sim-b-") as (b, _):
                    ep_rt = a.core.registry.by_kind("Endpoints")
                    assert ep_rt is not None

                    def listed() -> set[str]:
                        eps = b.core.get(ep_rt, "default", "kubernetes")
                        return {f"https://{addr['ip']}:{s['ports'][0]['port']}"
                                for s in eps.get("subsets") or [] for addr in s["addresses"]}

                    await wait_until(lambda: listed() == {a.url, b.url}, step=0.2)  # b: at its first renewal
                    # a renews every 10 s: by then its kubeconfig names b as a context of its own
                    await wait_until(lambda: b.url in (tmp_path / "a" / "kubeconfig").read_text(), step=0.2)
                    doc = orjson.loads((tmp_path / "a" / "kubeconfig").read_bytes())
                    assert doc["current-context"] == "orchestra"
                    contexts = {c["name"]: c["context"]["cluster"] for c in doc["contexts"]}
                    clusters = {c["name"]: c["cluster"]["server"] for c in doc["clusters"]}
                    assert clusters[contexts["orchestra"]] == a.url
                    assert clusters[contexts[f"orchestra-{b.url.removeprefix('https://')}"]] == b.url
                    slice_rt = b.core.registry.by_kind("EndpointSlice")
                    assert slice_rt is not None
                    slices = b.core.list(slice_rt, "default").items
                    ports = {p["port"] for s in slices if s["metadata"]["name"].startswith("kubernetes")
                             for p in s["ports"]}
                    assert ports == {int(a.url.rsplit(":", 1)[1]), int(b.url.rsplit(":", 1)[1])}

                    endpoint = Endpoint.from_kubeconfig(tmp_path / "a" / "kubeconfig")
                    async with HttpClient(endpoint) as client, trio.open_nursery() as follow:
                        await follow.start(functools.partial(follow_servers, client, a.url, tmp_path / "node",
                                                             interval=0.2))
                        await wait_until(lambda: set(client.servers) == {a.url, b.url})
                        assert load_known(tmp_path / "node") == [a.url, b.url]  # the join URL first
                        stop_a.cancel()  # a stops: it takes itself out of the Endpoints on the way
                        await wait_until(lambda: listed() == {b.url}, step=0.2)
                        rt = client.kind("ConfigMap")
                        await client.create(rt, "default", {"metadata": {"name": "through-b"}})
                        assert client.url == b.url  # the create could not connect to a: sent to b
                        events = client.watch(rt, "default", field_selector="metadata.name=through-b")
                        assert (await anext(events))[0] == "ADDED"
                        await events.aclose()  # type: ignore[attr-defined]
                        follow.cancel_scope.cancel()
    finally:
        etcd.remove()


async def test_a_server_on_three_etcd_members_writes_with_two_and_answers_503_without_a_quorum(
        tmp_path: Path) -> None:
    """etcd of three members: one killed, writes through the API still succeed (a quorum of 2/3, the
    store moving to the next member); two stopped, a write is kube's 503 naming the storage and the
    server keeps serving (reads from its cache); the two back, writes succeed again."""
    etcd = cluster_or_skip()
    try:
        with trio.fail_after(120):
            cfg = ClusterConfig(state_dir=tmp_path / "a", listen_port=0, podman=False, network=False,
                                store=etcd.url, timings="fast", simulate_nodes=1, simulated_node_prefix="q-")
            async with trio.open_nursery() as nursery:
                a: Cluster = await nursery.start(run_cluster, cfg)
                async with HttpClient(Endpoint.from_kubeconfig(a.kubeconfig)) as client:
                    rt = client.kind("ConfigMap")
                    await trio.to_thread.run_sync(etcd.members[0].kill)  # the store's first endpoint
                    # (while the other two elect a leader, if it led, etcd holds writes: a 503 then)
                    await trio.to_thread.run_sync(etcd.wait_quorum)
                    for i in range(5):
                        await client.create(rt, "default", {"metadata": {"name": f"two-of-three-{i}"}})
                    await trio.to_thread.run_sync(etcd.members[1].stop)
                    with pytest.raises(ApiError) as lost:
                        await client.create(rt, "default", {"metadata": {"name": "no-quorum"}})
                    assert lost.value.code == 503, lost.value
                    assert "storage is unavailable: etcd http://127.0.0.1:" in str(lost.value)
                    assert "are a majority of the etcd cluster's members up?" in str(lost.value)
                    got = await client.get(rt, "default", "two-of-three-4")  # served from the cache
                    assert got["metadata"]["name"] == "two-of-three-4"
                    await trio.to_thread.run_sync(lambda: etcd.restart(etcd.members[0], etcd.members[1]))
                    with trio.fail_after(30):
                        while True:  # the cluster elects a leader, the store's watch resumes
                            try:
                                await client.create(rt, "default", {"metadata": {"name": "quorum-back"}})
                                break
                            except ApiError as exc:
                                assert exc.code == 503, exc
                                await trio.sleep(0.5)
                    names = {c["metadata"]["name"] for c in (await client.list(rt, "default"))[0]}
                    assert {f"two-of-three-{i}" for i in range(5)} | {"quorum-back"} <= names
                    # ("no-quorum" may be there: etcd may commit a proposal that timed out once the quorum
                    # is back, as with kube-apiserver's "request timed out")
                nursery.cancel_scope.cancel()
    finally:
        etcd.remove()
