"""LeaderElector on the virtual clock, over the real API core: acquire, renew, step down when renewals
fail (an error or a hang), take over after expiry, release on stop, two candidates: one leader."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.errors import ServiceUnavailable
from orchestra.client.local import LocalClient
from orchestra.controller.clock import virtual_clock
from orchestra.controller.leaderelection import DEFAULT_TIMINGS, LeaderElectionTimings, LeaderElector
from orchestra.store import StoreUnavailableError
from tests.controller.harness import Api, make_api

NS, NAME = "kube-system", "orchestra-controllers"


class Unreliable:
    """A LocalClient whose calls can be made to fail (an unreachable store) or hang (a partition)."""

    def __init__(self, client: LocalClient) -> None:
        self.inner = client
        self.registry = client.registry
        self.mode = "ok"  # "ok" | "refused" | "unreachable" | "hang"

    async def _gate(self) -> None:
        if self.mode == "refused":  # what a remote client gets
            raise ServiceUnavailable("storage is unavailable")
        if self.mode == "unreachable":  # what an in-process client gets: the store's StoreUnavailableError
            raise StoreUnavailableError("etcd unreachable")
        if self.mode == "hang":
            await trio.sleep_forever()

    async def get(self, *args: Any) -> Any:
        await self._gate()
        return await self.inner.get(*args)

    async def create(self, *args: Any) -> Any:
        await self._gate()
        return await self.inner.create(*args)

    async def update(self, *args: Any) -> Any:
        await self._gate()
        return await self.inner.update(*args)


class Leader:
    """lead(): records when it started and when it was cancelled."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.stopped: list[float] = []
        self._changed = trio.Event()

    @property
    def running(self) -> bool:
        return len(self.started) > len(self.stopped)

    async def wait_running(self, running: bool = True) -> None:
        while self.running != running:
            await self._changed.wait()

    def _note(self, times: list[float]) -> None:
        times.append(trio.current_time())
        self._changed.set()
        self._changed = trio.Event()

    async def lead(self) -> None:
        self._note(self.started)
        try:
            await trio.sleep_forever()
        finally:
            self._note(self.stopped)


def elector(api: Api, identity: str, client: Any = None,
            timings: LeaderElectionTimings = DEFAULT_TIMINGS) -> LeaderElector:
    return LeaderElector(client or api.client, namespace=NS, name=NAME, identity=identity, timings=timings,
                         clock=virtual_clock())


def lease(api: Api) -> dict[str, Any]:
    found = api.get("Lease", NAME, NS)
    assert found is not None
    return dict(found["spec"])


async def api_with_kube_system() -> Api:
    return await make_api("kube-system")


async def test_acquires_a_new_lease_and_renews_it(autojump_clock: trio.testing.MockClock) -> None:
    api = await api_with_kube_system()
    leader = Leader()
    a = elector(api, "a")
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run, leader.lead)
            await trio.sleep(0.1)
            assert leader.started == [0.0] and a.leading and a.is_leader()
            first = lease(api)
            assert first["holderIdentity"] == "a"
            assert first["leaseDurationSeconds"] == 15
            assert first["leaseTransitions"] == 0
            assert first["acquireTime"] == first["renewTime"] == "2025-01-01T00:00:00.000000Z"
            await trio.sleep(30)
            later = lease(api)
            assert later["holderIdentity"] == "a" and later["acquireTime"] == first["acquireTime"]
            assert later["renewTime"] >= "2025-01-01T00:00:28.000000Z"  # renewed every 2 s
            assert later["leaseTransitions"] == 0 and leader.stopped == []
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("mode", ["refused", "unreachable", "hang"])
async def test_steps_down_when_renewals_fail_for_the_renew_deadline(
        autojump_clock: trio.testing.MockClock, mode: str) -> None:
    api = await api_with_kube_system()
    leader = Leader()
    client = Unreliable(api.client)
    a = elector(api, "a", client)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run, leader.lead)
            await trio.sleep(5)
            client.mode = mode
            broke = trio.current_time()
            await leader.wait_running(False)
            # client-go's: a renewal round starts one retry period after the last good renewal (which
            # was less than 2 s before it broke) and gives up after the 10 s renew deadline
            assert broke + 10 <= leader.stopped[0] <= broke + 12 + 0.2
            await trio.testing.wait_all_tasks_blocked()
            assert not a.leading
            client.mode = "ok"  # the store is back and nobody else took the lease: leads again
            await leader.wait_running()
            assert a.transitions == 2
            nursery.cancel_scope.cancel()


async def test_another_candidate_takes_over_after_the_lease_expires(
        autojump_clock: trio.testing.MockClock) -> None:
    api = await api_with_kube_system()
    first, second = Leader(), Leader()
    client = Unreliable(api.client)
    a, b = elector(api, "a", client), elector(api, "b")
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run, first.lead)
            await trio.sleep(1)
            await nursery.start(b.run, second.lead)
            await trio.sleep(20)
            assert first.running and not second.running and b.leader == "a"
            client.mode = "hang"  # a is cut off: it neither renews nor hears about it
            cut = trio.current_time()
            await second.wait_running()
            # b times the lease from when it first saw a's last renewal (client-go's observedTime): that
            # renewal came at most 2 s before the cut, and b, polling every 2-4.4 s (2 s * [1, 2.2)),
            # saw it at most one poll after the cut; it waits the 15 s lease from then, plus at most one
            # more jittered poll
            assert cut + 15 - 2 <= second.started[0] <= cut + 4.4 + 15 + 4.4
            assert first.stopped and first.stopped[0] <= second.started[0]  # a stepped down first
            spec = lease(api)
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
            nursery.cancel_scope.cancel()


async def test_two_candidates_exactly_one_leads(autojump_clock: trio.testing.MockClock) -> None:
    api = await api_with_kube_system()
    leaders = [Leader(), Leader(), Leader()]
    electors = [elector(api, name) for name in ("a", "b", "c")]
    with trio.fail_after(400):
        async with trio.open_nursery() as nursery:
            for e, leader in zip(electors, leaders, strict=True):
                nursery.start_soon(e.run, leader.lead)
            await trio.sleep(0.5)
            for _ in range(300):
                assert sum(leader.running for leader in leaders) == 1
                holder = lease(api)["holderIdentity"]
                assert [e.identity for e in electors if e.leading] == [holder]
                await trio.sleep(1)
            assert sum(len(leader.started) for leader in leaders) == 1  # nobody ever lost it
            nursery.cancel_scope.cancel()


async def test_a_clean_stop_releases_the_lease_for_a_quick_successor(
        autojump_clock: trio.testing.MockClock) -> None:
    api = await api_with_kube_system()
    first, second = Leader(), Leader()
    a, b = elector(api, "a"), elector(api, "b")
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            scope_a = trio.CancelScope()

            async def run_a() -> None:
                with scope_a:
                    await a.run(first.lead)

            nursery.start_soon(run_a)
            await trio.sleep(1)
            nursery.start_soon(b.run, second.lead)
            await trio.sleep(10)
            scope_a.cancel()
            stopped = trio.current_time()
            await trio.testing.wait_all_tasks_blocked()
            assert first.stopped and lease(api)["holderIdentity"] == ""
            await second.wait_running()
            assert second.started[0] - stopped <= 1 + 4.5  # the released lease lasts 1 s, not 15
            spec = lease(api)
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
            nursery.cancel_scope.cancel()


def test_timings_must_leave_room_for_retries() -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElectionTimings(lease_duration=10, renew_deadline=10, retry_period=2)
