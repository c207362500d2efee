"""Supervisor: one component's unexpected exception never ends the process; the component restarts.

Owns: running long-lived components (`run(*, task_status)` services: controllers, the scheduler,
node agents, the proxy and DNS) and what their failures do —
  * the start protocol is kept: `started()` is reported once, with the first run's value, when the
    first run reports it; a first run that fails before starting fails `nursery.start` as it would
    unsupervised (a start-up error, such as a DNS port in use, is the user's to see);
  * after that, an `Exception` out of the component is logged with its traceback, counted, and the
    component's `run` is called again after a backoff: `initial` seconds doubling up to `maximum`,
    starting over once a run has lasted `reset_after` seconds (trio time: tests use a virtual clock);
  * cancellation (BaseException) passes straight through, so shutdown stays as quick as without it;
    so do KeyboardInterrupt and other BaseExceptions;
  * a run that returns normally ends supervision (the component decided it is done).
Components must tolerate `run` being called again after it raised (each says so in its docstring).

    supervisor = Supervisor()
    await nursery.start(supervisor.run, "scheduler", scheduler.run)
Must not import: reconcilers, node, net, apiserver, cli.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

log = logging.getLogger("orchestra.controller.supervisor")


@attrs.frozen
class RestartPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    reset_after: float = 60.0  # a run that lasted this long was healthy: the next crash waits `initial`

    def delay(self, crashes: int) -> float:
        return float(min(self.initial * 2 ** min(crashes - 1, 30), self.maximum))


@attrs.define
class ComponentStatistics:
    name: str
    running: bool = False
    starts: int = 0
    crashes: int = 0  # every failure after the first start
    consecutive: int = 0  # crashes since the last healthy run (what the backoff is computed from)
    last_error: str = ""
    restart_at: float | None = None  # trio time of the pending restart


class _FirstStart:
    """The task_status a run gets: forwards its first `started()` to the supervisor's own caller."""

    def __init__(self, outer: trio.TaskStatus[Any]) -> None:
        self.outer = outer
        self.done = False

    def started(self, value: Any = None) -> None:
        self.done = True
        self.outer.started(value)


class Supervisor:
    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self.components: dict[str, ComponentStatistics] = {}

    async def run(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any,
                  task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Run `fn(*args, task_status=...)` until cancelled, restarting it when it raises."""
        stats = self.components[name] = ComponentStatistics(name)
        first = _FirstStart(task_status)
        status: Any = first
        while True:
            began = trio.current_time()
            stats.starts += 1
            stats.running, stats.restart_at = True, None
            try:
                await fn(*args, task_status=status)
                return  # finished on its own: nothing to restart
            except Exception as exc:
                if not first.done:
                    raise  # it never started: a start-up failure belongs to whoever started it
                self._crashed(stats, exc, trio.current_time() - began)
            finally:
                stats.running = False
            status = trio.TASK_STATUS_IGNORED  # started() was reported once, by the first run
            assert stats.restart_at is not None
            await trio.sleep_until(stats.restart_at)

    def _crashed(self, stats: ComponentStatistics, exc: Exception, lasted: float) -> None:
        if lasted >= self.policy.reset_after:
            stats.consecutive = 0
        stats.crashes += 1
        stats.consecutive += 1
        stats.last_error = repr(_leaf(exc))
        delay = self.policy.delay(stats.consecutive)
        stats.restart_at = trio.current_time() + delay
        log.error("%s crashed (crash %d); restarting in %.1fs", stats.name, stats.crashes, delay,
                  exc_info=exc)

    def statistics(self) -> dict[str, ComponentStatistics]:
        return {name: attrs.evolve(s) for name, s in self.components.items()}


def _leaf(exc: BaseException) -> BaseException:
    """The exception inside the single-exception groups nurseries wrap it in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
