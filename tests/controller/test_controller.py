"""Controller runtime: retry policy as exception types, requeue_after, one worker per key."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from orchestra.api.errors import NAMESPACE_TERMINATING, Cause, Conflict, Forbidden, NotFound
from orchestra.controller import Controller, PermanentError, Result, TemporaryError
from tests.controller.harness import make_api


class Scripted(Controller):
    """Reconciles ConfigMaps; the n-th reconcile of a key does what `script[n]` says."""

    name = "scripted"

    def __init__(self, client: Any, script: list[Any], **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.script = script
        self.calls: list[tuple[str, float]] = []
        self.active: set[str] = set()
        self.enqueue_on(self.informer("ConfigMap"))

    async def reconcile(self, key: str) -> Result | None:
        assert key not in self.active, "one key in two workers"
        self.active.add(key)
        try:
            self.calls.append((key, trio.current_time()))
            step = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else None
            await trio.sleep(0.001)
            if isinstance(step, BaseException):
                raise step
            return step  # type: ignore[no-any-return]
        finally:
            self.active.discard(key)


@pytest.mark.parametrize(
    ("script", "expected_offsets"),
    [
        ([None], [0.0]),
        ([Result(requeue_after=3.0), None], [0.0, 3.001]),
        ([TemporaryError("later", delay=2.0), None], [0.0, 2.001]),
        ([TemporaryError("backoff"), TemporaryError("backoff"), None], [0.0, 0.006, 0.017]),
        ([Conflict("stale"), Conflict("stale"), None], [0.0, 0.006, 0.017]),
        ([RuntimeError("bug"), None], [0.0, 0.006]),
        ([PermanentError("never")], [0.0]),
    ],
    ids=["done", "requeue-after", "temporary-delay", "temporary-backoff", "conflict-backoff",
         "unexpected-backoff", "permanent"],
)
async def test_retry_policy(
    autojump_clock: trio.testing.MockClock, script: list[Any], expected_offsets: list[float]
) -> None:
    with trio.fail_after(100):
        api = await make_api()
        ctl = Scripted(api.client, script)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            start = trio.current_time()
            await api.create("ConfigMap", {"metadata": {"name": "a"}})
            await trio.sleep(50)
            nursery.cancel_scope.cancel()
        offsets = [round(t - start, 6) for _, t in ctl.calls]
        assert offsets == pytest.approx(expected_offsets)
        assert ctl.statistics().reconciles == len(expected_offsets)


async def test_one_key_never_in_two_workers(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        api = await make_api()

        class Slow(Scripted):
            async def reconcile(self, key: str) -> Result | None:
                result = await super().reconcile(key)
                await trio.sleep(1)
                return result

        ctl = Slow(api.client, [], workers=4)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            created = await api.create("ConfigMap", {"metadata": {"name": "a"}, "data": {"v": "0"}})
            await trio.sleep(0.01)
            for i in range(1, 6):  # five changes while the first reconcile runs
                created["data"] = {"v": str(i)}
                created = await api.client.update(api.rt("ConfigMap"), created)
            await api.create("ConfigMap", {"metadata": {"name": "b"}})
            await trio.sleep(10)
            nursery.cancel_scope.cancel()
        assert sorted(k for k, _ in ctl.calls) == ["default/a", "default/a", "default/b"]
        stats = ctl.statistics()
        assert stats.workers == 4 and stats.queue.processing == 0


async def test_shared_informer_started_once(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        first = Scripted(api.client, [])
        second = Scripted.__new__(Scripted)
        Controller.__init__(second, api.client)
        second.script, second.calls, second.active = [], [], set()
        second.enqueue_on(second.use_informer(first.informers[0]))
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)
            await nursery.start(second.run)  # waits for the shared cache, does not start it again
            await api.create("ConfigMap", {"metadata": {"name": "a"}})
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        assert [k for k, _ in first.calls] == [k for k, _ in second.calls] == ["default/a"]


class PacedSync(Controller):
    """Keyed by one name; ConfigMap events are paced; a sync takes `cost` seconds (of trio time)."""

    name = "paced"

    def __init__(self, client: Any, cost: float) -> None:
        super().__init__(client)
        self.cost = cost
        self.calls: list[float] = []
        self.enqueue_on(self.informer("ConfigMap"), lambda _t, _o, _n: ["the-key"], paced=True)

    async def reconcile(self, key: str) -> Result | None:
        self.calls.append(trio.current_time())
        await trio.sleep(self.cost)
        return None


@pytest.mark.parametrize(("cost", "expected"), [(0.1, [0.0, 0.5]), (0.0005, [0.0, 0.2, 0.25])],
                         ids=["expensive-key-waits", "cheap-key-does-not"])
async def test_paced_events_wait_for_a_multiple_of_the_last_sync(autojump_clock: trio.testing.MockClock,
                                                                 cost: float, expected: list[float]) -> None:
    """An expensive key's paced events wait PACE_FACTOR x its last sync (and coalesce meanwhile); a key
    that syncs in under a millisecond is synced again at once."""
    with trio.fail_after(100):
        api = await make_api()
        ctl = PacedSync(api.client, cost)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            start = trio.current_time()
            await api.create(
                "ConfigMap", {"metadata": {"name": "a"}}
            )  # first sync: its cost is not known yet
            await trio.sleep(0.2)
            await api.create("ConfigMap", {"metadata": {"name": "b"}})  # expensive: due 0.2 + 3 x 0.1
            await trio.sleep(0.05)
            await api.create("ConfigMap", {"metadata": {"name": "c"}})  # expensive: coalesced with b
            await trio.sleep(10)
            nursery.cancel_scope.cancel()
        assert [round(t - start, 6) for t in ctl.calls] == pytest.approx(expected)


def _terminating() -> Forbidden:
    return Forbidden('endpointslices.discovery.k8s.io "x" is forbidden: unable to create new content in '
                     "namespace gone because it is being terminated",
                     causes=[Cause(NAMESPACE_TERMINATING, "namespace gone is being terminated",
                                   "metadata.namespace")])


@pytest.mark.parametrize(
    ("failure", "logged", "stat"),
    [
        (NotFound('pods "x" not found'), False, "races"),
        (_terminating(), False, "races"),
        (Forbidden('pods "x" is forbidden: quota exceeded'), True, "errors"),
        (RuntimeError("bug"), True, "errors"),
    ],
    ids=["not-found", "namespace-terminating", "other-forbidden", "bug"],
)
async def test_routine_races_end_quietly(autojump_clock: trio.testing.MockClock,
                                         caplog: pytest.LogCaptureFixture, failure: Exception,
                                         logged: bool, stat: str) -> None:
    """A reconcile whose object went away, or whose namespace is terminating, logs no traceback;
    the key is retried with backoff all the same (the next reconcile sees the cache change)."""
    with trio.fail_after(100):
        api = await make_api()
        ctl = Scripted(api.client, [failure, None])
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            start = trio.current_time()
            await api.create("ConfigMap", {"metadata": {"name": "a"}})
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert [round(t - start, 6) for _, t in ctl.calls] == pytest.approx([0.0, 0.006])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bool(errors) == logged
    assert getattr(ctl.statistics(), stat) == 1
