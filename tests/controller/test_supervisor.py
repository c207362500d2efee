"""Supervisor: a crashing component restarts with backoff on the virtual clock while the others go
on; the start protocol and cancellation are kept; a real Controller resumes from the caches."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.controller import Controller, RestartPolicy, Result, Supervisor
from tests.controller.harness import make_api, wait_for


class Flaky:
    """Starts (reporting its run number), then raises after `lasts` seconds, `crashes` times."""

    def __init__(self, crashes: int, lasts: float = 0.0) -> None:
        self.crashes = crashes
        self.lasts = lasts
        self.starts: list[float] = []

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        self.starts.append(trio.current_time())
        async with trio.open_nursery():  # a component's own nursery wraps what it raises in a group
            task_status.started(len(self.starts))
            await trio.sleep(self.lasts)
            if len(self.starts) <= self.crashes:
                raise RuntimeError(f"crash {len(self.starts)}")
            await trio.sleep_forever()


class Ticker:
    def __init__(self) -> None:
        self.ticks = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(1)
            self.ticks += 1


async def test_a_crashing_component_restarts_with_backoff_while_others_continue(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        supervisor = Supervisor(RestartPolicy(initial=1.0, maximum=8.0, reset_after=60.0))
        flaky, ticker = Flaky(crashes=6), Ticker()
        async with trio.open_nursery() as nursery:
            # started() is reported once: the first run's value
            assert await nursery.start(supervisor.run, "flaky", flaky.run) == 1
            await nursery.start(supervisor.run, "ticker", ticker.run)
            await trio.sleep(100.5)
            assert flaky.starts == [0.0, 1.0, 3.0, 7.0, 15.0, 23.0, 31.0]  # 1, 2, 4, 8, then the 8 s cap
            assert ticker.ticks == 100  # never disturbed
            stats = supervisor.statistics()
            assert (stats["flaky"].starts, stats["flaky"].crashes, stats["flaky"].running) == (7, 6, True)
            assert stats["flaky"].last_error == "RuntimeError('crash 6')"
            assert (stats["ticker"].crashes, stats["ticker"].running) == (0, True)
            nursery.cancel_scope.cancel()


async def test_backoff_starts_over_after_a_healthy_run(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        supervisor = Supervisor(RestartPolicy(initial=1.0, maximum=8.0, reset_after=60.0))
        flaky = Flaky(crashes=3, lasts=30.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, "flaky", flaky.run)
            await trio.sleep(200)
            assert flaky.starts == [0.0, 31.0, 63.0, 97.0]  # 30 s runs are not healthy: 1, 2, 4 s waits
            nursery.cancel_scope.cancel()
        supervisor = Supervisor(RestartPolicy(initial=1.0, maximum=8.0, reset_after=60.0))
        flaky = Flaky(crashes=3, lasts=61.0)
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            await nursery.start(supervisor.run, "flaky", flaky.run)
            await trio.sleep(300)
            assert [t - start for t in flaky.starts] == [0.0, 62.0, 124.0, 186.0]  # healthy runs: always 1 s
            nursery.cancel_scope.cancel()


async def test_a_failure_before_the_first_start_is_the_starters() -> None:
    async def broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError("address in use")

    supervisor = Supervisor()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            with pytest.raises(OSError, match="address in use"):
                await nursery.start(supervisor.run, "dns", broken)
    assert supervisor.statistics()["dns"].crashes == 0


@pytest.mark.parametrize("during", ["running", "backoff"])
async def test_cancellation_ends_supervision_at_once(autojump_clock: trio.testing.MockClock,
                                                    during: str) -> None:
    supervisor = Supervisor(RestartPolicy(initial=30.0))
    flaky = Flaky(crashes=1 if during == "backoff" else 0, lasts=1.0)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, "c", flaky.run)
            await trio.sleep(5)
            assert supervisor.statistics()["c"].running is (during == "running")
            cancelled_at = trio.current_time()
            nursery.cancel_scope.cancel()
        assert trio.current_time() == cancelled_at
    assert supervisor.statistics()["c"].running is False


class Counting(Controller):
    """Counts reconciles per ConfigMap key; its first worker crashes the controller once, on demand."""

    name = "counting"

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.seen: dict[str, int] = {}
        self.crash_next_get = False
        self.restarts = 0
        self.enqueue_on(self.informer("ConfigMap"))

    async def reconcile(self, key: str) -> Result | None:
        self.seen[key] = self.seen.get(key, 0) + 1
        return None

    def restarted(self) -> None:
        self.restarts += 1


async def test_a_restarted_controller_resyncs_every_key_and_restarts_its_informers(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        api = await make_api()
        await api.create("ConfigMap", {"metadata": {"name": "a"}})
        ctl = Counting(api.client)
        supervisor = Supervisor(RestartPolicy(initial=5.0))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, "counting", ctl.run)
            await wait_for(api, lambda: ctl.seen == {"default/a": 1})
            old_queue = ctl.queue

            async def get() -> str:
                raise RuntimeError("queue bug")

            old_queue.get = get  # type: ignore[method-assign]  # the worker's next get(), after "b"
            await api.create("ConfigMap", {"metadata": {"name": "b"}})
            await wait_for(api, lambda: supervisor.statistics()["counting"].crashes == 1)
            (informer,) = ctl.informers
            assert not informer.running  # it lived in the crashed controller's nursery
            await api.create("ConfigMap", {"metadata": {"name": "c"}})  # while it is down
            await trio.sleep(5)  # the restart's backoff (wait_for only looks again after a write)
            await wait_for(api, lambda: ctl.seen.get("default/c") == 1)
            assert ctl.queue is not old_queue and ctl.restarts == 1 and informer.running
            assert ctl.seen == {"default/a": 2, "default/b": 2, "default/c": 1}  # every cached key, once more
            nursery.cancel_scope.cancel()
