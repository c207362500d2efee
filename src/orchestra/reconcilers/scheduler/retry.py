"""Retries: pods whose informer event the scheduler could not handle, tried again with backoff.

Owns: per-key attempt counts and due times (the pod backoff: `initial` doubling up to `maximum`,
trio time) and waiting for the next due key. A pod the scheduler cannot even turn into a PodInfo
(a stored object it cannot digest) never reaches the scheduling queue and its backoffQ; this is
that pod's backoff, so one bad pod is retried without ever stopping the others.
Must not import: client, controller.
"""

from __future__ import annotations

import heapq
import math

import trio


class Retries:
    def __init__(self, *, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._attempts: dict[str, int] = {}
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._changed = trio.Event()

    def failed(self, key: str) -> float:
        """Record a failure of `key`; returns the delay before its next try."""
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        delay = min(self.initial * math.pow(2, min(attempts - 1, 30)), self.maximum)
        due = self._due[key] = trio.current_time() + delay
        heapq.heappush(self._heap, (due, key))
        self._changed.set()
        return delay

    def forget(self, key: str) -> None:
        """`key` was handled (or deleted): no more retries, and a later failure starts over."""
        self._attempts.pop(key, None)
        self._due.pop(key, None)

    def attempts(self, key: str) -> int:
        return self._attempts.get(key, 0)

    def __len__(self) -> int:
        return len(self._due)

    async def wait_due(self) -> list[str]:
        """The keys whose retry is due (waits for at least one); they stay known until `forget`."""
        while True:
            now = trio.current_time()
            due: list[str] = []
            while self._heap and self._heap[0][0] <= now:
                at, key = heapq.heappop(self._heap)
                if self._due.get(key) == at:
                    due.append(key)
            if due:
                return due
            self._changed = trio.Event()
            with trio.move_on_at(self._heap[0][0] if self._heap else math.inf):
                await self._changed.wait()
