"""EventRecorder: core/v1 Events like client-go's record package, never blocking the caller.

Owns: building Event objects (involvedObject, reason, message, type, source.component,
reportingComponent, firstTimestamp/lastTimestamp/count), aggregating repeats of the same
(object, type, reason, message) into one Event whose count and lastTimestamp are patched, the
per-object spam filter (client-go's token bucket: burst 25, one token per 5 minutes), and a bounded
buffer drained by `run()` (a full buffer drops the event, as client-go's broadcaster does).
Not built: client-go's "similar events" aggregation (10 events with the same reason but different
messages within 10 minutes become one "(combined from similar events)" Event).
Must not import: reconcilers, node, net, apiserver, cli.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import attrs
import trio

from orchestra.api.errors import AlreadyExists, ApiError, NotFound
from orchestra.api.registry import DEFAULT_REGISTRY, Registry, ResourceType
from orchestra.client.base import Client
from orchestra.objects import Obj, now_rfc3339

log = logging.getLogger("orchestra.controller.events")

NORMAL = "Normal"
WARNING = "Warning"
SPAM_BURST = 25  # client-go defaultSpamBurst
SPAM_REFILL_SECONDS = 300.0  # client-go defaultSpamQPS = 1/300
BUFFER = 1000  # client-go's maxQueuedEvents
CACHE_SIZE = 4096  # client-go's maxLruCacheEntries

_AggKey = tuple[str, ...]


@attrs.define
class _Pending:
    event: Obj
    agg: _AggKey


@attrs.define
class _Bucket:
    tokens: float
    last: float


@attrs.frozen
class RecorderStatistics:
    recorded: int
    created: int
    aggregated: int
    dropped_full: int
    dropped_spam: int
    failed: int


class EventRecorder:
    def __init__(self, client: Client, component: str, *, host: str = "", buffer: int = BUFFER,
                 spam_burst: int = SPAM_BURST, spam_refill_seconds: float = SPAM_REFILL_SECONDS) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.spam_burst = spam_burst
        self.spam_refill_seconds = spam_refill_seconds
        self._send, self._receive = trio.open_memory_channel[_Pending](buffer)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._written: OrderedDict[_AggKey, tuple[str, str, int]] = OrderedDict()  # -> (ns, name, count)
        self._rt: ResourceType | None = None
        self._counts = {
            "recorded": 0,
            "created": 0,
            "aggregated": 0,
            "dropped_full": 0,
            "dropped_spam": 0,
            "failed": 0,
        }

    # --- the caller's side (never blocks) ------------------------------------------------------

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an event about `obj` (any object with kind/apiVersion/metadata)."""
        ref = involved_object(obj)
        if not self._allow(ref):
            self._counts["dropped_spam"] += 1
            return
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": _event_name(ref["name"]), "namespace": ref.get("namespace") or "default"},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        agg = (
            ref.get("namespace", ""),
            ref["kind"],
            ref["name"],
            ref.get("uid", ""),
            ref.get("apiVersion", ""),
            type_,
            reason,
            message,
            self.component,
            self.host,
        )
        try:
            self._send.send_nowait(_Pending(event, agg))
        except trio.WouldBlock:  # client-go drops events when its queue is full; so do we
            self._counts["dropped_full"] += 1
            return
        self._counts["recorded"] += 1

    def _allow(self, ref: Obj) -> bool:
        """client-go's EventSourceObjectSpamFilter: a token bucket per (source, object)."""
        key = "/".join(
            (
                self.component,
                self.host,
                ref["kind"],
                ref.get("namespace", ""),
                ref["name"],
                ref.get("uid", ""),
            )
        )
        now = trio.current_time()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.spam_burst), now)
        bucket.tokens = min(
            float(self.spam_burst), bucket.tokens + (now - bucket.last) / self.spam_refill_seconds
        )
        bucket.last = now
        self._buckets[key] = bucket
        if len(self._buckets) > CACHE_SIZE:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    # --- the writer task ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for pending in self._receive:
            await self._write(pending)

    async def flush(self) -> None:
        """Write everything buffered now (for callers that run no writer task, and tests)."""
        while True:
            try:
                pending = self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            await self._write(pending)

    async def _write(self, pending: _Pending) -> None:
        rt = self._event_rt()
        seen = self._written.pop(pending.agg, None)
        try:
            if seen is not None:
                ns, name, count = seen
                try:
                    await self.client.patch(
                        rt, ns, name, {"count": count + 1, "lastTimestamp": pending.event["lastTimestamp"]}
                    )
                    self._remember(pending.agg, (ns, name, count + 1))
                    self._counts["aggregated"] += 1
                    return
                except NotFound:
                    pass  # the aggregated event expired or was deleted: start a new one
            created = await self._create(rt, pending.event)
            m = created["metadata"]
            self._remember(pending.agg, (m["namespace"], m["name"], int(created.get("count") or 1)))
            self._counts["created"] += 1
        except (ApiError, OSError) as exc:  # e.g. the namespace is terminating, or the server went away
            # mid-write (an HTTP client's TransportError): an event is best effort
            self._counts["failed"] += 1
            log.debug(
                "dropping event %s/%s: %s",
                pending.event["reason"],
                pending.event["involvedObject"]["name"],
                exc,
            )

    async def _create(self, rt: ResourceType, event: Obj) -> Obj:
        try:
            return await self.client.create(rt, event["metadata"]["namespace"], event)
        except AlreadyExists:  # two events in the same nanosecond: rename once
            event = {
                **event,
                "metadata": {**event["metadata"], "name": _event_name(event["involvedObject"]["name"])},
            }
            return await self.client.create(rt, event["metadata"]["namespace"], event)

    def _remember(self, agg: _AggKey, value: tuple[str, str, int]) -> None:
        self._written[agg] = value
        if len(self._written) > CACHE_SIZE:
            self._written.popitem(last=False)

    def _event_rt(self) -> ResourceType:
        if self._rt is None:
            registry = getattr(self.client, "registry", None)
            if not isinstance(registry, Registry):
                registry = DEFAULT_REGISTRY
            self._rt = registry.by_kind("Event")
            assert self._rt is not None
        return self._rt

    def statistics(self) -> RecorderStatistics:
        return RecorderStatistics(**self._counts)


def involved_object(obj: Obj) -> Obj:
    """An ObjectReference to `obj` (what kubectl describe matches events on)."""
    m = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind", ""), "name": m.get("name", "")}
    if m.get("namespace"):
        ref["namespace"] = m["namespace"]
    for src, dst in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if m.get(src):
            ref[dst] = m[src]
    if obj.get("apiVersion"):
        ref["apiVersion"] = obj["apiVersion"]
    return ref


_seq = 0


def _event_name(obj_name: str) -> str:
    """client-go names events `<object>.<unix nanos in hex>`; a counter keeps same-instant names apart."""
    global _seq
    _seq += 1
    return f"{obj_name}.{time.time_ns() + _seq:x}"
