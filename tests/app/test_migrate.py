"""`orchestra store migrate` (app/migrate.py): a cluster run by run_cluster on the durable log moves to
a throwaway etcd and back, and serves the same objects after each move - a Deployment with its pods,
a ConfigMap with finalizers and an owner, an encrypted Secret, a CRD and its custom resource - with
their uid, creationTimestamp, generation, managedFields and status; plus every refusal, each with a
message that says what to do, and the CLI around it."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner

from orchestra.app import ClusterConfig, run_cluster
from orchestra.app.config import Cluster
from orchestra.app.migrate import MigrationError, migrate
from orchestra.app.running import servers_on
from orchestra.app.state import UnfinishedMigrationError, refuse_unfinished_migration
from orchestra.cli.main import cli
from orchestra.store import Store
from orchestra.store.etcdclient import EtcdClient
from orchestra.store.etcdcopy import MARKER, read_keys
from orchestra.store.etcdkeys import KUBE_LAYOUT
from tests.etcdserver import EtcdServer, start_or_skip

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
}
PATHS = {
    "deployment": "/apis/apps/v1/namespaces/default/deployments/web",
    "configmap": "/api/v1/namespaces/default/configmaps/kept",
    "secret": "/api/v1/namespaces/default/secrets/db",
    "crd": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    "widget": "/apis/example.com/v1/namespaces/default/widgets/w1",
}


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    server = start_or_skip()
    yield server
    server.remove()


@asynccontextmanager
async def cluster(state: Path, store: str) -> AsyncIterator[tuple[Cluster, httpx.AsyncClient]]:
    cfg = ClusterConfig(state_dir=state, listen_port=0, podman=False, network=False, store=store,
                        simulate_nodes=1)
    async with trio.open_nursery() as nursery:
        running: Cluster = await nursery.start(run_cluster, cfg)
        tls = ssl.create_default_context(cafile=running.ca_cert)
        async with httpx.AsyncClient(base_url=running.url, verify=tls, timeout=30,
                                     headers={"Authorization": f"Bearer {running.token}"}) as http:
            yield running, http
        running.shutdown.stop()  # as Ctrl-C does: the local etcd stops after everything that uses it


async def ok(response: Any) -> dict[str, Any]:
    response = await response
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def wait_available(http: httpx.AsyncClient) -> list[str]:
    """The Deployment's pods' uids once it is Available with 2 ready replicas."""
    with trio.fail_after(30):
        while True:
            status = (await ok(http.get(PATHS["deployment"]))).get("status", {})
            pods = (await ok(http.get("/api/v1/namespaces/default/pods",
                                      params={"labelSelector": "app=web"})))["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if status.get("availableReplicas") == 2 and len(live) == 2:
                return sorted(p["metadata"]["uid"] for p in live)
            await trio.sleep(0.1)


async def populate(http: httpx.AsyncClient) -> None:
    web = await ok(http.post("/apis/apps/v1/namespaces/default/deployments", json=DEPLOYMENT))
    await ok(http.post("/api/v1/namespaces/default/configmaps", json={
        "metadata": {"name": "kept", "finalizers": ["example.com/keep"], "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": web["metadata"]["uid"]}]},
        "data": {"a": "1"}}))
    await ok(http.post("/api/v1/namespaces/default/secrets", json={
        "metadata": {"name": "db"}, "stringData": {"password": "s3cret"}}))
    await ok(http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD))
    with trio.fail_after(10):
        while True:  # the CRD is served once it is Established
            if (await http.get("/apis/example.com/v1/namespaces/default/widgets")).status_code == 200:
                break
            await trio.sleep(0.05)
    await ok(http.post("/apis/example.com/v1/namespaces/default/widgets", json={
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}))
    await ok(http.put(PATHS["widget"] + "/status", json={
        **(await ok(http.get(PATHS["widget"]))), "status": {"phase": "Ready"}}))
    scaled = await ok(http.get(PATHS["deployment"]))
    scaled["spec"]["template"]["metadata"]["annotations"] = {"rev": "2"}  # generation 2
    await ok(http.put(PATHS["deployment"], json=scaled))


async def objects(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The objects, each without its resourceVersion (the store's revision: it changes with the store)."""
    found = {}
    for name, path in PATHS.items():
        obj = await ok(http.get(path))
        del obj["metadata"]["resourceVersion"]
        found[name] = obj
    return found


async def keys_of_log(state: Path) -> dict[str, bytes]:
    store = Store.open_durable(state / "store", read_only=True)
    try:
        return {kv.key: kv.value for kv in store.range("")[0]}
    finally:
        store.close()


async def keys_of_etcd(etcd: EtcdServer) -> dict[str, bytes]:
    client = EtcdClient([etcd.endpoint])
    try:
        return {kv.key: kv.value for kv in (await read_keys(client, "", "/registry/"))[0]}
    finally:
        await client.aclose()


async def test_a_cluster_moves_to_etcd_and_back_with_every_object(tmp_path: Path) -> None:
    etcd = start_or_skip()  # its own: the cluster's keys are under /registry/, as in production
    state = tmp_path / "state"
    try:
        with trio.fail_after(180):
            async with cluster(state, "durable") as (_, http):
                await populate(http)
                pods = await wait_available(http)
                before = await objects(http)
            assert before["deployment"]["metadata"]["generation"] == 2
            assert before["widget"]["status"] == {"phase": "Ready"}
            logged = await keys_of_log(state)
            done = await migrate(state, to=etcd.url)
            assert done.keys == len(logged) and done.encrypted >= 1
            copied = await keys_of_etcd(etcd)
            # byte for byte, each object under kube-apiserver's key for it: the Secret as it was
            # encrypted at rest (bound to its store key, which the etcd key maps back to)
            assert copied == {KUBE_LAYOUT.to_etcd(key): value for key, value in logged.items()}
            assert copied["/registry/secrets/default/db"].startswith(b"k8s:enc:aesgcm:v1:key1:")
            assert "/registry/deployments/default/web" in copied, sorted(copied)
            assert await keys_of_log(state) == logged  # the source is never changed
            async with cluster(state, etcd.url) as (running, http):
                assert running.store.statistics()["backend"] == "etcd"
                assert await objects(http) == before
                assert await wait_available(http) == pods  # the same pods, adopted
                secret = await ok(http.get(PATHS["secret"]))
                assert secret["data"] == {"password": "czNjcmV0"}
                await ok(http.post("/api/v1/namespaces/default/configmaps",
                                   json={"metadata": {"name": "made-on-etcd"}}))
            with pytest.raises(MigrationError, match=r"already holds a cluster .* give --overwrite"):
                await migrate(state, to="durable", source=etcd.url)
            on_etcd = await keys_of_etcd(etcd)
            back = await migrate(state, to="durable", source=etcd.url, overwrite=True)
            assert back.keys == len(on_etcd)
            logged = await keys_of_log(state)
            assert {KUBE_LAYOUT.to_etcd(key): value for key, value in logged.items()} == on_etcd
            assert not (state / "store.migrating").exists() and not (state / "store.replaced").exists()
            async with cluster(state, "durable") as (running, http):
                assert running.store.statistics()["backend"] == "durable"
                again = await objects(http)
                assert again["configmap"] == before["configmap"] and again["widget"] == before["widget"]
                assert again["secret"] == before["secret"]
                assert again["deployment"]["metadata"] == before["deployment"]["metadata"]
                assert await wait_available(http) == pods
                await ok(http.get("/api/v1/namespaces/default/configmaps/made-on-etcd"))
    finally:
        etcd.remove()


# --- refusals --------------------------------------------------------------------------------------


def durable_cluster(state: Path, keys: dict[str, bytes]) -> None:
    store = Store.open_durable(state / "store")
    for key, value in keys.items():
        store.put(key, value)
    store.close()


CM = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}'


async def test_a_missing_or_empty_source_is_refused(tmp_path: Path, etcd: EtcdServer) -> None:
    with pytest.raises(MigrationError, match="does not exist: give the state directory"):
        await migrate(tmp_path / "nowhere", to=etcd.url)
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(MigrationError, match="holds no durable log: nothing to migrate"):
        await migrate(state, to=etcd.url)
    durable_cluster(state, {})
    with pytest.raises(MigrationError, match="holds no objects: nothing to migrate"):
        await migrate(state, to=etcd.url)
    with pytest.raises(MigrationError, match="holds no keys under /registry/: nothing to migrate"):
        await migrate(state, to="durable", source=etcd.url)
    with pytest.raises(MigrationError, match="has no local etcd"):
        await migrate(state, to="durable", source="etcd")
    odd = tmp_path / "odd"
    odd.mkdir()
    durable_cluster(odd, {"/registry/core/configmaps/default/a": CM, "/elsewhere/x": CM})
    with pytest.raises(MigrationError, match=r"'/elsewhere/x' is outside '/registry/'.*nothing was"):
        await migrate(odd, to=etcd.url)
    assert await keys_of_etcd(etcd) == {}


async def test_a_running_server_an_unreachable_etcd_and_a_full_target_are_refused(
        tmp_path: Path, etcd: EtcdServer) -> None:
    state = tmp_path / "state"
    state.mkdir()
    durable_cluster(state, {"/registry/core/configmaps/default/a": CM})
    held = Store.open_durable(state / "store")  # as a running server holds it
    try:
        with pytest.raises(MigrationError, match="is in use: a server runs on it; stop it first"):
            await migrate(state, to=etcd.url)
    finally:
        held.close()
    with pytest.raises(MigrationError, match=r"etcd unreachable at http://127\.0\.0\.1:1: .*Nothing was"):
        await migrate(state, to="etcd://127.0.0.1:1")
    client = EtcdClient([etcd.endpoint])
    try:
        await client.put("/registry/configmaps/default/other", CM)
        with pytest.raises(MigrationError, match=r"already holds 1 keys under /registry/ .* --overwrite"):
            await migrate(state, to=etcd.url)
        assert (await migrate(state, to=etcd.url, overwrite=True)).keys == 1
        assert list(await keys_of_etcd(etcd)) == ["/registry/configmaps/default/a"]
        with pytest.raises(MigrationError, match="between the durable log and etcd"):
            await migrate(state, to=etcd.url, source=etcd.url)
    finally:
        await client.delete("/registry/configmaps/default/a")
        await client.aclose()


async def test_an_unfinished_migration_in_etcd_is_refused_by_up_and_by_migrate(
        tmp_path: Path, etcd: EtcdServer) -> None:
    client = EtcdClient([etcd.endpoint])
    try:
        await client.put(MARKER, b'{"from": "/srv/state/store"}')  # as a killed migration leaves it
        with pytest.raises(UnfinishedMigrationError, match="unfinished `orchestra store migrate`"):
            await refuse_unfinished_migration(etcd.url)
        state = tmp_path / "state"
        state.mkdir()
        with pytest.raises(MigrationError, match="holds an unfinished migration into it"):
            await migrate(state, to="durable", source=etcd.url)
        durable_cluster(state, {"/registry/core/configmaps/default/a": CM})
        with pytest.raises(MigrationError, match=r"unfinished migration .* run the migration again "
                                                 r"with --overwrite"):
            await migrate(state, to=etcd.url)
        await migrate(state, to=etcd.url, overwrite=True)
        await refuse_unfinished_migration(etcd.url)  # finished now
    finally:
        await client.delete(MARKER)
        await client.delete("/registry/configmaps/default/a")
        await client.aclose()


async def test_an_etcd_in_an_earlier_builds_key_layout_is_refused_at_start(etcd: EtcdServer) -> None:
    client = EtcdClient([etcd.endpoint])
    try:
        await client.put("/registry/core/configmaps/default/a", CM)  # where earlier builds kept it
        with pytest.raises(UnfinishedMigrationError, match=r"key layout of an earlier orchestra development "
                                                            r"build \(/registry/core/configmaps/default/a;"):
            await refuse_unfinished_migration(etcd.url)
        await client.delete("/registry/core/configmaps/default/a")
        await client.put("/registry/configmaps/default/a", CM)  # kube-apiserver's key: this build's
        await refuse_unfinished_migration(etcd.url)
    finally:
        await client.delete("/registry/core/configmaps/default/a")
        await client.delete("/registry/configmaps/default/a")
        await client.aclose()


async def test_values_the_state_directorys_keys_cannot_read_are_refused(
        tmp_path: Path, etcd: EtcdServer) -> None:
    other = tmp_path / "other"
    other.mkdir()
    durable_cluster(other, {"/registry/core/secrets/default/s": b"k8s:enc:aesgcm:v1:key1:" + bytes(40)})
    with pytest.raises(MigrationError, match="1 stored values cannot be read with the encryption keys of"):
        await migrate(other, to=etcd.url)
    assert await keys_of_etcd(etcd) == {}


def test_servers_on_finds_an_orchestra_up_of_the_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    proc = tmp_path / "proc"

    def process(pid: int, argv: list[str], env: dict[str, str], cwd: Path = tmp_path) -> None:
        entry = proc / str(pid)
        entry.mkdir(parents=True)
        (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (entry / "stat").write_text(f"{pid} (x) S 77 0 0")
        (entry / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()))
        (entry / "cwd").symlink_to(cwd)

    process(10, ["python", "-m", "orchestra", "up", "--state-dir", "state"], {})  # relative to its cwd
    process(11, ["/venv/bin/orchestra", "up", "--no-network"], {"ORCHESTRA_STATE_DIR": str(state)})
    process(12, ["/venv/bin/orchestra", "up", f"--state-dir={tmp_path}/elsewhere"], {})
    process(13, ["/venv/bin/orchestra", "get", "pods", "--state-dir", str(state)], {})
    process(14, ["/venv/bin/orchestra", "up"], {"HOME": str(tmp_path / "home")})
    process(15, ["etcd", "--name", "orchestra", "--data-dir", str(state / "etcd" / "data")], {})
    assert sorted(servers_on(state, proc)) == ["its local etcd (pid 15, parent 77)", "orchestra up (pid 10)",
                                               "orchestra up (pid 11)"]
    default = tmp_path / "home" / ".local" / "share" / "orchestra"
    assert servers_on(default, proc) == ["orchestra up (pid 14)"]


def test_the_cli_says_what_went_wrong_and_exits_1(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["store", "migrate", "--to", "somewhere"])
    assert result.exit_code == 1 and "not an etcd URL: 'somewhere'" in result.output
    result = runner.invoke(cli, ["store", "migrate", "--to", "durable", "--state-dir", str(tmp_path / "x")])
    assert result.exit_code == 1 and "error: " in result.output and "does not exist" in result.output
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert "Move a stopped cluster" in runner.invoke(cli, ["store", "migrate", "--help"]).output


async def test_to_the_local_etcd_and_back_leaves_it_for_up_store_etcd(tmp_path: Path) -> None:
    from tests.e2e.upserver import processes_naming
    from tests.etcdserver import etcd_missing

    if etcd_missing():
        pytest.skip(etcd_missing() or "")
    state = tmp_path / "state"
    with trio.fail_after(120):
        async with cluster(state, "durable") as (_, http):
            await populate(http)
            await wait_available(http)
            before = await objects(http)
        done = await migrate(state, to="etcd")
        assert done.target.startswith("the local etcd etcd://127.0.0.1:") and done.keys > 10
        assert (state / "etcd" / "bootstrapped").exists()
        assert not await trio.to_thread.run_sync(processes_naming, state)  # stopped after the copy
        with pytest.raises(MigrationError, match="already holds"):
            await migrate(state, to="etcd")  # now it holds the cluster
        async with cluster(state, "etcd") as (running, http):
            assert running.store.statistics()["backend"] == "etcd"
            assert await objects(http) == before
        back = await migrate(state, to="durable", overwrite=True)  # --from: the local etcd
        assert back.source.startswith("the local etcd ")
        async with cluster(state, "durable") as (running, http):
            assert (await objects(http))["secret"] == before["secret"]
    assert not await trio.to_thread.run_sync(processes_naming, state)


async def test_a_migration_killed_between_its_renames_gets_the_old_log_back(
        tmp_path: Path, etcd: EtcdServer) -> None:
    state = tmp_path / "state"
    state.mkdir()
    durable_cluster(state, {"/registry/core/configmaps/default/a": CM})
    (state / "store").rename(state / "store.replaced")  # killed after the first rename
    (state / "store.migrating").mkdir()  # and its new log, complete or not
    with pytest.raises(MigrationError, match="already holds a cluster"):
        await migrate(state, to="durable", source=etcd.url)
    assert list(await keys_of_log(state)) == ["/registry/core/configmaps/default/a"]
    assert sorted(p.name for p in state.iterdir()) == ["store"]
