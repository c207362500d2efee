"""Controller: informers → keyed work queue → N workers calling a level-based `reconcile(key)`.

Owns: the worker loop and what a reconcile's outcome does to its key —
  * `Result()` / None: done, backoff forgotten;
  * `Result(requeue_after=s)`: forgotten, then re-queued after `s` seconds (a timer, not an error);
  * `TemporaryError(delay=)`: re-queued after `delay`, or with the key's backoff when delay is None;
  * `PermanentError`: logged, forgotten, not retried (a later change to the object re-queues it);
  * the API's `Conflict`: re-queued at once with the key's backoff (5 ms, 10 ms, ...);
  * the routine races of a cluster that changes under its controllers — `NotFound` (the object, or
    one it writes for, was deleted while the reconcile ran: a status write of a deleted pod) and
    the `Forbidden` of a namespace being terminated (kube's NamespaceTerminating cause) — end
    quietly: one debug line, and the key is re-queued with its backoff, so the next reconcile sees
    the deletion in the cache and finishes (client-go controllers check IsNotFound and
    HasStatusCause(NamespaceTerminatingCause) for the same reason);
  * any other exception: logged with its traceback and re-queued with backoff.
Subclasses create their informers in `__init__` (via `self.informer(...)`), map informer events
to keys with `self.enqueue_on(informer, mapper)` — handlers only map events to keys — and
implement `reconcile(key)`, which reads the caches and converges through the client.
`enqueue_on(..., paced=True)` is for events that only refresh what a sync reports (a ReplicaSet's
pods starting): the key is queued after PACE_FACTOR times its last reconcile's duration (at most
PACE_MAX s), so a key whose sync walks thousands of objects cannot take the whole event loop by
being re-synced on every event; a key that syncs in a millisecond is hardly delayed. Durations are
trio time (0 under a virtual clock: tests see no pacing).
`run()` may be called again after it raised (a supervisor restarting the controller): it starts a
fresh queue, restarts informers nobody runs, calls `restarted()` (subclasses drop what they held
from the old run) and queues the key of every cached object, as a fresh controller would.
Must not import: reconcilers, node, net, apiserver, cli.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from orchestra.api.errors import Conflict, Forbidden, NotFound, namespace_terminating
from orchestra.api.registry import DEFAULT_REGISTRY, Registry, ResourceType
from orchestra.client.base import Client
from orchestra.controller.errors import PermanentError, TemporaryError
from orchestra.controller.events import EventRecorder
from orchestra.controller.informer import Informer, SharedInformers
from orchestra.controller.workqueue import QueueShutDown, QueueStatistics, RateLimiter, WorkQueue
from orchestra.objects import Obj, object_key

log = logging.getLogger("orchestra.controller")

KeyMapper = Callable[[str, Obj | None, Obj | None], Iterable[str]]
PACE_FACTOR = 3.0  # a paced key spends at most ~1/(1+PACE_FACTOR) of the time syncing
PACE_MAX = 1.0
PACE_MIN_COST = 0.001  # cheaper syncs are not paced (and not remembered: a deleted key's last sync is cheap)


@attrs.frozen
class Result:
    requeue_after: float | None = None


@attrs.frozen
class ControllerStatistics:
    name: str
    workers: int
    reconciles: int
    errors: int
    conflicts: int
    races: int  # NotFound / namespace-terminating outcomes (see the module docstring)
    requeues: int
    queue: QueueStatistics
    informers: tuple[dict[str, object], ...]


def routine_race(exc: BaseException) -> bool:
    """NotFound, or the Forbidden of a terminating namespace: the cluster changed under a reconcile
    (see the module docstring); not worth a traceback."""
    return isinstance(exc, NotFound) or (isinstance(exc, Forbidden) and namespace_terminating(exc))


def registry_of(client: Client) -> Registry:
    """The client's registry of kinds (LocalClient has one), else the built-in one."""
    registry = getattr(client, "registry", None)
    return registry if isinstance(registry, Registry) else DEFAULT_REGISTRY


def keys_of_object(event_type: str, old: Obj | None, new: Obj | None) -> list[str]:
    """The default mapper: the changed object's own `namespace/name` key."""
    obj = new if new is not None else old
    return [object_key(obj)] if obj is not None else []


class Controller:
    """Base class; see the module docstring. `name` is also the event source component."""

    name = "controller"

    def __init__(self, client: Client, *, workers: int = 1, recorder: EventRecorder | None = None,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.client = client
        self.workers = workers
        self._rate_limiter = rate_limiter
        self.queue: WorkQueue[str] = WorkQueue(rate_limiter=rate_limiter, name=self.name)
        self.informers: list[Informer] = []
        self._event_handlers: list[tuple[Informer, Callable[[str, Obj | None, Obj | None], None]]] = []
        self._runs = 0
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client, self.name)
        self._stats = {"reconciles": 0, "errors": 0, "conflicts": 0, "races": 0, "requeues": 0}
        self._paced = False
        self._cost: dict[str, float] = {}  # last reconcile duration of keys that took over PACE_MIN_COST

    # --- wiring (called from subclasses' __init__) -------------------------------------------------

    def informer(self, rt: ResourceType | str, **kwargs: Any) -> Informer:
        """An informer for this controller, shared with every other controller on the same client."""
        if isinstance(rt, str):
            found = registry_of(self.client).by_kind(rt)
            if found is None:
                raise KeyError(rt)
            rt = found
        inf = SharedInformers.of(self.client).informer(rt, **kwargs)
        if inf not in self.informers:
            self.informers.append(inf)
        return inf

    def use_informer(self, informer: Informer) -> Informer:
        """Share an informer another component created (started by whoever runs first)."""
        self.informers.append(informer)
        return informer

    def enqueue_on(
        self, informer: Informer, mapper: KeyMapper = keys_of_object, *, paced: bool = False
    ) -> None:
        def handler(event_type: str, old: Obj | None, new: Obj | None) -> None:
            for key in mapper(event_type, old, new):
                self.queue.add(key)

        def paced_handler(event_type: str, old: Obj | None, new: Obj | None) -> None:
            for key in mapper(event_type, old, new):
                self.queue.add_after(key, min(PACE_MAX, PACE_FACTOR * self._cost.get(key, 0.0)))

        self._paced = self._paced or paced
        chosen = paced_handler if paced else handler
        self._event_handlers.append((informer, chosen))
        informer.add_handler(chosen)

    # --- the reconcile contract ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        raise NotImplementedError

    def restarted(self) -> None:
        """Called when `run()` starts again after a failure; drop state kept from the old run."""

    # --- running -----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the event writer and informers (started() once every cache synced), then workers."""
        restarted = self._runs > 0
        self._runs += 1
        if restarted:
            self.queue = WorkQueue(rate_limiter=self._rate_limiter, name=self.name)
            self.restarted()
        try:
            async with trio.open_nursery() as nursery:
                if self._own_recorder:
                    await nursery.start(self.recorder.run)
                for inf in self.informers:
                    if not inf.running:  # not hosted by another component (or it stopped: restart it)
                        await nursery.start(inf.run)
                for inf in self.informers:
                    await inf.wait_synced()
                if restarted:  # the old queue's keys are lost: queue every cached object's keys
                    for inf, handler in self._event_handlers:
                        inf.replay(handler)
                for i in range(self.workers):
                    nursery.start_soon(self._worker, name=f"{self.name}-worker-{i}")
                task_status.started()
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        """One reconcile of `key` and its retry policy (public so tests can drive a single step)."""
        self._stats["reconciles"] += 1
        started = trio.current_time()
        try:
            result = await self.reconcile(key)
        except TemporaryError as exc:
            self._stats["errors"] += 1
            log.info("%s: %s: temporary error: %s", self.name, key, exc)
            if exc.delay is None:
                self.queue.add_rate_limited(key)
            else:
                self.queue.add_after(key, exc.delay)
            return
        except PermanentError as exc:
            self._stats["errors"] += 1
            log.warning("%s: %s: permanent error (not retried): %s", self.name, key, exc)
            self.queue.forget(key)
            return
        except Conflict:
            self._stats["conflicts"] += 1
            self.queue.add_rate_limited(key)
            return
        except Exception as exc:  # log it and retry with backoff (client-go HandleError)
            if routine_race(exc):
                self._stats["races"] += 1
                log.debug("%s: %s: %s (re-queued)", self.name, key, exc)
            else:
                self._stats["errors"] += 1
                log.exception("%s: reconcile %s failed", self.name, key)
            self.queue.add_rate_limited(key)
            return
        finally:
            if self._paced:
                cost = trio.current_time() - started
                if cost > PACE_MIN_COST:
                    self._cost[key] = cost
                else:
                    self._cost.pop(key, None)
        self.queue.forget(key)
        if result is not None and result.requeue_after is not None:
            self._stats["requeues"] += 1
            self.queue.add_after(key, result.requeue_after)

    def statistics(self) -> ControllerStatistics:
        return ControllerStatistics(
            name=self.name,
            workers=self.workers,
            queue=self.queue.statistics(),
            informers=tuple(inf.statistics() for inf in self.informers),
            **self._stats,
        )
