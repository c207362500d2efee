"""`orchestra up --store etcd://...` end to end: run_cluster over a real etcd (tests/etcdserver.py),
driven through the HTTPS API as a client would; the objects are etcd's keys under /registry/ with
etcd's mod revision as their resourceVersion, a restarted orchestra finds them, and an etcd that
goes away is kube's 503, not a 500 or a hang."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from orchestra.app import ClusterConfig, run_cluster
from orchestra.app.config import Cluster
from tests.etcdserver import EtcdServer, start_or_skip

CM = "/api/v1/namespaces/default/configmaps"


@asynccontextmanager
async def cluster(state: Path, etcd: EtcdServer) -> AsyncIterator[tuple[Cluster, httpx.AsyncClient]]:
    cfg = ClusterConfig(state_dir=state, listen_port=0, podman=False, network=False, store=etcd.url)
    async with trio.open_nursery() as nursery:
        running: Cluster = await nursery.start(run_cluster, cfg)
        tls = ssl.create_default_context(cafile=running.ca_cert)
        async with httpx.AsyncClient(base_url=running.url, verify=tls, timeout=30,
                                     headers={"Authorization": f"Bearer {running.token}"}) as http:
            yield running, http
        nursery.cancel_scope.cancel()


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"t": "etcd"}},
            "data": data}


MINE = {"labelSelector": "t=etcd"}  # (the namespace has kube-root-ca.crt too)


def etcdctl_get(etcd: EtcdServer, key: str) -> dict[str, Any]:
    out = subprocess.run(["etcdctl", "--endpoints", etcd.endpoint, "get", key, "-w", "json"], check=True,
                         capture_output=True, env=dict(os.environ, ETCDCTL_API="3")).stdout
    return dict(orjson.loads(out))


async def test_crud_and_watch_through_the_api_then_a_restart_finds_the_objects(tmp_path: Path) -> None:
    etcd = start_or_skip()
    try:
        with trio.fail_after(120):
            async with cluster(tmp_path / "state", etcd) as (running, http):
                assert running.store.statistics()["backend"] == "etcd"
                created = await http.post(CM, json=configmap("one", a="1"))
                assert created.status_code == 201, created.text
                rv = created.json()["metadata"]["resourceVersion"]
                key = "/registry/configmaps/default/one"  # kube-apiserver's layout
                stored = await trio.to_thread.run_sync(etcdctl_get, etcd, key)
                assert [str(kv["mod_revision"]) for kv in stored["kvs"]] == [rv]  # resourceVersion = etcd's
                listed = (await http.get(CM, params=MINE)).json()
                assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
                assert int(listed["metadata"]["resourceVersion"]) >= int(rv)
                obj = created.json()
                obj["data"] = {"a": "2"}
                updated = await http.put(f"{CM}/one", json=obj)
                assert updated.status_code == 200 and updated.json()["metadata"]["resourceVersion"] != rv
                stale = await http.put(f"{CM}/one", json=obj)  # the old resourceVersion: kube's Conflict
                assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
                assert (await http.post(CM, json=configmap("two"))).status_code == 201
                assert (await http.delete(f"{CM}/two")).status_code == 200
                watch = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
                events = await http.get(CM, params={**watch, **MINE})
                seen = [(e["type"], e["object"]["metadata"]["name"])
                        for e in map(orjson.loads, events.content.splitlines())]
                assert seen == [("MODIFIED", "one"), ("ADDED", "two"), ("DELETED", "two")]
                last_rv = updated.json()["metadata"]["resourceVersion"]
            async with cluster(tmp_path / "state", etcd) as (running, http):
                again = (await http.get(f"{CM}/one")).json()
                assert again["data"] == {"a": "2"} and again["metadata"]["resourceVersion"] == last_rv
                assert (await http.get(f"{CM}/two")).status_code == 404
                # the new cache starts at etcd's revision when it opened: older is kube's 410 Expired
                old = await http.get(CM, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"})
                assert old.status_code == 410 or b'"code":410' in old.content, old.content
    finally:
        etcd.remove()


async def test_etcd_away_is_503_with_a_clear_message_and_writes_resume_when_it_is_back(
    tmp_path: Path,
) -> None:
    etcd = start_or_skip()
    try:
        with trio.fail_after(120):
            async with cluster(tmp_path / "state", etcd) as (_, http):
                assert (await http.post(CM, json=configmap("before"))).status_code == 201
                await trio.to_thread.run_sync(etcd.kill)
                refused = await http.post(CM, json=configmap("during"))
                assert refused.status_code == 503, refused.text
                status = refused.json()
                assert status["reason"] == "ServiceUnavailable"
                assert status["message"].startswith("storage is unavailable: etcd unreachable at http://127.0.0.1:")
                assert (await http.get(f"{CM}/before")).status_code == 200  # reads: from the watch cache
                with trio.fail_after(10):
                    while True:  # `kubectl get cs`: etcd-0 unhealthy once the watch has lost etcd
                        cs = (await http.get("/api/v1/componentstatuses/etcd-0")).json()
                        if cs["conditions"][0]["status"] == "False":
                            break
                        await trio.sleep(0.1)
                assert cs["conditions"][0]["error"].startswith("etcd: etcd ")
                await trio.to_thread.run_sync(etcd.start)
                with trio.fail_after(30):
                    while True:  # the first writes after the restart may still be refused
                        if (await http.post(CM, json=configmap("after"))).status_code == 201:
                            break
                        await trio.sleep(0.2)
                names = {i["metadata"]["name"] for i in (await http.get(CM, params=MINE)).json()["items"]}
                assert names == {"before", "after"}
    finally:
        etcd.remove()


async def test_writes_without_a_resource_version_retry_conflicts_as_kube_does(tmp_path: Path) -> None:
    """Over etcd another writer can win between the API's read (from the cache) and its txn: a patch,
    an update without resourceVersion and a delete then read again and retry (GuaranteedUpdate)."""
    etcd = start_or_skip()
    try:
        with trio.fail_after(120):
            async with cluster(tmp_path / "state", etcd) as (_, http):
                assert (await http.post(CM, json=configmap("busy"))).status_code == 201
                merge = {"Content-Type": "application/merge-patch+json"}
                codes: list[int] = []

                async def patcher(who: str) -> None:
                    for i in range(15):
                        patch = {"metadata": {"labels": {f"{who}{i}": "x"}}}
                        codes.append((await http.patch(f"{CM}/busy", json=patch, headers=merge)).status_code)

                async def replacer() -> None:
                    for i in range(15):
                        obj = (await http.get(f"{CM}/busy")).json()
                        del obj["metadata"]["resourceVersion"]  # unconditional
                        obj["data"] = {"n": str(i)}
                        codes.append((await http.put(f"{CM}/busy", json=obj)).status_code)

                async with trio.open_nursery() as nursery:
                    for who in "ab":
                        nursery.start_soon(patcher, who)
                    nursery.start_soon(replacer)
                assert codes == [200] * 45
                final = (await http.get(f"{CM}/busy")).json()
                assert final["data"] == {"n": "14"}  # (the patches only add labels; a PUT may drop some)
                pinned = dict(final, metadata={**final["metadata"], "resourceVersion": "2"})
                assert (await http.put(f"{CM}/busy", json=pinned)).status_code == 409  # pinned: no retry
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(patcher, "c")
                    assert (await http.delete(f"{CM}/busy")).status_code == 200
    finally:
        etcd.remove()
