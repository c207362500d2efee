"""store/etcdcopy.py against a real etcd (the session's, each test under a prefix of its own): a whole
set of keys copied into etcd and read back byte for byte (memory -> etcd -> a durable log), refused
over keys already there unless overwriting, undone entirely when etcd refuses a txn half-way, and
the marker of a copy that did not finish; plus the read-only open of a durable log the copy reads
from, which changes no file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestra.store import KeyValue, Put, Store, StoreError
from orchestra.store.etcdclient import EtcdClient
from orchestra.store.etcdcopy import (
    MARKER,
    MAX_TXN_OPS,
    CopyError,
    TargetNotEmpty,
    copy_into,
    plan,
    read_keys,
    unfinished_copy,
)
from tests.etcdserver import EtcdServer, unique_prefix

WITHIN = "/registry/"


@pytest.fixture
async def client(etcd_server: EtcdServer) -> AsyncIterator[EtcdClient]:
    c = EtcdClient([etcd_server.endpoint])
    yield c
    await c.aclose()


def cluster_keys(n: int = 300) -> Store:
    """A memory store with more keys than one etcd txn takes, some updated and some deleted (so the
    revisions are not the keys' order), binary values included."""
    store = Store.open_memory()
    for i in range(n):
        store.put(f"{WITHIN}core/configmaps/default/cm-{i:04d}", b'{"i":%d}' % i)
    for i in range(0, n, 7):
        store.put(f"{WITHIN}core/configmaps/default/cm-{i:04d}", b'{"updated":%d}' % i)
    for i in range(3, n, 50):
        store.delete(f"{WITHIN}core/configmaps/default/cm-{i:04d}")
    store.put(f"{WITHIN}core/secrets/default/s", b"k8s:enc:aesgcm:v1:key1:\x00\xff binary")
    return store


def as_dict(kvs: list[KeyValue]) -> dict[str, bytes]:
    return {kv.key: kv.value for kv in kvs}


async def test_memory_to_etcd_to_a_durable_log_keeps_every_key_and_value(
        client: EtcdClient, tmp_path: Path) -> None:
    source = cluster_keys()
    kvs, _ = source.range("")
    prefix = unique_prefix("copy")
    revision = await copy_into(client, kvs, prefix=prefix, within=WITHIN, note={"from": "test"})
    copied, at = await read_keys(client, prefix, WITHIN)
    assert as_dict(copied) == as_dict(kvs) and at == revision
    assert all(kv.version == 1 and kv.mod_revision <= revision for kv in copied)  # etcd's revisions
    # written in the source's revision order: what was modified later has the later etcd revision
    etcd_revision = {kv.key: kv.mod_revision for kv in copied}
    in_source_order = [etcd_revision[kv.key] for kv in sorted(kvs, key=lambda kv: kv.mod_revision)]
    assert in_source_order == sorted(in_source_order) and len(set(in_source_order)) > 2
    assert await unfinished_copy(client, prefix) is None  # the marker is gone once it is done
    durable = Store.open_durable(tmp_path / "log")
    try:
        durable.txn([], [Put(kv.key, kv.value) for kv in copied])
        assert as_dict(durable.range("")[0]) == as_dict(kvs)
    finally:
        durable.close()


async def test_a_target_holding_keys_is_refused_and_overwrite_replaces_them(client: EtcdClient) -> None:
    prefix = unique_prefix("full")
    await client.put(f"{prefix}{WITHIN}old/only-here", b"old")
    await client.put(f"{prefix}{WITHIN}core/configmaps/default/cm-0000", b"old value")
    await client.put(f"{prefix}/elsewhere", b"not ours")  # outside /registry/: never touched
    kvs, _ = cluster_keys(20).range("")
    with pytest.raises(TargetNotEmpty) as refused:
        await copy_into(client, kvs, prefix=prefix, within=WITHIN)
    assert refused.value.count == 2 and refused.value.unfinished is None
    assert len((await read_keys(client, prefix, WITHIN))[0]) == 2  # untouched
    await copy_into(client, kvs, prefix=prefix, within=WITHIN, overwrite=True)
    assert as_dict((await read_keys(client, prefix, WITHIN))[0]) == as_dict(kvs)
    assert (await client.get(f"{prefix}/elsewhere"))[0] is not None


async def test_a_txn_etcd_refuses_half_way_undoes_everything_written(client: EtcdClient) -> None:
    prefix = unique_prefix("undo")
    await client.put(f"{prefix}{WITHIN}core/configmaps/default/cm-0001", b"was here")
    await client.put(f"{prefix}{WITHIN}stale/key", b"stale")
    before = as_dict((await read_keys(client, prefix, WITHIN))[0])
    store = cluster_keys(400)
    too_big = store.put(f"{WITHIN}zz/huge", b"x" * (2 << 20))  # over etcd's 1.5 MiB request limit
    kvs, _ = store.range("")
    assert len(plan(kvs, [], prefix)) > 3  # several txns go through before the one etcd refuses
    with pytest.raises(CopyError) as failed:
        await copy_into(client, kvs, prefix=prefix, within=WITHIN, overwrite=True)
    assert failed.value.undone and "etcd holds what it held before" in str(failed.value)
    assert as_dict((await read_keys(client, prefix, WITHIN))[0]) == before
    assert await unfinished_copy(client, prefix) is None
    assert too_big.key not in before


async def test_the_marker_of_an_unfinished_copy_refuses_a_new_one_until_overwrite(client: EtcdClient) -> None:
    prefix = unique_prefix("marker")
    await client.put(prefix + MARKER, b'{"from": "/srv/state/store"}')  # as a killed copy leaves it
    await client.put(f"{prefix}{WITHIN}partial/1", b"1")
    assert await unfinished_copy(client, prefix) == {"from": "/srv/state/store"}
    kvs, _ = cluster_keys(5).range("")
    with pytest.raises(TargetNotEmpty) as refused:
        await copy_into(client, kvs, prefix=prefix, within=WITHIN)
    assert refused.value.unfinished == {"from": "/srv/state/store"} and refused.value.count == 1
    await copy_into(client, kvs, prefix=prefix, within=WITHIN, overwrite=True)
    assert await unfinished_copy(client, prefix) is None
    assert as_dict((await read_keys(client, prefix, WITHIN))[0]) == as_dict(kvs)


async def test_keys_outside_the_copied_range_are_refused(client: EtcdClient) -> None:
    kvs = [KeyValue("/elsewhere/x", b"1", 1, 1, 1)]
    with pytest.raises(StoreError, match="outside '/registry/'"):
        await copy_into(client, kvs, prefix=unique_prefix("out"), within=WITHIN)


def test_plan_keeps_within_etcds_txn_limits() -> None:
    kvs = [KeyValue(f"{WITHIN}k/{i}", b"v" * 10_000, i + 1, i + 1, 1) for i in range(1000)]
    steps = plan(kvs, [], "")
    assert all(len(ops) <= MAX_TXN_OPS and sum(len(op.value) for op in ops if isinstance(op, Put)) <= 1 << 20
               for _, ops, _ in steps)
    assert sum(len(ops) for _, ops, _ in steps) == 1000


# --- the read-only open of a durable log -------------------------------------------------------------


def files_of(directory: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in sorted(directory.iterdir())}


async def test_a_read_only_open_changes_no_file_and_refuses_writes(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    store = Store.open_durable(directory, snapshot_every=10)
    for i in range(30):
        store.put(f"/registry/k/{i}", b"v%d" % i)
    await store.snapshot()
    store.put("/registry/k/after", b"after the snapshot")
    store.close()
    segment = max(directory.glob("wal-*.log"))
    with segment.open("ab") as f:
        f.write(b"\x07torn")  # an unacknowledged write cut short: a writer's open truncates it
    (directory / "snap-00000000000000000001.snap").write_bytes(b"superseded")  # a writer removes it
    before = files_of(directory)
    reader = Store.open_durable(directory, read_only=True)
    try:
        assert reader.count("") == 31 and reader.get("/registry/k/after") is not None
        with pytest.raises(StoreError, match="read-only"):
            reader.put("/registry/k/new", b"x")
        with pytest.raises(StoreError, match="in use"):
            Store.open_durable(directory)  # locked while it is read: no server starts on it
    finally:
        reader.close()
    assert files_of(directory) == before
    with pytest.raises(StoreError, match="holds no store"):
        Store.open_durable(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()
