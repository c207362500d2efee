"""app/shutdown.py: a stop lets clean-up run; a forced stop cuts it short, even clean-up not yet begun."""

from __future__ import annotations

import trio

from orchestra.app.shutdown import Shutdown


async def _cluster(shutdown: Shutdown, log: list[str], cleanup_seconds: float) -> None:
    with shutdown.scope:
        try:
            await trio.sleep_forever()
        finally:
            with shutdown.shielded(timeout=100):
                log.append("cleaning")
                await trio.sleep(cleanup_seconds)
                log.append("cleaned")


async def test_stop_lets_the_clean_up_finish(autojump_clock: trio.testing.MockClock) -> None:
    shutdown, log = Shutdown(), []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cluster, shutdown, log, 5)
        await trio.sleep(1)
        shutdown.stop()
    assert log == ["cleaning", "cleaned"]
    assert trio.current_time() == 6


async def test_force_cuts_the_clean_up_short(autojump_clock: trio.testing.MockClock) -> None:
    shutdown, log = Shutdown(), []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cluster, shutdown, log, 50)
        await trio.sleep(1)
        shutdown.stop()
        await trio.sleep(2)
        shutdown.force()
    assert log == ["cleaning"]
    assert trio.current_time() == 3


async def test_a_clean_up_after_force_starts_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    shutdown = Shutdown()
    shutdown.force()
    with shutdown.shielded() as scope:
        await trio.sleep(10)
    assert scope.cancelled_caught
    assert trio.current_time() == 0


async def test_the_clean_up_has_a_deadline(autojump_clock: trio.testing.MockClock) -> None:
    shutdown = Shutdown()
    shutdown.stop()
    with shutdown.shielded(timeout=7):
        await trio.sleep(100)
    assert trio.current_time() == 7
