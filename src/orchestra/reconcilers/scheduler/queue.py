"""The scheduling queue: activeQ, backoffQ and the unschedulable pods (kube's PriorityQueue).

Owns:
  * activeQ — pods ready to be tried, highest spec.priority first, then the earliest queued;
  * backoffQ — pods that failed and wait out their backoff: 1 s doubling per attempt up to 10 s
    (podInitialBackoffSeconds / podMaxBackoffSeconds);
  * unschedulable pods — parked until a cluster event that may make them schedulable moves them
    (to backoffQ while their backoff lasts, else to activeQ), or until they have waited 5 minutes
    (podMaxInUnschedulablePodsDuration). A pod whose attempt overlapped a move request goes to
    backoffQ instead of being parked (kube's in-flight events), so no event is lost while it is
    in flight. Events name the plugins they can help (a small version of kube's queueing hints).
Time comes only from trio. Must not import: client, controller.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

import attrs
import trio

from orchestra.reconcilers.scheduler.podinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE = 300.0
UNSCHEDULABLE_SCAN = 30.0

ALL_PLUGINS = None  # an event that may help any failure


@attrs.define(eq=False)
class QueuedPod:
    info: PodInfo
    timestamp: float  # when it was (re)queued: the activeQ tie-breaker and backoff start
    initial: float  # when it was first queued (for the scheduling latency)
    attempts: int = 0
    plugins: frozenset[str] = frozenset()  # the plugins that rejected it last time
    cycle: int = 0  # the scheduling cycle of its last attempt


@attrs.frozen
class QueueStatistics:
    active: int
    backoff: int
    unschedulable: int
    in_flight: int


def _helps(event_plugins: frozenset[str] | None, rejected_by: frozenset[str]) -> bool:
    return event_plugins is None or not rejected_by or bool(event_plugins & rejected_by)


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_unschedulable: float = MAX_UNSCHEDULABLE) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._pods: dict[str, QueuedPod] = {}  # every pod known to the queue, in flight included
        self._active: list[tuple[int, float, int, str]] = []  # heap; stale entries skipped
        self._active_seq: dict[str, int] = {}
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_seq: dict[str, int] = {}
        self._unschedulable: dict[str, float] = {}  # key -> when parked
        self._in_flight: set[str] = set()
        self._seq = 0
        self.scheduling_cycle = 0
        self._events_in_flight: list[frozenset[str] | None] = []  # moves while a pod was being tried
        self._next_scan = 0.0
        self._changed = trio.Event()
        self.closed = False

    # --- informer side ---------------------------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        qp = self._pods.get(info.key)
        if qp is not None:
            self.update(info)
            return
        now = trio.current_time()
        qp = self._pods[info.key] = QueuedPod(info, now, now)
        self._to_active(qp)

    def update(self, info: PodInfo) -> None:
        qp = self._pods.get(info.key)
        if qp is None:
            self.add(info)
            return
        changed = qp.info.obj.get("spec") != info.obj.get("spec") or qp.info.labels != info.labels
        qp.info = info
        if info.key in self._unschedulable and changed:  # an update may make it schedulable
            del self._unschedulable[info.key]
            self._requeue(qp)

    def delete(self, key: str) -> None:
        self._pods.pop(key, None)
        self._active_seq.pop(key, None)
        self._backoff_seq.pop(key, None)
        self._unschedulable.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def move_all(self, plugins: Iterable[str] | None = ALL_PLUGINS) -> int:
        """A cluster event: move parked pods that one of `plugins` rejected (all if None)."""
        wanted = None if plugins is None else frozenset(plugins)
        if self._in_flight:
            self._events_in_flight.append(wanted)
        moved = 0
        for key in list(self._unschedulable):
            qp = self._pods[key]
            if not _helps(wanted, qp.plugins):
                continue
            del self._unschedulable[key]
            self._requeue(qp)
            moved += 1
        return moved

    # --- scheduler side --------------------------------------------------------------------------

    async def pop(self) -> QueuedPod:
        """The next pod to try (now in flight until `done`, `unschedulable` or `error`)."""
        while True:
            if self.closed:
                raise trio.ClosedResourceError("scheduling queue closed")
            now = trio.current_time()
            self._flush(now)
            while self._active:
                _, _, seq, key = heapq.heappop(self._active)
                if self._active_seq.get(key) != seq:
                    continue
                del self._active_seq[key]
                qp = self._pods[key]
                self.scheduling_cycle += 1
                qp.cycle = self.scheduling_cycle
                self._events_in_flight.clear()
                qp.attempts += 1
                self._in_flight.add(key)
                return qp
            with trio.move_on_at(self._next_deadline()):
                await self._changed.wait()

    def done(self, key: str) -> None:
        """The pod was scheduled (assumed and bound, or bind in progress): it leaves the queue."""
        self._in_flight.discard(key)
        self._pods.pop(key, None)

    def unschedulable(self, qp: QueuedPod, plugins: frozenset[str]) -> None:
        self._in_flight.discard(qp.info.key)
        if self._pods.get(qp.info.key) is not qp:
            return  # deleted (or bound by someone else) while in flight
        qp.plugins = plugins
        qp.timestamp = trio.current_time()
        if any(_helps(wanted, plugins) for wanted in self._events_in_flight):
            self._to_backoff(qp)  # the cluster changed while it was tried: retry after its backoff
        else:
            self._unschedulable[qp.info.key] = qp.timestamp

    def error(self, qp: QueuedPod, *, requeue: bool = False) -> None:
        """An error (not a fit failure): retry after the pod's backoff. `requeue` puts back a pod
        that had already left the queue (a failed bind)."""
        self._in_flight.discard(qp.info.key)
        if requeue and qp.info.key not in self._pods:
            self._pods[qp.info.key] = qp
        if self._pods.get(qp.info.key) is not qp:
            return
        qp.timestamp = trio.current_time()
        self._to_backoff(qp)

    def close(self) -> None:
        self.closed = True
        self._wake()

    def statistics(self) -> QueueStatistics:
        return QueueStatistics(active=len(self._active_seq), backoff=len(self._backoff_seq),
                               unschedulable=len(self._unschedulable), in_flight=len(self._in_flight))

    def pending(self) -> list[PodInfo]:
        return [qp.info for qp in self._pods.values()]

    # --- internals -------------------------------------------------------------------------------

    def backoff_duration(self, qp: QueuedPod) -> float:
        if qp.attempts == 0:
            return 0.0
        return min(self.initial_backoff * math.pow(2, min(qp.attempts - 1, 30)), self.max_backoff)

    def _requeue(self, qp: QueuedPod) -> None:
        if qp.timestamp + self.backoff_duration(qp) > trio.current_time():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    def _to_active(self, qp: QueuedPod) -> None:
        key = qp.info.key
        self._backoff_seq.pop(key, None)
        self._seq += 1
        self._active_seq[key] = self._seq
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, self._seq, key))
        self._wake()

    def _to_backoff(self, qp: QueuedPod) -> None:
        key = qp.info.key
        self._seq += 1
        self._backoff_seq[key] = self._seq
        heapq.heappush(self._backoff, (qp.timestamp + self.backoff_duration(qp), self._seq, key))
        self._wake()

    def _flush(self, now: float) -> None:
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            if self._backoff_seq.get(key) == seq:
                self._to_active(self._pods[key])
        if now < self._next_scan:
            return
        self._next_scan = now + UNSCHEDULABLE_SCAN  # like kube, look at parked pods every 30 s
        for key, since in list(self._unschedulable.items()):
            if since + self.max_unschedulable <= now:
                del self._unschedulable[key]
                self._requeue(self._pods[key])

    def _next_deadline(self) -> float:
        deadline = self._backoff[0][0] if self._backoff else math.inf
        return min(deadline, self._next_scan) if self._unschedulable else deadline

    def _wake(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()
