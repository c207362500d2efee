"""A keyed, de-duplicating work queue with per-key exponential backoff (client-go's workqueue).

Owns: the queue semantics controllers rely on —
  * a key waiting in the queue is held once however often it is added (dedup);
  * a key is never handed to two workers at once: re-added while processing, it is queued again
    only when the worker calls `done(key)`;
  * `add_after(key, delay)` parks a key until `trio.current_time() + delay` (the earliest wins);
  * `add_rate_limited(key)` backs off per key: 5 ms doubling up to 1000 s (client-go's
    ItemExponentialFailureRateLimiter defaults), reset by `forget(key)`; an optional overall token
    bucket (client-go's 10 qps / burst 100) can be combined with it;
  * `shutdown()` makes every `get()` raise `QueueShutDown`.
Time comes only from trio, so tests drive it with the virtual clock.
Part of the controller runtime: only orchestra.controller imports it (other layers use the names
orchestra.controller re-exports). Must not import: anything from orchestra (it is dependency-free).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs
import trio

K = TypeVar("K", bound=Hashable)

BASE_DELAY = 0.005  # client-go DefaultItemBasedRateLimiter: 5 ms ...
MAX_DELAY = 1000.0  # ... doubling up to 1000 s


class QueueShutDown(Exception):
    """Raised by `WorkQueue.get()` once the queue is shut down."""


@attrs.define
class ExponentialBackoff:
    """Per-key failure backoff: base * 2**failures, capped; `forget` resets a key."""

    base: float = BASE_DELAY
    cap: float = MAX_DELAY
    _failures: dict[Hashable, int] = attrs.field(factory=dict, init=False)

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n >= 64:  # 2**64 * 5ms is far past any cap; avoid float overflow
            return self.cap
        return min(self.base * math.pow(2, n), self.cap)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


@attrs.define
class TokenBucket:
    """An overall rate limit (client-go's BucketRateLimiter): `qps` tokens a second, `burst` deep.
    `when()` reserves a token and returns how long the caller must wait for it."""

    qps: float = 10.0
    burst: int = 100
    _tokens: float = attrs.field(init=False, default=0.0)  # negative: reserved ahead
    _last: float | None = attrs.field(init=False, default=None)

    def when(self) -> float:
        now = trio.current_time()
        if self._last is None:  # first use: a full bucket
            self._tokens, self._last = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


@attrs.define
class RateLimiter:
    """max(per-key exponential backoff, optional overall bucket) like DefaultControllerRateLimiter."""

    backoff: ExponentialBackoff = attrs.field(factory=ExponentialBackoff)
    bucket: TokenBucket | None = None

    def when(self, key: Hashable) -> float:
        delay = self.backoff.when(key)
        if self.bucket is not None:
            delay = max(delay, self.bucket.when())
        return delay

    def forget(self, key: Hashable) -> None:
        self.backoff.forget(key)

    def failures(self, key: Hashable) -> int:
        return self.backoff.failures(key)


@attrs.frozen
class QueueStatistics:
    depth: int  # keys ready to be handed out
    processing: int  # keys a worker holds now
    waiting: int  # keys parked by add_after / backoff
    adds: int  # add() calls (including ones absorbed by dedup)
    retries: int  # add_rate_limited() calls
    shutting_down: bool


class WorkQueue(Generic[K]):
    """See the module docstring. All methods run in the trio thread; only `get` waits."""

    def __init__(self, *, rate_limiter: RateLimiter | None = None, name: str = "") -> None:
        self.name = name
        self.rate_limiter = rate_limiter or RateLimiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # queued or to be re-queued on done()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []  # heap of (ready_at, seq, key)
        self._ready_at: dict[K, float] = {}  # earliest pending ready time per parked key
        self._seq = 0
        self._changed = trio.Event()
        self._shutting_down = False
        self._adds = 0
        self._retries = 0

    # --- producers ---------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._shutting_down:
            return
        self._adds += 1
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wake()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = trio.current_time() + delay
        if self._ready_at.get(key, math.inf) <= ready_at:
            return  # already parked to be ready sooner
        self._ready_at[key] = ready_at
        self._seq += 1
        heapq.heappush(self._waiting, (ready_at, self._seq, key))
        self._wake()  # a getter may need an earlier deadline

    def add_rate_limited(self, key: K) -> None:
        self._retries += 1
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.failures(key)

    def shutdown(self) -> None:
        self._shutting_down = True
        self._wake()

    # --- consumers ---------------------------------------------------------------------------

    async def get(self) -> K:
        """The next ready key (now held by the caller until `done(key)`); raises QueueShutDown."""
        while True:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            self._promote()
            if self._queue:
                key = self._queue.popleft()
                self._dirty.discard(key)
                self._processing.add(key)
                await trio.lowlevel.checkpoint()
                return key
            deadline = self._waiting[0][0] if self._waiting else math.inf
            with trio.move_on_at(deadline):
                await self._changed.wait()

    def get_nowait(self) -> K:
        """Like get() but raises trio.WouldBlock when nothing is ready."""
        if self._shutting_down:
            raise QueueShutDown(self.name)
        self._promote()
        if not self._queue:
            raise trio.WouldBlock
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake()

    # --- introspection -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def statistics(self) -> QueueStatistics:
        return QueueStatistics(
            depth=len(self._queue),
            processing=len(self._processing),
            waiting=len(self._ready_at),
            adds=self._adds,
            retries=self._retries,
            shutting_down=self._shutting_down,
        )

    # --- internals ---------------------------------------------------------------------------

    def _promote(self) -> None:
        """Move parked keys whose time has come into the queue."""
        now = trio.current_time()
        while self._waiting and self._waiting[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._waiting)
            if self._ready_at.get(key) != ready_at:
                continue  # superseded by an earlier add_after of the same key
            del self._ready_at[key]
            self.add(key)

    def _wake(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()
