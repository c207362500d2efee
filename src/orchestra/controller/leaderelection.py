"""Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it.

Owns: `LeaderElector` — campaigns for a Lease (holderIdentity, leaseDurationSeconds, acquireTime,
renewTime, leaseTransitions), runs `lead()` while it holds it, renews it every retry period, and
cancels `lead()` as soon as a renewal has not succeeded for the renew deadline (the API or its store
unreachable, the Lease taken). Then it campaigns again (kube-controller-manager exits and is restarted
by its kubelet; the effect is the same). Every write carries the resourceVersion it read, so two
electors never both win one round. As client-go, a candidate judges expiry by its own clock from the
moment it last saw the Lease's record change (never by comparing its clock with renewTime written
by another host), and on a clean stop the leader releases the Lease (holder "", duration 1 s) so a
successor need not wait out the lease. `LeaderElectionTimings`: DEFAULT_TIMINGS are kube's
(15 s lease, 10 s renew deadline, 2 s retry), FAST_TIMINGS orchestra's `--timings fast`.
All time is trio's (the campaign, the deadlines); the timestamps written into the Lease come from an
injectable wall clock (controller/clock.py).
Must not import: anything above the controller layer; the API only through a client.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import attrs
import trio

from orchestra.api.errors import ApiError, NotFound
from orchestra.client.base import Client
from orchestra.controller.clock import Clock, wall_clock
from orchestra.controller.reconciler import registry_of

log = logging.getLogger("orchestra.leaderelection")

JITTER_FACTOR = 1.2  # client-go's: a candidate retries every retry period * [1, 2.2)
RELEASE_TIMEOUT = 2.0  # seconds a clean stop waits to release the Lease
# A refusal (Conflict, AlreadyExists, 503) or an unreachable API or store: an in-process client raises
# the store's StoreUnavailableError, an OSError, where a remote one gets a 503 (store/types.py)
UNREACHABLE_OR_REFUSED = (ApiError, OSError)


@attrs.frozen
class LeaderElectionTimings:
    lease_duration: float = 15.0  # a candidate waits this long after the Lease last changed
    renew_deadline: float = 10.0  # the leader gives up when renewals have failed this long
    retry_period: float = 2.0  # between attempts to acquire or renew

    def __attrs_post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > JITTER_FACTOR * self.retry_period > 0:
            raise ValueError("leader election needs lease_duration > renew_deadline > 1.2 * retry_period > 0")


DEFAULT_TIMINGS = LeaderElectionTimings()  # kube-controller-manager's and kube-scheduler's defaults
FAST_TIMINGS = LeaderElectionTimings(lease_duration=6.0, renew_deadline=4.0, retry_period=1.0)


def micro_time(at: datetime) -> str:
    """A metav1.MicroTime as kube writes it: RFC 3339 with microseconds, UTC."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One candidate for the Lease `namespace/name`, known as `identity`."""

    def __init__(self, client: Client, *, namespace: str, name: str, identity: str,
                 timings: LeaderElectionTimings = DEFAULT_TIMINGS, clock: Clock = wall_clock,
                 rng: random.Random | None = None) -> None:
        self.client = client
        rt = registry_of(client).by_kind("Lease")
        if rt is None:
            raise KeyError("Lease")
        self.rt = rt
        self.namespace, self.name, self.identity = namespace, name, identity
        self.timings = timings
        self.clock = clock
        self._rng = rng or random.Random()
        self._observed: dict[str, Any] = {}  # the Lease's spec as last seen
        self._observed_at = 0.0  # trio time it was first seen so
        self.leading = False  # True while lead() runs
        self.transitions = 0  # times this elector started leading
        self._attempted = trio.Event()  # set once the first campaign's first attempt was decided

    @property
    def _key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def leader(self) -> str:
        """The holder of the Lease as last seen ("" when none)."""
        return str(self._observed.get("holderIdentity") or "")

    def is_leader(self) -> bool:
        return self.leader == self.identity

    async def wait_first_attempt(self) -> None:
        """Until the first attempt to acquire the Lease was decided (won, lost, failed, or gave up)."""
        await self._attempted.wait()

    async def run(self, lead: Callable[[], Awaitable[Any]], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forever: campaign until the Lease is ours, run `lead()` until it is lost, campaign again.
        Started at once (before the first campaign). Cancelled while leading, it stops `lead()` and
        then releases the Lease."""
        task_status.started()
        try:
            while True:
                await self._acquire()
                await self._lead(lead)
        finally:
            self._attempted.set()
            if self.is_leader():
                with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_TIMEOUT):
                    await self._release()

    async def _acquire(self) -> None:
        log.info("%s: attempting to acquire the lease %s/%s", self.identity, self.namespace, self.name)
        while True:
            won = False
            with trio.move_on_after(self.timings.renew_deadline):  # an attempt that hangs is given up
                won = await self._try_acquire_or_renew()
            self._attempted.set()
            if won:
                break
            await trio.sleep(self.timings.retry_period * (1 + JITTER_FACTOR * self._rng.random()))
        log.info("%s: acquired the lease %s/%s", self.identity, self.namespace, self.name)

    async def _lead(self, lead: Callable[[], Awaitable[Any]]) -> None:
        self.transitions += 1
        try:
            async with trio.open_nursery() as nursery:
                self.leading = True
                nursery.start_soon(lead)
                await self._renew_until_lost()
                nursery.cancel_scope.cancel()
        finally:
            self.leading = False
        log.warning("%s: lost the lease %s/%s; stopped leading", self.identity, self.namespace, self.name)

    async def _renew_until_lost(self) -> None:
        """Renew every retry period; return once renewals failed for the renew deadline (an API call
        still hanging then is cancelled: a leader that cannot reach its store must step down in time)."""
        while True:
            with trio.move_on_after(self.timings.renew_deadline) as deadline:
                renewed = await self._try_acquire_or_renew()
                while not renewed:  # client-go's PollImmediateUntil(retryPeriod, ..., renewDeadline)
                    await trio.sleep(self.timings.retry_period)
                    renewed = await self._try_acquire_or_renew()
            if deadline.cancelled_caught:
                return
            await trio.sleep(self.timings.retry_period)

    async def _try_acquire_or_renew(self) -> bool:
        now = micro_time(self.clock())
        mine = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.timings.lease_duration),
                "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            current = await self.client.get(self.rt, self.namespace, self.name)
        except NotFound:
            return await self._create(mine)
        except UNREACHABLE_OR_REFUSED as exc:
            log.warning("%s: error retrieving the lease %s: %s", self.identity, self._key, exc)
            return False
        spec = dict(current.get("spec") or {})
        self._observe(spec)
        if self.leader and not self.is_leader() and self._valid(spec):
            return False  # held by another, renewed within its duration as this candidate sees it
        transitions = int(spec.get("leaseTransitions") or 0)
        if self.is_leader():
            mine.update(acquireTime=spec.get("acquireTime") or now, leaseTransitions=transitions)
        else:
            mine["leaseTransitions"] = transitions + 1
        return await self._update(current, mine)

    def _valid(self, spec: dict[str, Any]) -> bool:
        duration = spec.get("leaseDurationSeconds") or self.timings.lease_duration
        return self._observed_at + float(duration) > trio.current_time()

    def _observe(self, spec: dict[str, Any]) -> None:
        if spec != self._observed:
            self._observed, self._observed_at = spec, trio.current_time()

    async def _create(self, spec: dict[str, Any]) -> bool:
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
        try:
            created = await self.client.create(self.rt, self.namespace, lease)
        except UNREACHABLE_OR_REFUSED as exc:  # AlreadyExists: another candidate won this round
            log.info("%s: could not create the lease %s: %s", self.identity, self._key, exc)
            return False
        self._observe(dict(created.get("spec") or {}))
        return True

    async def _update(self, current: dict[str, Any], spec: dict[str, Any]) -> bool:
        """Write `spec` over `current`, carrying its resourceVersion (a Conflict: another won)."""
        try:
            merged = {**(current.get("spec") or {}), **spec}
            updated = await self.client.update(self.rt, {**current, "spec": merged})
        except UNREACHABLE_OR_REFUSED as exc:
            log.info("%s: could not update the lease %s: %s", self.identity, self._key, exc)
            return False
        self._observe(dict(updated.get("spec") or {}))
        return True

    async def _release(self) -> None:
        """Give the Lease up (client-go's ReleaseOnCancel): no holder, a 1 s duration."""
        try:
            current = await self.client.get(self.rt, self.namespace, self.name)
        except UNREACHABLE_OR_REFUSED:
            return  # best effort: the Lease then expires after its duration
        if (current.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        now = micro_time(self.clock())
        if await self._update(current, {"holderIdentity": "", "leaseDurationSeconds": 1,
                                        "acquireTime": now, "renewTime": now}):
            log.info("%s: released the lease %s/%s", self.identity, self.namespace, self.name)
