"""The global history: every retained event in revision order, addressed by absolute position.

Owns: History - the event list watchers read, where a revision starts in it, and cutting its head at
a compaction revision (which it records as compact_revision). Positions are absolute (base + list
index) and survive compaction, so a watcher is a plain integer cursor that compaction can overtake.
Written only by orchestra.store.mvcc; read by the watchers (orchestra.store.watch).
Must not import: anything from orchestra except orchestra.store.types.
"""

from __future__ import annotations

import bisect
import itertools

from orchestra.store.types import Event, rev_of


class History:
    """events[i] is at absolute position base + i. Appending is the store's: `events += batch`."""

    __slots__ = ("base", "compact_revision", "events")

    def __init__(self) -> None:
        self.events: list[Event] = []  # every retained event, in revision order
        self.base = 0  # absolute position of events[0]
        self.compact_revision = 0  # events at or before it are gone

    @property
    def end(self) -> int:
        """The absolute position the next event will take."""
        return self.base + len(self.events)

    def position(self, revision: int) -> int:
        """The absolute position of the first retained event at or after `revision`."""
        return self.base + bisect.bisect_left(self.events, revision, key=rev_of)

    def cut(self, revision: int) -> set[str]:
        """Drop the events at or before `revision` (> compact_revision); return their keys."""
        events = self.events
        cut = bisect.bisect_right(events, revision, key=rev_of)
        touched = {ev.kv.key for ev in itertools.islice(events, cut)}
        del events[:cut]
        self.base += cut
        self.compact_revision = revision
        return touched

    def restart(self, revision: int) -> None:
        """An empty history that begins after `revision` (a store recovered at `revision`)."""
        self.base += len(self.events)
        self.events.clear()
        self.compact_revision = revision
