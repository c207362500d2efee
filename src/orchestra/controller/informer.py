"""Informer: list → read-only cache (with indexes) → watch, re-listing when the watch breaks.

Owns: the local cache controllers read from, and turning the API's watch stream into
`handler(event_type, old, new)` calls. `run()` lists, fills the cache, reports `started()` (the cache
is synced), then watches from the list's resourceVersion. A 410 "too old resource version" ERROR,
any other ERROR, or a stream that ends makes it re-list and emit synthetic ADDED / MODIFIED /
DELETED events for the differences, so handlers never miss a change (only intermediate states).
A handler, index function or transform that raises is contained to that object (client-go's
HandleCrash): logged with the object's key, counted (`statistics()["handler_errors"]`), and the
informer, the other handlers and the other objects carry on; a stored object a handler cannot
digest must never stop the watch (and with it every component sharing the cache).
`run()` may be called again after it ended (a supervisor restarting its component): it re-lists
and emits the differences.
Objects in the cache are shared: callers must never mutate them (copy with objects.deep_copy).
Must not import: reconcilers, node, net, apiserver, cli.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from orchestra.api.errors import ApiError
from orchestra.api.machinery.selectors import LabelSelector
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.objects import Obj, object_key

log = logging.getLogger("orchestra.controller.informer")

Handler = Callable[[str, Obj | None, Obj | None], None]  # (ADDED|MODIFIED|DELETED, old, new)
IndexFunc = Callable[[Obj], Iterable[str]]
Transform = Callable[[Obj], Obj]
ObjList = list[Obj]  # an alias: inside Informer, `list` names the method

RELIST_BACKOFF = 0.8  # client-go reflector's initial backoff ...
RELIST_BACKOFF_MAX = 30.0  # ... and its cap


def index_by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


class Informer:
    """A watched, cached view of one resource type (optionally one namespace / selector)."""

    def __init__(
        self,
        client: Client,
        rt: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.client = client
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.transform = transform
        self._indexers: dict[str, IndexFunc] = {"namespace": index_by_namespace, **(indexers or {})}
        self._items: dict[str, Obj] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._handlers: list[Handler] = []
        self._synced = trio.Event()
        self._advanced = trio.Event()  # set (and replaced) whenever resource_version moves
        self.running = False
        self.resource_version = ""
        self._relists = 0
        self._events = 0
        self._handler_errors = 0

    # --- cache API ---------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def wait_for_resource_version(self, rv: str | int | None, *, max_wait: float = 5.0) -> bool:
        """Wait until the cache reflects revision `rv` (e.g. a write this controller just made, so
        the next reconcile does not act on a cache that misses it). False if `max_wait` ran out
        (bounded so a broken watch cannot park a worker forever; the caller goes on regardless)."""
        if not rv:
            return True
        want = int(rv)
        with trio.move_on_after(max_wait):
            while _int(self.resource_version) < want:
                await self._advanced.wait()
            return True
        return False

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self, namespace: str | None = None, selector: LabelSelector | None = None) -> ObjList:
        if namespace:
            objs: Iterable[Obj] = self.by_index("namespace", namespace)
        else:
            objs = self._items.values()
        if selector is None or selector.empty:
            return [*objs]
        return [o for o in objs if selector.matches((o.get("metadata") or {}).get("labels"))]

    def keys(self) -> tuple[str, ...]:
        return tuple(self._items)

    def by_index(self, index: str, value: str) -> ObjList:
        keys = self._indexes[index].get(value, ())
        return [self._items[k] for k in keys]

    def has_indexer(self, name: str) -> bool:
        return name in self._indexers

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add an index (also over objects already cached)."""
        self._indexers[name] = fn
        self._indexes[name] = {}
        for key, obj in self._items.items():
            self._index_add(name, key, obj)

    def add_handler(self, handler: Handler) -> None:
        """Register a handler; if the cache is already synced, it first sees every object as ADDED."""
        self._handlers.append(handler)
        if self.has_synced:
            self.replay(handler)

    def replay(self, handler: Handler) -> None:
        """Call `handler` with every cached object as ADDED (a restarted component rebuilding its
        state); a failure is contained to its object, as for events."""
        for obj in list(self._items.values()):
            self._call(handler, "ADDED", None, obj)

    def remove_handler(self, handler: Handler) -> None:
        """Stop calling `handler` (a component sharing this informer is shutting down)."""
        if handler in self._handlers:
            self._handlers.remove(handler)

    def statistics(self) -> dict[str, object]:
        return {"kind": self.rt.kind, "items": len(self._items), "synced": self.has_synced,
                "resource_version": self.resource_version, "relists": self._relists, "events": self._events,
                "handler_errors": self._handler_errors}

    # --- the loop ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """List, report started (synced), then watch forever, re-listing whenever the watch breaks."""
        if self.running:
            raise RuntimeError(f"informer for {self.rt.plural} is already running")
        self.running = True
        try:
            await self._list_until_ok()
            self._synced.set()
            task_status.started()
            while True:
                await self._watch()
                self._relists += 1
                await self._list_until_ok()
        finally:
            self.running = False

    async def _list_until_ok(self) -> None:
        delay = RELIST_BACKOFF
        while True:
            try:
                items, rv = await self.client.list(
                    self.rt,
                    self.namespace,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                )
            except (ApiError, OSError) as exc:  # the API or the transport failed: retry with backoff
                log.warning("list %s failed: %s; retrying in %.1fs", self.rt.plural, exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, RELIST_BACKOFF_MAX)
                continue
            self._replace(items, rv)
            return

    async def _watch(self) -> None:
        """Follow the watch until it ends or reports an ERROR (the caller then re-lists)."""
        stream = self.client.watch(self.rt, self.namespace, resource_version=self.resource_version,
                                   label_selector=self.label_selector, field_selector=self.field_selector)
        error: Obj | None = None
        try:
            async for event_type, obj in stream:
                if event_type == "ERROR":
                    # The API ends a watch after an ERROR; reading on to that end lets every
                    # generator in the chain finish (LocalClient's inner watch is not aclosed).
                    error = obj
                elif error is None:
                    self._apply(event_type, obj)
            if error is not None:
                log.info("watch %s: %s; re-listing", self.rt.plural, error.get("message"))
                if error.get("code") != 410:
                    await trio.sleep(RELIST_BACKOFF)  # e.g. 504 "too large resource version"
        except (ApiError, OSError) as exc:  # a dropped stream: re-list after a pause
            log.info("watch %s ended: %s; re-listing", self.rt.plural, exc)
            await trio.sleep(RELIST_BACKOFF)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True):  # close the generator now, not at GC
                    await aclose()

    # --- cache mutation ----------------------------------------------------------------------

    def _set_resource_version(self, rv: str) -> None:
        self.resource_version = rv
        advanced, self._advanced = self._advanced, trio.Event()
        advanced.set()

    def _apply(self, event_type: str, raw: Obj) -> None:
        rv = (raw.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._set_resource_version(str(rv))
        if event_type == "BOOKMARK":
            return
        obj = self._transformed(raw)
        key = object_key(obj)
        self._events += 1
        if event_type == "DELETED":
            old = self._delete(key)
            self._notify("DELETED", old if old is not None else obj, None)
            return
        old = self._store(key, obj)
        self._notify("ADDED" if old is None else "MODIFIED", old, obj)

    def _replace(self, items: ObjList, rv: str) -> None:
        """Swap in a fresh list and emit the differences (all ADDED on the first list)."""
        fresh = {}
        for raw in items:
            obj = self._transformed(raw)
            fresh[object_key(obj)] = obj
        for key in [k for k in self._items if k not in fresh]:
            old = self._delete(key)
            self._notify("DELETED", old, None)
        for key, obj in fresh.items():
            prev = self._items.get(key)
            if prev is not None and _rv(prev) == _rv(obj):
                continue
            self._store(key, obj)
            self._notify("ADDED" if prev is None else "MODIFIED", prev, obj)
        self._set_resource_version(rv)

    def _store(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index_add(name, key, obj)
        return old

    def _delete(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index_add(self, name: str, key: str, obj: Obj) -> None:
        index = self._indexes[name]
        for value in self._index_values(name, key, obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name in self._indexers:
            index = self._indexes[name]
            for value in self._index_values(name, key, obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def _index_values(self, name: str, key: str, obj: Obj) -> tuple[str, ...]:
        try:
            return tuple(self._indexers[name](obj))
        except Exception:  # an index function that cannot read this object: it is left out of the index
            self._contained(f"index {name!r}", key)
            return ()

    def _transformed(self, raw: Obj) -> Obj:
        if self.transform is None:
            return raw
        try:
            return self.transform(raw)
        except Exception:  # the transform cannot read this object: cache it as it came
            self._contained("transform", object_key(raw))
            return raw

    def _notify(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            self._call(handler, event_type, old, new)

    def _call(self, handler: Handler, event_type: str, old: Obj | None, new: Obj | None) -> None:
        try:
            handler(event_type, old, new)
        except Exception:  # contained to this object: the other handlers and the watch carry on
            obj = new if new is not None else old
            self._contained(f"{event_type} handler {getattr(handler, '__qualname__', handler)!r}",
                            object_key(obj) if obj is not None else "")

    def _contained(self, what: str, key: str) -> None:
        self._handler_errors += 1
        log.exception("%s informer: %s failed on %s", self.rt.plural, what, key)


def _int(rv: str) -> int:
    try:
        return int(rv)
    except ValueError:
        return 0


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class SharedInformers:
    """One informer per (kind, namespace, selectors) for every controller on a client.

    Controllers that watch the same kind share one cache and one watch stream, as client-go's
    SharedInformerFactory does; at 30,000 pods a cache per controller would cost gigabytes.
    Informers with a `transform` are never shared (their cached objects differ).
    """

    _by_client: weakref.WeakKeyDictionary[Any, SharedInformers] = weakref.WeakKeyDictionary()

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[tuple[Any, ...], Informer] = {}

    @classmethod
    def of(cls, client: Client) -> SharedInformers:
        """The shared informers of `client`'s API: in-process clients of one API core (controllers,
        scheduler, node agents, proxy) share one cache per kind, whatever their field manager. A client
        with an `informer_scope` shares only with clients of that scope (the controllers of one term
        of leadership: their informers end with it, and the next term starts afresh)."""
        key = getattr(client, "informer_scope", None) or getattr(client, "core", client)
        found = cls._by_client.get(key)
        if found is None:
            found = cls._by_client[key] = cls(client)
        return found

    def informer(self, rt: ResourceType, *, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, indexers: Mapping[str, IndexFunc] | None = None,
                 transform: Transform | None = None) -> Informer:
        if transform is not None:
            return Informer(self.client, rt, namespace=namespace, label_selector=label_selector,
                            field_selector=field_selector, indexers=indexers, transform=transform)
        key = (rt.group, rt.plural, namespace, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = self._informers[key] = Informer(
                self.client,
                rt,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                indexers=indexers,
            )
            return inf
        for name, fn in (indexers or {}).items():
            existing = inf._indexers.get(name)
            if existing is None:
                inf.add_indexer(name, fn)
            elif existing is not fn and getattr(existing, "__code__", None) is not getattr(
                fn, "__code__", None
            ):
                # same index name, different meaning: give this caller a private informer
                return Informer(self.client, rt, namespace=namespace, label_selector=label_selector,
                                field_selector=field_selector, indexers=indexers)
        return inf

    def statistics(self) -> dict[str, object]:
        return {
            "informers": len(self._informers),
            "items": sum(len(i.keys()) for i in self._informers.values()),
        }
