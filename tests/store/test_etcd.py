"""The etcd backend against a real etcd (Debian's etcd-server, tests/etcdserver.py): the gateway
client, the store as etcd's watch cache (writes from elsewhere arrive through etcd's watch), and
what etcd going away and coming back looks like. The MVCC contract itself runs on etcd in
test_mvcc.py, test_watch.py and test_machine.py (the `etcd` row of tests/store/backends.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable

import pytest
import trio

from orchestra.store import (
    CompactedError,
    Compare,
    CompareFailed,
    Delete,
    KeyValue,
    Put,
    Store,
    StoreError,
    StoreUnavailableError,
)
from orchestra.store.etcd import endpoints_from_url
from orchestra.store.etcdclient import EtcdClient, Get
from orchestra.store.etcdkeys import KUBE_LAYOUT
from tests.etcdserver import EtcdServer, start_or_skip, unique_prefix


@pytest.fixture
async def client(etcd_server: EtcdServer) -> AsyncIterator[EtcdClient]:
    c = EtcdClient([etcd_server.endpoint])
    yield c
    await c.aclose()


async def until(check: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll `check` (the store learns of etcd's writes through a watch this test does not drive)."""
    with trio.fail_after(limit):
        while True:
            if check():
                return
            await trio.sleep(0.02)


async def open_running(nursery: trio.Nursery, url: str, prefix: str, **kwargs: object) -> Store:
    store = await Store.open_etcd(url, prefix=prefix, **kwargs)  # type: ignore[arg-type]
    await nursery.start(store.run)
    return store


# --- the client ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoints"),
    [
        ("etcd://127.0.0.1:2379", ["http://127.0.0.1:2379"]),
        ("etcd://a:1,b:2/", ["http://a:1", "http://b:2"]),
        ("etcd://a", ["http://a:2379"]),
        ("etcds://[::1]:2379", ["https://[::1]:2379"]),
    ],
    ids=["one", "several", "default-port", "tls-ipv6"],
)
def test_etcd_urls(url: str, endpoints: list[str]) -> None:
    assert endpoints_from_url(url) == endpoints


@pytest.mark.parametrize("url", ["http://a:1", "etcd://", "etcd://:5"])
def test_bad_etcd_urls(url: str) -> None:
    with pytest.raises(ValueError, match="not an etcd URL"):
        endpoints_from_url(url)


async def test_client_put_range_delete_txn(client: EtcdClient) -> None:
    with trio.fail_after(10):
        p = unique_prefix("client")
        rev, prev = await client.put(p + "a", b"1")
        assert prev is None
        rev2, prev = await client.put(p + "a", b"2")
        assert rev2 == rev + 1 and prev == KeyValue(p + "a", b"1", rev, rev, 1)
        await client.put(p + "b", b"x")
        kvs, at, more = await client.range(p, limit=1)
        assert [kv.key for kv in kvs] == [p + "a"] and more and at == rev + 2
        kvs, _, more = await client.range(p, revision=rev)
        assert kvs == [KeyValue(p + "a", b"1", rev, rev, 1)] and not more
        failed = await client.txn([Compare(p + "a", "mod", "==", rev)], [Put(p + "a", b"3")], [Get(p + "a")])
        assert not failed.succeeded and failed.responses == [KeyValue(p + "a", b"2", rev, rev + 1, 2)]
        done = await client.txn([Compare(p + "a", "mod", "==", rev + 1)],
                                [Put(p + "a", b"3"), Delete(p + "b")])
        assert done.succeeded and done.revision == rev + 3
        assert done.responses[1] is not None and done.responses[1].value == b"x"  # the deleted one
        drev, gone = await client.delete(p + "b")
        assert gone is None and drev == rev + 3  # deleting nothing bumps nothing


@pytest.mark.parametrize(
    ("compares", "holds"),
    [
        ([Compare("absent", "value", "!=", b"")], True),  # etcd alone says False here
        ([Compare("k", "value", "!=", b"v")], False),
        ([Compare("k", "value", "!=", b"w")], True),
        ([Compare("k", "value", "!=", b"w"), Compare("absent", "value", "!=", b"q")], True),
        ([Compare("k", "value", "!=", b"w"), Compare("k", "version", "==", 2)], False),
        ([Compare("absent", "value", "==", b"")], False),
        ([Compare("absent", "mod", "==", 0)], True),
    ],
    ids=["ne-absent", "ne-equal", "ne-other", "two-ne", "ne-and-plain-false", "eq-absent", "mod-absent"],
)
async def test_value_compares_on_absent_keys_are_the_stores(
    client: EtcdClient, compares: list[Compare], holds: bool
) -> None:
    with trio.fail_after(10):
        p = unique_prefix("cmp")
        await client.put(p + "k", b"v")
        compares = [Compare(p + c.key, c.target, c.op, c.value) for c in compares]
        result = await client.txn(compares, [Get(p + "k")], [Get(p + "absent")])
        assert result.succeeded is holds
        assert result.responses == ([KeyValue(p + "k", b"v", *[result.revision] * 2, 1)] if holds else [None])


async def test_client_watch_then_compaction_cancels_an_old_watch(client: EtcdClient) -> None:
    with trio.fail_after(10):
        p = unique_prefix("watch")
        first, _ = await client.put(p + "a", b"1")
        await client.put(p + "a", b"2")
        await client.delete(p + "a")
        async with client.watch(p, start_revision=first) as stream:
            created = await anext(stream)
            assert created.created
            resp = await anext(stream)
        assert [(t, kv.key, kv.mod_revision) for t, kv, _ in resp.events] == [
            ("PUT", p + "a", first), ("PUT", p + "a", first + 1), ("DELETE", p + "a", first + 2)]
        assert resp.events[2][2] == KeyValue(p + "a", b"2", first, first + 1, 2)  # prev_kv
        async with client.watch(p, start_revision=first, prev_kv=False) as stream:  # (the store's)
            await anext(stream)
            bare = await anext(stream)
        assert [(t, kv.value, prev) for t, kv, prev in bare.events] == [
            ("PUT", b"1", None), ("PUT", b"2", None), ("DELETE", b"", None)]
        await client.compact(first + 1)
        await client.compact(first)  # already compacted: not an error
        async with client.watch(p, start_revision=first) as stream:
            canceled = [r async for r in _until_canceled(stream)]
        assert canceled[-1].compact_revision >= first + 1
        with pytest.raises(CompactedError):
            await client.range(p, revision=first)
        assert (await client.status())["version"].startswith("3.")


async def _until_canceled(stream: AsyncIterator[object]) -> AsyncIterator:  # type: ignore[type-arg]
    async for resp in stream:
        yield resp
        if resp.canceled:  # type: ignore[attr-defined]
            return


async def test_unreachable_etcd_is_store_unavailable() -> None:
    with trio.fail_after(10):
        c = EtcdClient(["http://127.0.0.1:9", "http://127.0.0.1:10"], timeout=2)
        with pytest.raises(StoreUnavailableError, match=r"etcd unreachable at http://127\.0\.0\.1:9, http"):
            await c.put("k", b"v")
        await c.aclose()
        assert issubclass(StoreUnavailableError, OSError)  # in-process clients retry it as such
        with pytest.raises(StoreUnavailableError):
            await Store.open_etcd("etcd://127.0.0.1:9")


async def test_client_fails_over_to_the_next_endpoint(etcd_server: EtcdServer) -> None:
    with trio.fail_after(10):
        c = EtcdClient(["http://127.0.0.1:9", etcd_server.endpoint])
        rev, _ = await c.put(unique_prefix("failover") + "k", b"v")
        assert rev > 1
        await c.aclose()


# --- the store as etcd's watch cache ---------------------------------------------------------------


async def test_writes_through_one_store_reach_another_and_its_watchers(etcd_server: EtcdServer) -> None:
    with trio.fail_after(15):
        p = unique_prefix("two")
        async with trio.open_nursery() as nursery:
            one = await open_running(nursery, etcd_server.url, p)
            two = await open_running(nursery, etcd_server.url, p)
            w = two.watch("/registry/", start_revision=two.revision + 1)
            kv = await one.aput("/registry/pods/default/a", b"1", expect_mod_revision=0)
            assert one.get("/registry/pods/default/a") == kv  # read-your-writes, at once
            batch = await w.__anext__()
            assert [(e.type, e.kv) for e in batch] == [("PUT", kv)]
            assert two.revision == kv.mod_revision
            with pytest.raises(CompareFailed) as info:
                await two.aput("/registry/pods/default/a", b"2", expect_mod_revision=0)
            assert (info.value.expected, info.value.actual) == (0, kv.mod_revision)
            a, b = "/registry/pods/default/a", "/registry/pods/default/b"
            result = await two.atxn([Compare(a, "mod", "==", kv.mod_revision)], [Delete(a), Put(b, b"2")])
            assert result.succeeded and result.responses[0] == kv
            assert [e.type for e in await w.__anext__()] == ["DELETE", "PUT"]
            await until(lambda: one.revision >= result.revision)  # one learns of it through etcd only
            assert [k.key for k in one.range("/registry/")[0]] == ["/registry/pods/default/b"]
            assert one.statistics()["etcd_connected"] is True
            with pytest.raises(StoreError, match="awaitable writes"):
                one.put("/registry/x", b"sync")
            await w.aclose()
            await one.aclose()
            await two.aclose()


async def test_keys_written_by_etcdctl_arrive_and_keys_outside_are_left_alone(
    etcd_server: EtcdServer,
) -> None:
    with trio.fail_after(15):
        p = unique_prefix("ctl")
        async with trio.open_nursery() as nursery:
            store = await open_running(nursery, etcd_server.url, p, within="/registry/")
            env = dict(os.environ, ETCDCTL_API="3")
            for key in (p + "/registry/core/configmaps/ns/c", p + "/elsewhere"):
                await trio.to_thread.run_sync(lambda key=key: subprocess.run(
                    ["etcdctl", "--endpoints", etcd_server.endpoint, "put", key, "v"],
                    check=True, env=env, capture_output=True))
            await until(lambda: store.get("/registry/core/configmaps/ns/c") is not None)
            assert store.count("") == 1  # /elsewhere is not this store's
            with pytest.raises(StoreError, match="outside this store's keys"):
                await store.aput("/elsewhere", b"x")
            await store.aclose()


async def test_kube_apiservers_layout_in_etcd_writes_watches_and_a_reopen(etcd_server: EtcdServer) -> None:
    with trio.fail_after(15):
        p = unique_prefix("layout")
        raw = EtcdClient([etcd_server.endpoint])
        async with trio.open_nursery() as nursery:
            store = await open_running(nursery, etcd_server.url, p, within="/registry/", layout=KUBE_LAYOUT)
            node = await store.aput("/registry/core/nodes/n1", b"node")
            svc = await store.aput("/registry/core/services/default/web", b"svc")
            assert node.key == "/registry/core/nodes/n1" and svc.key == "/registry/core/services/default/web"
            held = {kv.key[len(p):]: kv.value for kv in (await raw.range(p))[0]}
            assert held == {"/registry/minions/n1": b"node", "/registry/services/specs/default/web": b"svc"}
            # an update and a compare are etcd's, on the etcd key
            with pytest.raises(CompareFailed):
                await store.aput("/registry/core/nodes/n1", b"again", expect_mod_revision=1)
            await store.aput("/registry/core/nodes/n1", b"again", expect_mod_revision=node.mod_revision)
            # what another writer puts at kube's key arrives under the store's; another layout's keys do not
            await raw.put(p + "/registry/deployments/default/web", b"dep")
            await raw.put(p + "/registry/core/pods/default/old", b"old layout")
            await until(lambda: store.get("/registry/apps/deployments/default/web") is not None)
            assert store.get("/registry/core/pods/default/old") is None
            with pytest.raises(StoreError, match="has no place in etcd's kube-apiserver key layout"):
                await store.aput("/registry/pods/default/x", b"x")
            async with store.watch("/registry/", start_revision=node.mod_revision) as events:
                await store.adelete("/registry/core/services/default/web")
                seen: list[tuple[str, str]] = []
                while ("DELETE", "/registry/core/services/default/web") not in seen:
                    seen += [(e.type, e.kv.key) for e in await events.__anext__()]
            assert seen == [("PUT", "/registry/core/nodes/n1"),
                            ("PUT", "/registry/core/services/default/web"),
                            ("PUT", "/registry/core/nodes/n1"),
                            ("PUT", "/registry/apps/deployments/default/web"),
                            ("DELETE", "/registry/core/services/default/web")]
            await store.aclose()
            again = await open_running(nursery, etcd_server.url, p, within="/registry/", layout=KUBE_LAYOUT)
            assert sorted(kv.key for kv in again.range("/registry/")[0]) == [
                "/registry/apps/deployments/default/web", "/registry/core/nodes/n1"]
            await again.aclose()
        await raw.aclose()


async def test_a_reopened_store_has_the_keys_and_etcd_is_compacted_an_interval_behind(
    etcd_server: EtcdServer,
) -> None:
    with trio.fail_after(20):
        p = unique_prefix("reopen")
        async with trio.open_nursery() as nursery:
            store = await open_running(nursery, etcd_server.url, p, compact_interval=0.3)
            first = await store.aput("k", b"1")
            second = await store.aput("k", b"2")
            # the second interval compacts to what the first saw
            await until(lambda: int(store.statistics()["etcd_compacted"]) >= second.mod_revision)  # type: ignore[call-overload]
            with pytest.raises(CompactedError):
                await store._backend.client.range(p, revision=first.mod_revision)  # type: ignore[attr-defined]
            assert int(store.statistics()["etcd_db_size"]) > 0  # type: ignore[call-overload]
            await store.aclose()
            again = await open_running(nursery, etcd_server.url, p)
            assert again.get("k") == second
            assert again.compact_revision == again.revision >= second.mod_revision
            with pytest.raises(CompactedError):
                again.watch("", start_revision=second.mod_revision)  # history before the open: re-list
            await again.aclose()


async def test_etcd_going_away_is_unavailable_and_coming_back_resumes_the_watch() -> None:
    server = start_or_skip()
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                store = await open_running(nursery, server.url, "/t/")
                before = await store.aput("a", b"1")
                await trio.to_thread.run_sync(server.kill)
                with pytest.raises(StoreUnavailableError, match="etcd unreachable"):
                    await store.aput("a", b"2")
                assert store.get("a") == before  # reads are served from the cache meanwhile
                await trio.to_thread.run_sync(server.start)
                writer = EtcdClient([server.endpoint])
                rev, _ = await writer.put("/t/b", b"from elsewhere")  # while the watch is still away
                await writer.aclose()
                await until(lambda: store.get("b") is not None, 15)  # the watch resumed from where it was
                assert store.get("b") == KeyValue("b", b"from elsewhere", rev, rev, 1)
                after = await store.aput("a", b"3", expect_mod_revision=before.mod_revision)
                assert after.version == 2
                assert int(store.statistics()["etcd_reconnects"]) >= 1  # type: ignore[call-overload]
                await store.aclose()
    finally:
        server.remove()


async def test_the_cache_follows_a_compaction_made_outside_orchestra() -> None:
    """`etcdctl compact` (or another server's compactor) drops history the cache still held: within a
    compaction check the cache drops it too, so a watch from before etcd's compaction revision is
    CompactedError (the API's 410) rather than history etcd itself would refuse; a watch from the
    compaction revision on still works, as etcd's own watch does."""
    server = start_or_skip()  # compaction is etcd-wide: not the session's shared etcd
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                store = await open_running(nursery, server.url, "/c/", compaction_check=0.05)
                first = await store.aput("k", b"1")
                writes = [await store.aput("k", str(i).encode()) for i in range(2, 12)]
                store.watch("", start_revision=first.mod_revision).close()  # the cache has it all
                target = writes[6].mod_revision
                await trio.to_thread.run_sync(lambda: subprocess.run(
                    ["etcdctl", "--endpoints", server.endpoint, "compact", str(target)],
                    check=True, env=dict(os.environ, ETCDCTL_API="3"), capture_output=True))
                await until(lambda: store.compact_revision == target - 1)
                with pytest.raises(CompactedError):
                    store.watch("", start_revision=target - 1)
                with pytest.raises(CompactedError):
                    store.range("", revision=target - 2)
                watcher = store.watch("", start_revision=target)  # etcd keeps `target` itself
                async with watcher:
                    batch = await watcher.__anext__()
                assert [e.kv.mod_revision for e in batch] == [w.mod_revision for w in writes[6:]]
                assert int(store.statistics()["etcd_compacted"]) == target  # type: ignore[call-overload]
                assert store.get("k") == writes[-1]  # the state is untouched
                await store.aclose()
    finally:
        server.remove()
