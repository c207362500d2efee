"""The memory backend: the store keeps nothing beyond the process.

Owns: MemoryBackend, the no-op implementation of orchestra.store.backend.Backend - nothing to
recover, nothing to append, every revision durable at once, no snapshot and no upkeep.
Must not import: anything from orchestra except orchestra.store.backend and orchestra.store.types.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import trio

from orchestra.store.backend import Feed
from orchestra.store.types import Event


class MemoryBackend:
    __slots__ = ()

    name = "memory"
    upkeep_interval = math.inf

    def recover(self, feed: Feed) -> None:
        """Nothing kept: the store starts empty at revision 0."""

    def append(self, revision: int, events: Sequence[Event]) -> None:
        """Nothing to keep: the in-process index and history are all there is."""

    async def wait_durable(self, revision: int) -> None:
        await trio.lowlevel.checkpoint()

    async def snapshot(self, feed: Feed) -> None:
        await trio.lowlevel.checkpoint()

    async def upkeep(self, feed: Feed) -> None:
        """Never called (upkeep_interval is infinite); a checkpoint like every other operation."""
        await trio.lowlevel.checkpoint()

    def statistics(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        """Nothing to release."""
