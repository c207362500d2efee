"""EtcdBackend: etcd v3 owns the revisions, the history and the durability; the in-process store is
its watch cache (kube-apiserver's cacher over etcd3 is the model; orchestra.store.backend's docstring
has the plan this follows).

Owns: the etcd side of a Store opened with Store.open_etcd():
- open(feed): a linearizable range of the keys -> feed.restore(header.revision, kvs), paged;
- serve(feed): the watch from feed.revision + 1 (with progress notifications; without prev_kv,
  which the cache has: etcd would read and send each event's previous value for nothing) whose
  events go to feed.apply(revision, ops), one revision at a time; reconnects (next endpoint,
  backoff up to 2 s) from where it was when the stream breaks;
- commit(compares, success, failure): a write is an etcd txn, which decides; it returns once the
  watch has brought its revision into the cache (read-your-writes), within `write_timeout`;
- upkeep(feed): compaction as kube-apiserver's compactor does it: every interval, compact etcd to
  the revision seen one interval before (never past what the cache has applied);
- the cache follows etcd's compaction, whoever made it: every `compaction_check` seconds (while the
  watch runs) a count-only read at the oldest revision the cache serves; if etcd no longer has it,
  a binary search finds etcd's compaction and the cache drops its history before it (feed.compact),
  so a watch or LIST from a revision etcd compacted is CompactedError (the API's 410), not history
  etcd itself would refuse;
- keys: etcd key = `prefix` + `layout`.to_etcd(the store's key) (orchestra.store.etcdkeys: orchestra
  lays its keys out as kube-apiserver does); only keys under `prefix` + `within` are kept, and of those
  only keys the layout maps back (another layout's keys are not the store's).
Errors: etcd unreachable, or a write not seen back in time, is StoreUnavailableError (the API's
503); a watch that etcd's compaction overtook cannot be resumed (the cache would miss events): the
serve task fails with StoreError saying so.

Must not import: anything from orchestra except orchestra.store.{types, backend, etcdclient, etcdkeys}.
"""

from __future__ import annotations

import heapq
import itertools
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

import attrs
import trio

from orchestra.store.backend import Feed
from orchestra.store.etcdclient import EtcdClient, Get, WatchResponse
from orchestra.store.etcdkeys import IDENTITY, KeyLayout
from orchestra.store.types import (
    DELETE,
    Compare,
    Delete,
    Event,
    KeyValue,
    Op,
    Put,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TxnResult,
)

COMPACT_INTERVAL = 300.0  # kube-apiserver's --etcd-compaction-interval default (5 min)
WRITE_TIMEOUT = 10.0  # a committed write not back through the watch by then is a 503
COMPACTION_CHECK = 5.0  # how often the cache checks that etcd still has the history it serves
PAGE = 10_000  # keys per range request at open (kube's cacher pages its initial list too)


def endpoints_from_url(url: str) -> list[str]:
    """`etcd://HOST:PORT[,HOST:PORT...]` (or `etcds://` for TLS) -> the gateway endpoints."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("etcd", "etcds") or not rest:
        raise ValueError(f"not an etcd URL: {url!r} (etcd://HOST:PORT[,HOST:PORT])")
    http = "https" if scheme == "etcds" else "http"
    endpoints = []
    for part in rest.strip("/").split(","):
        host = urlsplit(f"//{part.strip()}")
        if not host.hostname:
            raise ValueError(f"not an etcd URL: {url!r} (etcd://HOST:PORT[,HOST:PORT])")
        netloc = f"[{host.hostname}]" if ":" in host.hostname else host.hostname
        endpoints.append(f"{http}://{netloc}:{host.port or 2379}")
    return endpoints


class EtcdBackend:
    """See the module docstring. Construct, then Store.open_etcd(backend) (or Store.open_remote)."""

    name = "etcd"

    def __init__(self, client: EtcdClient, *, prefix: str = "", within: str = "",
                 compact_interval: float = COMPACT_INTERVAL, write_timeout: float = WRITE_TIMEOUT,
                 compaction_check: float = COMPACTION_CHECK, layout: KeyLayout = IDENTITY) -> None:
        self.client = client
        self.layout = layout
        self.compaction_check = compaction_check
        self.prefix = prefix
        self.within = within
        self.upkeep_interval = compact_interval
        self.write_timeout = write_timeout
        self._feed: Feed | None = None
        self._waiters: list[tuple[int, int, trio.Event]] = []  # (revision, tie, woken when applied)
        self._tie = itertools.count()
        self._compact_next = 0  # the revision upkeep() compacts to next time (seen one interval ago)
        self._stats: dict[str, object] = {"etcd_endpoints": ",".join(client.endpoints), "etcd_revision": 0,
                                          "etcd_compacted": 0, "etcd_db_size": 0, "etcd_connected": False,
                                          "etcd_error": "", "etcd_reconnects": 0}

    @classmethod
    def from_url(cls, url: str, *, tls: ssl.SSLContext | None = None, **kwargs: object) -> EtcdBackend:
        return cls(EtcdClient(endpoints_from_url(url), tls=tls), **kwargs)  # type: ignore[arg-type]

    # --- open and the watch ----------------------------------------------------------------------

    def recover(self, feed: Feed) -> None:
        raise StoreError("an etcd store opens with `await Store.open_etcd(...)`, not Store.open()")

    async def open(self, feed: Feed) -> None:
        """Range every key (linearizable, then paged at that revision) into the empty store."""
        scope = self.prefix + self.within
        kvs, revision, more = await self.client.range(scope, limit=PAGE)
        while more:
            page, _, more = await self.client.range(scope, revision=revision, limit=PAGE,
                                                    start=kvs[-1].key + "\0")
            kvs += page
        feed.restore(revision, self.layout.stored(kvs, len(self.prefix)))
        self._feed = feed
        self._compact_next = revision
        self._stats["etcd_revision"] = revision

    async def serve(self, feed: Feed, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The watch feeding the cache, until cancelled or the store closes; started once the first
        watch is created (or has failed once: the store serves reads while etcd is away). Beside it,
        the cache follows etcd's compaction (follow_compaction)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_compaction, feed)
            await self._watch(feed, task_status=task_status)
            nursery.cancel_scope.cancel()

    async def _watch(self, feed: Feed, *, task_status: trio.TaskStatus[None]) -> None:
        backoff = 0.1
        started = False
        while not feed.closed:
            try:
                start = feed.revision + 1
                async with self.client.watch(self.prefix + self.within, start_revision=start,
                                             prev_kv=False) as stream:  # (the cache has the previous)
                    async for resp in stream:
                        if resp.created:
                            self._stats.update(etcd_connected=True, etcd_error="")
                            backoff = 0.1
                            if not started:
                                task_status.started()
                                started = True
                        self._receive(feed, resp)
            except StoreUnavailableError as exc:
                self._stats.update(etcd_connected=False, etcd_error=str(exc))
                self._stats["etcd_reconnects"] = int(self._stats["etcd_reconnects"]) + 1  # type: ignore[call-overload]
            if not started:
                task_status.started()
                started = True
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _follow_compaction(self, feed: Feed) -> None:
        while not feed.closed:
            await trio.sleep(self.compaction_check)
            try:
                await self.follow_compaction(feed)
            except StoreUnavailableError:
                pass  # etcd away: the watch loop reports it; check again next time

    async def follow_compaction(self, feed: Feed) -> None:
        """If etcd compacted past the oldest revision the cache serves (compact_revision + 1), find
        etcd's compaction revision C (the oldest it still has) and compact the cache to C - 1: a watch
        then starts at C or later, as etcd's own watch must."""
        oldest = feed.compact_revision + 1
        newest = feed.revision
        key = self.prefix + self.within
        if oldest > newest or await self.client.has_revision(key, oldest):
            return
        gone = oldest  # etcd dropped it; C is in (gone, newest + 1]
        if not await self.client.has_revision(key, newest):
            kept = newest + 1  # compacted past everything the cache holds (its watch fails on its own)
        else:
            kept = newest
            while kept - gone > 1:
                middle = (gone + kept) // 2
                if await self.client.has_revision(key, middle):
                    kept = middle
                else:
                    gone = middle
        if not feed.closed:
            feed.compact(kept - 1)
        self._stats["etcd_compacted"] = max(int(self._stats["etcd_compacted"]), kept)  # type: ignore[call-overload]

    def _receive(self, feed: Feed, resp: WatchResponse) -> None:
        if resp.canceled:
            raise StoreError(
                f"etcd's watch from revision {feed.revision + 1} was cancelled "
                f"({resp.cancel_reason or f'compacted at {resp.compact_revision}'}): the cache cannot "
                "catch up without a re-list; restart orchestra")
        cut = len(self.prefix)
        ops: list[Op] = []
        revision = 0
        for kind, kv, _prev in resp.events:
            if kv.mod_revision != revision and ops:
                feed.apply(revision, ops)
                ops = []
            revision = kv.mod_revision
            key = self.layout.from_etcd(kv.key[cut:])
            if key is not None:
                ops.append(Delete(key) if kind == DELETE else Put(key, kv.value))
        if ops:
            feed.apply(revision, ops)
        self._stats["etcd_revision"] = max(resp.revision, revision)
        self._wake(feed.revision)

    def _wake(self, applied: int) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= applied:
            heapq.heappop(waiters)[2].set()

    async def _until_applied(self, revision: int) -> None:
        feed = self._feed
        if feed is None:
            raise StoreError("the etcd backend is not open")
        if feed.revision >= revision:
            return
        event = trio.Event()
        heapq.heappush(self._waiters, (revision, next(self._tie), event))
        with trio.move_on_after(self.write_timeout):
            await event.wait()
            if feed.closed:
                raise StoreClosedError("store closed")
            return
        raise StoreUnavailableError(
            f"etcd committed revision {revision} but its watch did not bring it back within "
            f"{self.write_timeout:g} s (etcd: {self._stats['etcd_error'] or 'connected'})")

    # --- writes ----------------------------------------------------------------------------------

    def append(self, revision: int, events: Sequence[Event]) -> None:
        raise StoreError("etcd decides every write: use the store's awaitable writes (aput, adelete, atxn)")

    async def commit(self, compares: Sequence[Compare], success: Sequence[Op],
                     failure: Sequence[Op]) -> TxnResult:
        """One etcd txn; a txn that wrote returns once the cache holds its revision. Responses as
        Store.txn's (the new KeyValue of a Put, the previous one or None of a Delete), except that a
        failed txn with an empty failure branch answers the compare keys' current KeyValues, in
        compare order (what CompareFailed reports)."""
        for key in {c.key for c in compares} | {op.key for op in (*success, *failure)}:
            self._check_key(key)
        on_failure: list[Put | Delete | Get] = list(failure)
        if not failure:
            on_failure = [Get(key) for key in dict.fromkeys(c.key for c in compares)]
        resp = await self.client.txn([attrs.evolve(c, key=self._etcd_key(c.key)) for c in compares],
                                     [attrs.evolve(op, key=self._etcd_key(op.key)) for op in success],
                                     [attrs.evolve(op, key=self._etcd_key(op.key)) for op in on_failure])
        taken: Sequence[Put | Delete | Get] = success if resp.succeeded else on_failure
        responses: list[KeyValue | None] = []
        wrote = False
        for op, prev in zip(taken, resp.responses, strict=True):
            prev = None if prev is None else KeyValue(op.key, prev.value, prev.create_revision,
                                                      prev.mod_revision, prev.version)
            if isinstance(op, Put):
                responses.append(KeyValue(op.key, op.value, prev.create_revision if prev else resp.revision,
                                          resp.revision, prev.version + 1 if prev else 1))
                wrote = True
            else:
                responses.append(prev)
                wrote = wrote or (isinstance(op, Delete) and prev is not None)
        if wrote:  # (a txn that wrote nothing answers etcd's revision, maybe of keys outside ours)
            await self._until_applied(resp.revision)
        return TxnResult(resp.succeeded, resp.revision, responses)

    def _check_key(self, key: str) -> None:
        if not key.startswith(self.within):
            raise StoreError(f"key {key!r} is outside this store's keys ({self.within!r}...)")

    def _etcd_key(self, key: str) -> str:
        return self.prefix + self.layout.to_etcd(key)

    async def wait_durable(self, revision: int) -> None:
        await self._until_applied(revision)  # etcd made it durable before it answered the write

    # --- upkeep ----------------------------------------------------------------------------------

    async def snapshot(self, feed: Feed) -> None:
        return  # etcd snapshots itself

    async def upkeep(self, feed: Feed) -> None:
        """Compact etcd to the revision seen one interval ago (kube-apiserver's compactor), and note
        etcd's database size."""
        target = min(self._compact_next, feed.revision)
        self._compact_next = feed.revision
        try:
            if target > int(self._stats["etcd_compacted"]):  # type: ignore[call-overload]
                await self.client.compact(target)
                self._stats["etcd_compacted"] = target
                feed.compact(target - 1)  # etcd keeps `target` itself: a watch may start there
            self._stats["etcd_db_size"] = int((await self.client.status()).get("dbSize", 0))
        except StoreUnavailableError as exc:  # etcd away: the next interval compacts further
            self._stats["etcd_error"] = str(exc)

    async def status(self) -> dict[str, object]:
        """etcd's own view (maintenance status of the endpoint that answers)."""
        return await self.client.status()

    def statistics(self) -> dict[str, object]:
        return dict(self._stats)

    def close(self) -> None:
        """Wake writers still waiting (they fail on the closed store); the client's connections are
        closed by aclose() (Store.run's end does it) or the garbage collector."""
        for _, _, event in self._waiters:
            event.set()
        self._waiters.clear()

    async def aclose(self) -> None:
        self.close()
        with trio.CancelScope(shield=True):
            await self.client.aclose()
