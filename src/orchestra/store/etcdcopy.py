"""Copying a whole set of keys into etcd, all or nothing, and reading one back out: what `orchestra store
migrate` moves a cluster with (orchestra.app.migrate decides what and where).

Owns:
- read_keys(client, prefix, within): every key under prefix + within at one revision (paged, as
  EtcdBackend.open reads them), with `prefix` cut off: the store's keys;
- copy_into(client, kvs, ...): write `kvs` under `prefix`, all or nothing from a reader's view:
    1. the keys already under prefix + within are read; any (or a marker, below) refuses the copy
       with TargetNotEmpty unless `overwrite`;
    2. a marker key, prefix + MARKER (outside `within`, so no store watching `within` sees it),
       is created (a compare on its revision: two copies at once cannot both start). It says a
       copy is under way; while it exists etcd holds a partial copy, and orchestra's start refuses
       such an etcd (unfinished_copy()): a copy killed mid-way (kill -9, power loss) is never
       served as if it were the cluster;
    3. the keys are written in txns of at most MAX_TXN_OPS ops and MAX_TXN_BYTES bytes (etcd's
       default --max-txn-ops is 128 and --max-request-bytes 1.5 MiB: one txn cannot hold a
       cluster), in the order of their revisions in the source, each txn comparing every key's mod
       revision with what step 1 read (absent: 0), so a writer meanwhile fails the copy; with
       `overwrite`, keys under prefix + within that `kvs` lacks are deleted the same way;
    4. what etcd then holds under prefix + within is read back and compared with `kvs`;
    5. the marker is deleted: the copy is complete.
  On any failure (etcd lost, a txn refused, a compare failed, cancellation) every txn that
  happened is undone, newest first: a key that was written is deleted or, if it existed before,
  put back with its old value (with a new revision: etcd has no other way), and the marker goes.
  CopyError says what failed and that nothing was left; if undoing failed too, it says so and the
  marker stays (so orchestra refuses that etcd, and the copy can be run again with `overwrite`).
Values are copied byte for byte: etcd never sees anything the source did not hold (encrypted values
stay encrypted). Revisions are etcd's: the source's create/mod revisions and versions cannot be
kept (a put gets etcd's next revision, version 1).

Must not import: anything from orchestra except orchestra.store.{types, etcdclient}.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import trio

from orchestra.store.etcdclient import EtcdClient
from orchestra.store.types import Compare, Delete, KeyValue, Put, StoreError

MARKER = "/orchestra/migration"  # beside /registry/, never inside it: no store watches it
MAX_TXN_OPS = 128  # etcd's --max-txn-ops default
MAX_TXN_BYTES = 1 << 20  # well below etcd's --max-request-bytes default (1.5 MiB), with room for keys
PAGE = 10_000
UNDO_TIMEOUT = 60.0  # undoing a failed copy: bounded, even after a cancellation


class CopyError(StoreError):
    """The copy did not happen (`undone`: nothing of it is left) or failed half-way and could not be
    undone (`undone` False: the marker stays)."""

    def __init__(self, message: str, *, undone: bool) -> None:
        super().__init__(message)
        self.undone = undone


class TargetNotEmpty(StoreError):
    """etcd already holds keys under the prefix (`count` of them), or the marker of an unfinished
    copy (`unfinished`, its note): refused without `overwrite`."""

    def __init__(self, count: int, unfinished: dict[str, object] | None) -> None:
        what = f"{count} keys" if count else "no keys"
        note = " and the marker of a copy that did not finish" if unfinished is not None else ""
        super().__init__(f"etcd already holds {what}{note}")
        self.count = count
        self.unfinished = unfinished


async def read_keys(client: EtcdClient, prefix: str, within: str) -> tuple[list[KeyValue], int]:
    """Every key under prefix + within at one revision (paged), `prefix` cut off; and that revision."""
    scope = prefix + within
    kvs, revision, more = await client.range(scope, limit=PAGE)
    while more:
        page, _, more = await client.range(scope, revision=revision, limit=PAGE, start=kvs[-1].key + "\0")
        kvs += page
    cut = len(prefix)
    return [KeyValue(kv.key[cut:], kv.value, kv.create_revision, kv.mod_revision, kv.version)
            for kv in kvs], revision


async def unfinished_copy(client: EtcdClient, prefix: str = "") -> dict[str, object] | None:
    """The note of a copy into this etcd that has not finished (or was killed), or None."""
    kv, _ = await client.get(prefix + MARKER)
    if kv is None:
        return None
    try:
        note = orjson.loads(kv.value)
    except orjson.JSONDecodeError:
        note = {}
    return note if isinstance(note, dict) else {}


Step = tuple[list[Compare], list[Put | Delete], list[Put | Delete]]  # compares, ops, their undo


async def copy_into(client: EtcdClient, kvs: Sequence[KeyValue], *, prefix: str = "", within: str = "",
                    overwrite: bool = False, note: dict[str, object] | None = None) -> int:
    """Write `kvs` (store keys, each under `within`) into etcd under `prefix`, all or nothing (the
    module docstring has the steps); etcd's revision once it is done."""
    for kv in kvs:
        if not kv.key.startswith(within):
            raise StoreError(f"key {kv.key!r} is outside {within!r}: it cannot be copied")
    existing, _ = await read_keys(client, prefix, within)
    marker, revision = await client.get(prefix + MARKER)
    if (existing or marker is not None) and not overwrite:
        raise TargetNotEmpty(len(existing), await unfinished_copy(client, prefix) if marker else None)
    marker_key = prefix + MARKER
    body = orjson.dumps({**(note or {}), "keys": len(kvs), "revision": revision})
    started = await client.txn([Compare(marker_key, "mod", "==", marker.mod_revision if marker else 0)],
                               [Put(marker_key, body)])
    if not started.succeeded:
        raise CopyError("another copy into this etcd started at the same time; nothing was written",
                        undone=True)
    done: list[Step] = []
    try:
        for step in plan(kvs, existing, prefix):
            done.append(step)  # before the call: a txn whose answer was lost may have happened
            resp = await client.txn(step[0], step[1])
            if not resp.succeeded:
                done.pop()  # it did not: its keys are another writer's now
                raise StoreError("a key changed in etcd while it was being copied (another writer uses "
                                 "this etcd)")
            done.append(step)
        await _check_copied(client, kvs, prefix, within)
    except BaseException as exc:
        await _undo_all(client, done, marker_key, exc)
        raise
    resp = await client.txn([], [Delete(marker_key)])
    return resp.revision


def plan(kvs: Sequence[KeyValue], existing: Sequence[KeyValue], prefix: str) -> list[Step]:
    """The txns of a copy: puts of `kvs` in source revision order, then deletes of the `existing`
    keys `kvs` lacks; each op guarded by the key's revision in `existing`, each with its undo."""
    before = {kv.key: kv for kv in existing}
    wanted = {kv.key for kv in kvs}
    steps: list[Step] = []
    compares: list[Compare] = []
    ops: list[Put | Delete] = []
    undo: list[Put | Delete] = []
    size = 0

    def add(key: str, op: Put | Delete, weight: int) -> None:
        nonlocal compares, ops, undo, size
        if ops and (len(ops) >= MAX_TXN_OPS or size + weight > MAX_TXN_BYTES):
            steps.append((compares, ops, undo))
            compares, ops, undo, size = [], [], [], 0
        old = before.get(key)
        compares.append(Compare(prefix + key, "mod", "==", old.mod_revision if old else 0))
        ops.append(op)
        undo.append(Put(prefix + key, old.value) if old else Delete(prefix + key))
        size += weight

    for kv in sorted(kvs, key=lambda kv: (kv.mod_revision, kv.key)):
        add(kv.key, Put(prefix + kv.key, kv.value), len(kv.key) + len(kv.value))
    for kv in existing:
        if kv.key not in wanted:
            add(kv.key, Delete(prefix + kv.key), len(kv.key) + len(kv.value))
    if ops:
        steps.append((compares, ops, undo))
    return steps


async def _check_copied(client: EtcdClient, kvs: Sequence[KeyValue], prefix: str, within: str) -> None:
    held, _ = await read_keys(client, prefix, within)
    want = {kv.key: kv.value for kv in kvs}
    got = {kv.key: kv.value for kv in held}
    if got != want:
        extra = sorted(got.keys() - want.keys())[:3]
        missing = sorted(want.keys() - got.keys())[:3]
        changed = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])[:3]
        raise StoreError(f"etcd does not hold the copy (another writer?): extra {extra}, missing "
                         f"{missing}, changed {changed}")


async def _undo_all(client: EtcdClient, done: list[Step], marker_key: str, cause: BaseException) -> None:
    """Undo every txn of `done`, newest first, then drop the marker; raise CopyError if the cause
    is an ordinary error (a cancellation or KeyboardInterrupt goes on as it was, once undone)."""
    failure: BaseException | None = None
    with trio.CancelScope(shield=True), trio.move_on_after(UNDO_TIMEOUT) as scope:
        try:
            for _compares, _ops, undo in reversed(done):
                await client.txn([], undo)
            await client.txn([], [Delete(marker_key)])
        except (StoreError, OSError) as exc:
            failure = exc
    if scope.cancelled_caught:
        failure = TimeoutError(f"undoing took over {UNDO_TIMEOUT:g} s")
    if not isinstance(cause, Exception):
        return
    if failure is None:
        raise CopyError(f"{cause}; everything written was undone: etcd holds what it held before",
                        undone=True) from cause
    raise CopyError(f"{cause}; undoing the partial copy failed too ({failure}): etcd holds part of it "
                    f"and the marker {marker_key!r}, which orchestra refuses to start on; run the copy "
                    "again with --overwrite once etcd is reachable", undone=False) from cause


__all__ = ["MARKER", "CopyError", "TargetNotEmpty", "copy_into", "plan", "read_keys", "unfinished_copy"]
