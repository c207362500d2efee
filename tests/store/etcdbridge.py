"""The etcd row of the store contract suite: an etcd-backed Store, seen through the sync Store API the
contract tests and the state machine use, with revisions counted from the store's first one.

An etcd store is etcd's watch cache: its writes are awaitable (Store.aput/adelete/atxn) and its
watch runs in Store.run(). EtcdBridge keeps the store and its run() in a trio loop of their own (a
thread), calls the awaitable writes there and waits for them, and reads there too (nothing touches
the store from two threads). Every test of the session shares one etcd, each store under a key
prefix of its own, so etcd's revision when a store first opens is wherever the session is: the
bridge subtracts it (`base`) from every revision going out and adds it to every one coming in, which
is exactly what the contract says about revisions (they start after the store's first, and each
write bumps them by one); nothing else is translated."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs
import outcome
import trio

from orchestra.store import (
    CompactedError,
    Compare,
    CompareFailed,
    Delete,
    Event,
    FutureRevisionError,
    KeyValue,
    Put,
    Store,
    StoreClosedError,
    TxnResult,
    Watcher,
)

T = TypeVar("T")


class TrioThread:
    """A trio loop in a thread, for sync code to call into."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self.nursery: trio.Nursery | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self._ready.set()
            await trio.sleep_forever()

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if trio.lowlevel.in_trio_run():  # an async test's loop: it waits (blocked) for this one
            return self._from_trio(lambda: outcome.acapture(afn, *args))
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        if trio.lowlevel.in_trio_run():
            async def call() -> outcome.Outcome[T]:
                return outcome.capture(fn, *args)

            return self._from_trio(call)
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def _from_trio(self, capture: Callable[[], Awaitable[outcome.Outcome[T]]]) -> T:
        """Run in the store's loop and block the calling loop until done (trio.from_thread refuses
        a call from inside a trio run)."""
        assert self._token is not None and self.nursery is not None
        done = threading.Event()
        result: list[outcome.Outcome[T]] = []

        async def task() -> None:
            result.append(await capture())
            done.set()

        self._token.run_sync_soon(self.nursery.start_soon, task)
        done.wait()
        return result[0].unwrap()

    def stop(self) -> None:
        if self.nursery is not None and self._thread.is_alive():
            try:
                self.run_sync(self.nursery.cancel_scope.cancel)
            except trio.RunFinishedError:
                pass
        self._thread.join(10)


class EtcdBridge:
    """A Store over etcd (at `url`, keys under `prefix`) behind the sync Store API; see the module."""

    def __init__(self, url: str, prefix: str, base: int | None = None, **kwargs: Any) -> None:
        self.loop = TrioThread()
        self.store: Store = self.loop.run(self._open, url, prefix, kwargs)
        self.base = self.store.revision if base is None else base
        self.closed = False

    async def _open(self, url: str, prefix: str, kwargs: dict[str, Any]) -> Store:
        store = await Store.open_etcd(url, prefix=prefix, **kwargs)
        assert self.loop.nursery is not None
        await self.loop.nursery.start(store.run)
        return store

    # --- revisions in and out --------------------------------------------------------------------

    def _out(self, revision: int) -> int:
        return revision - self.base if revision else 0

    def _in(self, revision: int) -> int:
        """A KeyValue's revision (0: absent)."""
        return revision + self.base if revision else 0

    def _at(self, revision: int) -> int:
        """A store revision (0: the store's first)."""
        return revision + self.base

    def _kv(self, kv: KeyValue | None) -> KeyValue | None:
        if kv is None:
            return None
        return attrs.evolve(kv, create_revision=self._out(kv.create_revision),
                            mod_revision=self._out(kv.mod_revision))

    def _event(self, ev: Event) -> Event:
        return Event(ev.type, self._kv(ev.kv), self._kv(ev.prev_kv))  # type: ignore[arg-type]

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._check_open()
        try:
            return self.loop.run_sync(lambda: fn(*args, **kwargs))
        except (CompactedError, FutureRevisionError, CompareFailed) as exc:
            raise self._error(exc) from None

    def _await(self, afn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        async def call() -> T:
            return await afn(*args, **kwargs)

        self._check_open()
        try:
            return self.loop.run(call)
        except (CompactedError, FutureRevisionError, CompareFailed) as exc:
            raise self._error(exc) from None
        except trio.RunFinishedError:
            # close() ended the store's loop while this call waited in it: the store closed under it
            # (a local store's waiter gets StoreClosedError; here the loop went before the answer did)
            if self.closed:
                raise StoreClosedError("store closed") from None
            raise

    def _check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("store closed")

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, CompactedError):
            return CompactedError(self._out(exc.requested), self._out(exc.compact_revision))
        if isinstance(exc, FutureRevisionError):
            return FutureRevisionError(self._out(exc.requested), self._out(exc.current))
        assert isinstance(exc, CompareFailed)
        return CompareFailed(exc.key, self._out(exc.expected), self._out(exc.actual))

    # --- the Store API ---------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._out(self._call(lambda: self.store.revision))

    @property
    def compact_revision(self) -> int:
        return self._out(self._call(lambda: self.store.compact_revision))

    def put(self, key: str, value: bytes, *, expect_mod_revision: int | None = None) -> KeyValue:
        expect = None if expect_mod_revision is None else self._in(expect_mod_revision)
        kv = self._await(self.store.aput, key, value, expect_mod_revision=expect)
        return self._kv(kv)  # type: ignore[return-value]

    def delete(self, key: str, *, expect_mod_revision: int | None = None) -> KeyValue | None:
        expect = None if expect_mod_revision is None else self._in(expect_mod_revision)
        return self._kv(self._await(self.store.adelete, key, expect_mod_revision=expect))

    def txn(self, compares: Sequence[Compare], success: Sequence[Put | Delete],
            failure: Sequence[Put | Delete] = ()) -> TxnResult:
        compares = [attrs.evolve(c, value=self._in(c.value)) if c.target in ("mod", "create")
                    and isinstance(c.value, int) else c for c in compares]
        result = self._await(self.store.atxn, compares, success, failure)
        responses = [self._kv(kv) for kv in result.responses]
        return TxnResult(result.succeeded, self._out(result.revision), responses)

    def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        at = None if revision is None else self._at(revision)
        return self._kv(self._call(self.store.get, key, revision=at))

    def range(self, prefix: str, *, revision: int | None = None, limit: int | None = None,
              start_after: str | None = None) -> tuple[list[KeyValue], int]:
        at = None if revision is None else self._at(revision)
        kvs, read_at = self._call(self.store.range, prefix, revision=at, limit=limit, start_after=start_after)
        return [self._kv(kv) for kv in kvs], self._out(read_at)  # type: ignore[misc]

    def count(self, prefix: str) -> int:
        return self._call(self.store.count, prefix)

    def prefix_revision(self, prefix: str) -> int:
        return self._out(self._call(self.store.prefix_revision, prefix))

    def watch(self, prefix: str, *, start_revision: int) -> BridgedWatcher:
        watcher = self._call(self.store.watch, prefix, start_revision=self.base + max(start_revision, 1))
        return BridgedWatcher(self, watcher)

    def compact(self, revision: int) -> None:
        self._call(self.store.compact, self._at(revision))

    async def snapshot(self) -> None:
        await trio.to_thread.run_sync(self._await, self.store.snapshot)

    async def wait_durable(self, revision: int) -> None:
        await trio.to_thread.run_sync(self._await, self.store.wait_durable, self._at(revision))

    def statistics(self) -> dict[str, object]:
        stats = self._call(self.store.statistics)
        for field in ("revision", "compact_revision"):
            stats[field] = self._out(int(stats[field]))  # type: ignore[call-overload]
        return stats

    def close(self) -> None:
        """Close the store (its watchers end with StoreClosedError), then stop its loop."""
        if self.closed:
            return
        self.loop.run(self.store.aclose)
        self.closed = True
        self.loop.stop()


class BridgedWatcher:
    def __init__(self, bridge: EtcdBridge, watcher: Watcher) -> None:
        self._bridge = bridge
        self._watcher = watcher

    def receive_nowait(self) -> list[Event]:
        bridge = self._bridge
        return [bridge._event(ev) for ev in bridge._call(self._watcher.receive_nowait)]

    # (the async face: what a watcher of the test's own loop would be; each wait is a thread blocked
    # on the store's loop, abandoned if the test is cancelled)
    def __aiter__(self) -> BridgedWatcher:
        return self

    async def __anext__(self) -> list[Event]:
        bridge = self._bridge
        batch = await trio.to_thread.run_sync(bridge._await, self._watcher.__anext__, abandon_on_cancel=True)
        return [bridge._event(ev) for ev in batch]

    async def __aenter__(self) -> BridgedWatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def aclose(self) -> None:
        self.close()

    def backlog(self, limit: int) -> int:
        return self._bridge._call(self._watcher.backlog, limit)

    def close(self) -> None:
        if not self._bridge.closed:
            self._bridge._call(self._watcher.close)
