"""Kubernetes watch semantics over store watches, in bounded pages.

Owns: resourceVersion rules for watch (unset/"0" = the current state as synthetic ADDED events, then
follow; N = changes after N), the watch-list form (sendInitialEvents with resourceVersionMatch=
NotOlderThan, as kube-apiserver 1.32's cacher serves it: true = the state at the current revision, which
is not older than any resourceVersion asked for, as ADDED events, then, when bookmarks are allowed, a
BOOKMARK at that revision annotated `k8s.io/initial-events-end: "true"`, then the changes after it;
false = no initial state: changes after N, or after the current revision for unset/"0"), reading
that initial state page by page at one revision, selector transitions (an object leaving a selector
is DELETED, entering is ADDED), 410 Expired as an ERROR event, BOOKMARK events, and a watch's
backlog (live events not read yet) for the server's bound on watchers that fall too far behind.
A type served over another type's stored objects (`stored_as`: autoscaling/v1 HPAs, events.k8s.io/v1
Events) watches the stored keys and converts each object (api/conversion/); selectors match the
stored form (a field selector is already in the stored type's labels: parse_field_selector); a custom
resource's match the version watched (its CRD's selectableFields of that version).
Memory: a watch holds one page of store references at a time (page_size KeyValues of the initial
list, or page_size history events) and decodes an object only when its event is taken from the page,
so what it holds does not grow with the collection.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing

import trio

from orchestra.api.errors import Gone, Timeout
from orchestra.api.machinery.selectors import FieldSelector, LabelSelector
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore, Selection, selection
from orchestra.api.request.stored import Codec, parse_rv
from orchestra.objects import Obj
from orchestra.store import CompactedError, Event, FutureRevisionError, KeyValue, Watcher
from orchestra.store.types import rev_of

WatchEvent = tuple[str, Obj]
# A page of events, decoded lazily as it is iterated; finish it before asking for the next page.
Page = Iterator[WatchEvent]
Match = Selection | None  # the selectors (core.selection); None: every object
Read = Callable[[Obj], Obj] | None  # a custom resource version's view of a stored object

PAGE_SIZE = 100  # objects (initial list) or history events (live) per page
INITIAL_EVENTS_END = "k8s.io/initial-events-end"  # metav1.InitialEventsAnnotationKey


def _status_event(err: Gone | Timeout) -> WatchEvent:
    return "ERROR", err.status()


def _too_large(rv: int, current: int) -> WatchEvent:
    return _status_event(Timeout(f"Too large resource version: {rv}, current: {current}", retry_after=1))


class WatchStream:
    """One watch as an async iterator of pages (`pages()`); `watch()` flattens it into events.
    Ends only when cancelled or after an ERROR event."""

    def __init__(
        self,
        core: ApiCore,
        rt: ResourceType,
        namespace: str | None,
        *,
        resource_version: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        bookmark_interval: float | None = None,
        page_size: int = PAGE_SIZE,
        send_initial_events: bool | None = None,
    ) -> None:
        """`send_initial_events`: None is the legacy form; True/False the watch-list form (checked
        by listoptions.validate_list_options); `bookmark_interval` None means no bookmarks."""
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.core = core
        self.rt = rt
        self.namespace = namespace
        self.rv = parse_rv(resource_version)
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.bookmark_interval = bookmark_interval
        self.page_size = page_size
        self.read = core.reader(rt)  # the view of stored objects at rt's version (None: as stored)
        self.send_initial_events = send_initial_events
        self._watcher: Watcher | None = None
        self._live_from = 0  # events after this revision were written once the watch had begun ...
        self._held = 0  # ... and this many of them, taken from the store, are not yet in a page

    def backlog(self, limit: int) -> int:
        """Events under this watch's key prefix written since it began and not yet handed out in
        a page, counted up to `limit` (while the initial list is sent: the writes since its
        revision; history a watch from an old resourceVersion replays does not count); 0 before
        the stream starts or after it ends. What kube-apiserver would be holding in the watcher's
        buffered channel."""
        if self._watcher is None:
            return 0
        return min(limit, self._held + self._watcher.backlog(limit))

    async def pages(self) -> AsyncGenerator[Page, None]:
        """The watch's pages; objects at the version of the watch's resource (api/conversion/, a
        custom resource's CRD). The selectors read that version of a custom resource, the stored form
        of a built-in kind (core.selection)."""
        store = self.core.store
        if self.rv and self.rv > store.revision:
            yield iter([_too_large(self.rv, store.revision)])
            return
        after = self._start_revision()
        try:
            watcher = store.watch(self.rt.key_prefix(self.namespace), start_revision=after + 1)
        except CompactedError:
            yield iter([_status_event(Gone(f"too old resource version: {after} ({store.compact_revision})"))])
            return
        except FutureRevisionError:
            yield iter([_too_large(after, store.revision)])
            return
        self._watcher, self._live_from = watcher, store.revision
        try:
            if self._sends_initial_state():
                for page in initial_pages(self.core, self.rt, self.namespace, after, self.label_selector,
                                          self.field_selector, self.page_size):
                    yield page
                if self.send_initial_events and self.bookmark_interval is not None:
                    yield iter([("BOOKMARK", _bookmark(self.rt, after, initial_events_end=True))])
            async with aclosing(self._live(watcher, after)) as live:
                async for page in live:
                    yield page
        except CompactedError:
            yield iter([_status_event(Gone(f"too old resource version: {after} ({store.compact_revision})"))])
        finally:
            self._watcher = None
            watcher.close()

    def _start_revision(self) -> int:
        """The revision the live part follows from: N for a legacy watch at N or a watch-list stream
        with sendInitialEvents=false at N; else the current one (legacy unset/"0": "get state and
        start at most recent"; sendInitialEvents=true: the state not older than N, as the cacher
        serves it, at the revision it has)."""
        if self.send_initial_events:
            return self.core.store.revision
        return self.rv or self.core.store.revision

    def _sends_initial_state(self) -> bool:
        if self.send_initial_events is None:
            return not self.rv
        return self.send_initial_events

    async def _live(self, watcher: Watcher, last_rv: int) -> AsyncGenerator[Page, None]:
        match = selection(self.rt, self.label_selector, self.field_selector)
        while True:
            batch: list[Event] | None = None
            try:
                if self.bookmark_interval is None:
                    batch = await watcher.__anext__()
                else:
                    with trio.move_on_after(self.bookmark_interval):
                        batch = await watcher.__anext__()
            except StopAsyncIteration:  # the watcher was closed under us: the watch is over
                return
            if batch is None:
                last_rv = max(last_rv, self.core.store.revision)
                yield iter([("BOOKMARK", _bookmark(self.rt, last_rv))])
                continue
            first_live = bisect.bisect_right(batch, self._live_from, key=rev_of)
            for i in range(0, len(batch), self.page_size):
                end = i + self.page_size
                self._held = len(batch) - max(end, first_live) if end < len(batch) else 0
                yield _translated(self.core.codec, batch[i:end], match, self.read)
            self._held = 0
            last_rv = batch[-1].kv.mod_revision


def initial_pages(
    core: ApiCore,
    rt: ResourceType,
    namespace: str | None,
    revision: int,
    label_selector: LabelSelector | None,
    field_selector: FieldSelector | None,
    page_size: int,
) -> Iterator[Page]:
    """The state at `revision` as ADDED events: the items a LIST at that revision returns, in its
    order, read from the store `page_size` keys at a time. Raises CompactedError (when a page is
    read) once compaction has passed `revision`."""
    store = core.store
    match = selection(rt, label_selector, field_selector)
    read = core.reader(rt)
    name = field_selector.exact_name() if field_selector else None
    if name is not None and (namespace or not rt.namespaced):  # as ApiCore.list: one key
        kv = store.get(rt.key(namespace, name), revision=revision)
        if kv is not None:
            yield _added(core.codec, [kv], match, read)
        return
    prefix = rt.key_prefix(namespace)
    start_after: str | None = None
    while True:
        kvs, _ = store.range(prefix, revision=revision, limit=page_size, start_after=start_after)
        if kvs:
            yield _added(core.codec, kvs, match, read)
        if len(kvs) < page_size:
            return
        start_after = kvs[-1].key


def _added(codec: Codec, kvs: Sequence[KeyValue], match: Match, read: Read) -> Page:
    for kv in kvs:
        stored, obj = _load(codec, kv, read)
        if match is None or match(stored, obj):
            yield "ADDED", obj


def _translated(codec: Codec, events: Sequence[Event], match: Match, read: Read) -> Page:
    for ev in events:
        out = _translate(codec, ev, match, read)
        if out is not None:
            yield out


async def watch(
    core: ApiCore,
    rt: ResourceType,
    namespace: str | None,
    *,
    resource_version: str | None = None,
    label_selector: LabelSelector | None = None,
    field_selector: FieldSelector | None = None,
    bookmark_interval: float | None = None,
    page_size: int = PAGE_SIZE,
    send_initial_events: bool | None = None,
) -> AsyncGenerator[WatchEvent, None]:
    """Yield (type, object) pairs like kube-apiserver's watch; ends only when cancelled or on ERROR."""
    stream = WatchStream(core, rt, namespace, resource_version=resource_version,
                         label_selector=label_selector, field_selector=field_selector,
                         bookmark_interval=bookmark_interval, page_size=page_size,
                         send_initial_events=send_initial_events)
    async with aclosing(stream.pages()) as pages:
        async for page in pages:
            for event in page:
                yield event


def _bookmark(rt: ResourceType, rv: int, *, initial_events_end: bool = False) -> Obj:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


def _load(codec: Codec, kv: KeyValue, read: Read) -> tuple[Obj, Obj]:
    """The stored object and the object as the watched resource serves it (the same one when `read`
    is None; a custom resource's `read` changes the stored one in place)."""
    obj = codec.decode(kv)  # decrypted when the kind is encrypted at rest
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj, (obj if read is None else read(obj))


def _translate(codec: Codec, ev: Event, match: Match, read: Read) -> WatchEvent | None:
    if ev.type == "DELETE":
        stored, old = _load(codec, ev.kv, read)  # a tombstone: the last value, at the deletion's revision
        if match is None or match(stored, old):
            return "DELETED", old
        return None
    stored, new = _load(codec, ev.kv, read)
    if match is None:
        return ("ADDED" if ev.prev_kv is None else "MODIFIED"), new
    new_match = match(stored, new)
    prev = None if ev.prev_kv is None else codec.decode(ev.prev_kv)
    old_match = prev is not None and match(prev, prev if read is None else read(prev))
    if new_match:
        return ("MODIFIED" if old_match else "ADDED"), new
    if old_match:
        return "DELETED", new
    return None


def is_terminal(event: WatchEvent) -> bool:
    return event[0] == "ERROR"
