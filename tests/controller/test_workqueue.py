"""WorkQueue semantics: dedup, one worker per key, backoff timing in virtual time, add_after."""

from __future__ import annotations

import pytest
import trio

from orchestra.controller.workqueue import (
    ExponentialBackoff,
    QueueShutDown,
    RateLimiter,
    TokenBucket,
    WorkQueue,
)


def drain(q: WorkQueue[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except trio.WouldBlock:
            return out


@pytest.mark.parametrize(
    ("adds", "expected"),
    [
        (["a"], ["a"]),
        (["a", "a", "a"], ["a"]),
        (["a", "b", "a", "c", "b"], ["a", "b", "c"]),
        ([], []),
    ],
    ids=["single", "dedup", "dedup-keeps-first-order", "empty"],
)
async def test_dedup(adds: list[str], expected: list[str]) -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in adds:
        q.add(k)
    assert q.statistics().depth == len(expected)
    assert drain(q) == expected
    await trio.lowlevel.checkpoint()


async def test_key_is_never_handed_out_twice_while_processing() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")  # re-added while a worker holds it
    q.add("a")
    assert drain(q) == []  # not handed to a second worker
    assert q.statistics().processing == 1
    q.done("a")
    assert drain(q) == ["a"]  # processed again, once
    q.done("a")
    assert drain(q) == []
    await trio.lowlevel.checkpoint()


async def test_done_without_readd_does_not_requeue() -> None:
    with trio.fail_after(1):
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        key = await q.get()
        q.done(key)
        assert q.statistics().depth == 0


async def test_concurrent_workers_never_share_a_key(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        q: WorkQueue[str] = WorkQueue()
        active: set[str] = set()
        processed: list[str] = []

        async def worker() -> None:
            while True:
                try:
                    key = await q.get()
                except QueueShutDown:
                    return
                assert key not in active
                active.add(key)
                await trio.sleep(1)
                processed.append(key)
                active.discard(key)
                q.done(key)

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(worker)
            q.add("x")
            await trio.sleep(0.5)
            for _ in range(5):
                q.add("x")  # all while "x" is being processed
            q.add("y")
            await trio.sleep(10)
            q.shutdown()
        assert sorted(processed) == ["x", "x", "y"]


@pytest.mark.parametrize(
    ("failures", "expected_delay"),
    [(1, 0.005), (2, 0.010), (3, 0.020), (5, 0.080), (10, 2.56), (18, 655.36), (19, 1000.0), (40, 1000.0)],
    ids=["1st", "2nd", "3rd", "5th", "10th", "18th", "capped-19th", "capped-40th"],
)
async def test_backoff_timing(
    autojump_clock: trio.testing.MockClock, failures: int, expected_delay: float
) -> None:
    with trio.fail_after(5000):
        q: WorkQueue[str] = WorkQueue()
        for _ in range(failures - 1):
            q.rate_limiter.when("k")  # earlier failures
        start = trio.current_time()
        q.add_rate_limited("k")
        assert await q.get() == "k"
        assert trio.current_time() - start == pytest.approx(expected_delay)
        assert q.num_requeues("k") == failures


async def test_forget_resets_backoff(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        q: WorkQueue[str] = WorkQueue()
        for _ in range(5):
            q.rate_limiter.when("k")
        q.forget("k")
        start = trio.current_time()
        q.add_rate_limited("k")
        await q.get()
        assert trio.current_time() - start == pytest.approx(0.005)


@pytest.mark.parametrize(
    ("delays", "expected_at"),
    [([3.0], 3.0), ([10.0, 5.0], 5.0), ([5.0, 10.0], 5.0), ([0.0], 0.0), ([-1.0], 0.0)],
    ids=["one", "earlier-wins", "later-ignored", "zero-is-now", "negative-is-now"],
)
async def test_add_after(
    autojump_clock: trio.testing.MockClock, delays: list[float], expected_at: float
) -> None:
    with trio.fail_after(100):
        q: WorkQueue[str] = WorkQueue()
        start = trio.current_time()
        for d in delays:
            q.add_after("k", d)
        assert await q.get() == "k"
        assert trio.current_time() - start == pytest.approx(expected_at)
        q.done("k")
        with trio.move_on_after(50):
            await q.get()
            pytest.fail("a superseded add_after fired again")


async def test_add_after_then_add_is_immediate(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        q: WorkQueue[str] = WorkQueue()
        start = trio.current_time()
        q.add_after("k", 5)
        q.add("k")
        assert await q.get() == "k"
        assert trio.current_time() == start
        assert q.statistics().waiting == 1


async def test_shutdown_wakes_getters() -> None:
    with trio.fail_after(1):
        q: WorkQueue[str] = WorkQueue()
        raised = []

        async def getter() -> None:
            try:
                await q.get()
            except QueueShutDown:
                raised.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(getter)
            await trio.testing.wait_all_tasks_blocked()
            q.shutdown()
        assert raised == [True]
        q.add("late")  # ignored after shutdown
        assert q.statistics().depth == 0


async def test_token_bucket_limits_overall_rate(autojump_clock: trio.testing.MockClock) -> None:
    # synchronous: the limiter only reads trio's clock (no fail_after needed, nothing can block)
    limiter = RateLimiter(ExponentialBackoff(base=0.0), TokenBucket(qps=10, burst=3))
    delays = [limiter.when(f"k{i}") for i in range(5)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3] == pytest.approx(0.1)
    assert delays[4] == pytest.approx(0.2)
    await trio.sleep(1)  # a second later the bucket has refilled
    assert limiter.when("k") == 0.0
