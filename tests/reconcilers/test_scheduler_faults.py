"""Scheduler faults stay with their pod: a pod it cannot digest, an unexpected error while scheduling,
and a crash of the scheduler itself (restarted by a Supervisor) — others keep being scheduled."""

from __future__ import annotations

from typing import Any

import orjson
import trio
import trio.testing

from orchestra.controller import RestartPolicy, Supervisor
from orchestra.reconcilers.scheduler import Scheduler
from orchestra.reconcilers.scheduler.framework import Framework
from tests.controller.harness import Api, make_api
from tests.reconcilers.test_scheduler_helpers import (
    add_nodes,
    events,
    node,
    node_of,
    running,
    spod,
    wait_bound,
    wait_unschedulable,
)

Obj = dict[str, Any]


def store_raw(api: Api, name: str, change: Any) -> None:
    """Rewrite a stored pod behind the API's back: what an older version (or an edited etcd) left."""
    key = api.rt("Pod").key("default", name)
    kv = api.store.get(key)
    assert kv is not None
    obj = orjson.loads(kv.value)
    change(obj)
    api.store.put(key, orjson.dumps(obj))


async def test_a_pod_it_cannot_digest_is_retried_with_backoff_while_others_schedule(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("a"))
        await api.create("Pod", spod("bad"))
        store_raw(api, "bad", lambda p: p["spec"].update(priority="high"))  # no int32: PodInfo fails
        async with running(api) as scheduler:
            start = trio.current_time()
            await api.create("Pod", spod("good", cpu="100m"))
            await wait_bound(api, "good")
            assert scheduler.statistics().handler_errors == 1
            seen = []
            for until in (0.5, 1.5, 3.5, 7.5, 15.5, 25.5):  # retried after 1, 2, 4, 8, then 10 s (the cap)
                await trio.sleep_until(start + until)
                seen.append(scheduler.statistics().handler_errors)
            assert seen == [1, 2, 3, 4, 5, 6]
            assert node_of(api, "bad") is None
            store_raw(api, "bad", lambda p: p["spec"].update(priority=0))  # repaired: handled at once
            await wait_bound(api, "bad")
            assert scheduler.statistics().handler_errors == 6


async def test_an_unexpected_scheduling_error_is_that_pods_scheduler_error(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("a"))
        async with running(api) as scheduler:
            original = Framework.schedule

            def schedule(self: Framework, pod: Any, *args: Any) -> Any:
                if pod.name == "boom":
                    raise RuntimeError("a bug")
                return original(self, pod, *args)

            bound = schedule.__get__(scheduler.framework)
            scheduler.framework.schedule = bound  # type: ignore[method-assign]
            await api.create("Pod", spod("boom"))
            cond = await wait_unschedulable(api, "boom")
            assert cond["reason"] == "SchedulerError"
            assert cond["message"] == "scheduling failed: RuntimeError('a bug')"
            assert [e["type"] for e in events(api, "FailedScheduling", "boom")] == ["Warning"]
            await api.create("Pod", spod("fine"))
            await wait_bound(api, "fine")
            del scheduler.framework.schedule  # the bug is gone: the pod's backoff retry binds it
            await wait_bound(api, "boom")
            assert scheduler.statistics().errors >= 1


async def test_a_crashed_scheduler_is_restarted_from_the_caches(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("a", cpu="1"))
        scheduler = Scheduler(api.client, seed=7)
        supervisor = Supervisor(RestartPolicy(initial=2.0))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, "scheduler", scheduler.run)
            crashed_queue = scheduler.queue

            async def pop() -> Any:
                raise RuntimeError("queue bug")

            crashed_queue.pop = pop  # type: ignore[method-assign]  # the next pop, after "first"
            await api.create("Pod", spod("first", cpu="600m"))
            await wait_bound(api, "first")
            await trio.testing.wait_all_tasks_blocked()
            stats = supervisor.statistics()["scheduler"]
            assert (stats.crashes, stats.running) == (1, False)
            crashed_at = trio.current_time()
            await api.create("Pod", spod("second", cpu="600m"))  # does not fit beside "first"
            await api.create("Pod", spod("third", cpu="300m"))
            bound_at = await wait_bound(api, "third")
            assert bound_at - crashed_at == 2.0  # restarted after its backoff, with "first" in its cache
            assert scheduler.queue is not crashed_queue
            await wait_unschedulable(api, "second")
            assert supervisor.statistics()["scheduler"].starts == 2
            nursery.cancel_scope.cancel()
