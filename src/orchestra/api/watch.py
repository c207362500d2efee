"""Kubernetes watch semantics over store watches.

Owns: resourceVersion rules for watch (unset/"0" = synthetic ADDED then follow; N = changes after N),
selector transitions (an object leaving a selector is DELETED, entering is ADDED), 410 Expired as an
ERROR event, and BOOKMARK events.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import trio

from orchestra.api.core import ApiCore, _predicate
from orchestra.api.errors import Gone, Timeout
from orchestra.api.objects import Obj, decode, parse_rv
from orchestra.api.registry import ResourceType
from orchestra.api.selectors import FieldSelector, LabelSelector
from orchestra.store import CompactedError, Event, FutureRevisionError

WatchEvent = tuple[str, Obj]


def _status_event(err: Gone | Timeout) -> WatchEvent:
    return "ERROR", err.status()


async def watch(
    core: ApiCore,
    rt: ResourceType,
    namespace: str | None,
    *,
    resource_version: str | None = None,
    label_selector: LabelSelector | None = None,
    field_selector: FieldSelector | None = None,
    bookmark_interval: float | None = None,
) -> AsyncIterator[WatchEvent]:
    """Yield (type, object) pairs like kube-apiserver's watch; ends only when cancelled or on ERROR."""
    pred = _predicate(label_selector, field_selector)
    rv = parse_rv(resource_version)
    if not rv:  # unset or "0": "get state and start at most recent"
        listed = core.list(rt, namespace, label_selector=label_selector, field_selector=field_selector)
        for obj in listed.items:
            yield "ADDED", obj
        start = int(listed.resource_version) + 1
    else:
        if rv > core.store.revision:
            yield _status_event(Timeout(f"Too large resource version: {rv}, current: {core.store.revision}", retry_after=1))
            return
        start = rv + 1
    prefix = rt.key_prefix(namespace)
    last_rv = start - 1
    try:
        async with core.store.watch(prefix, start_revision=start) as events:
            iterator = events.__aiter__()
            while True:
                batch: list[Event] | None = None
                if bookmark_interval is None:
                    batch = await iterator.__anext__()
                else:
                    with trio.move_on_after(bookmark_interval):
                        batch = await iterator.__anext__()
                if batch is None:
                    last_rv = max(last_rv, core.store.revision)
                    yield "BOOKMARK", _bookmark(rt, last_rv)
                    continue
                for ev in batch:
                    last_rv = ev.kv.mod_revision
                    out = _translate(ev, pred)
                    if out is not None:
                        yield out
    except CompactedError:
        yield _status_event(Gone(f"too old resource version: {start - 1} ({core.store.compact_revision})"))
    except FutureRevisionError:
        yield _status_event(Timeout(f"Too large resource version: {start - 1}, current: {core.store.revision}", retry_after=1))


def _bookmark(rt: ResourceType, rv: int) -> Obj:
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}}


def _load(value: bytes, rev: int) -> Obj:
    obj = decode(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return obj


def _translate(ev: Event, pred: Callable[[Obj], bool] | None) -> WatchEvent | None:
    rev = ev.kv.mod_revision
    if ev.type == "DELETE":
        old = _load(ev.kv.value, rev)
        if pred is None or pred(old):
            return "DELETED", old
        return None
    new = _load(ev.kv.value, rev)
    if pred is None:
        return ("ADDED" if ev.prev_kv is None else "MODIFIED"), new
    new_match = pred(new)
    old_match = ev.prev_kv is not None and pred(decode(ev.prev_kv.value))
    if new_match:
        return ("MODIFIED" if old_match else "ADDED"), new
    if old_match:
        return "DELETED", new
    return None


def is_terminal(event: WatchEvent) -> bool:
    return event[0] == "ERROR"


