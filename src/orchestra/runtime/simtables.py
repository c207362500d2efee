"""The simulated runtime's tables: its sandboxes and containers, their indexes, and their persistence.

Owns: the objects the runtime knows (by id, sandboxes by name, containers by pod uid, so a pod's
lookups stay O(its own containers) with 30,000 pods on one runtime), and — with a state directory —
keeping them on disk: every change goes to the journal (simjournal.py) as a record (simpersist.py),
the journal is compacted once it has grown to several times the live state, and `restore()` rebuilds
the tables from it (the runtime then resumes the containers that were running).
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from orchestra.runtime.base import LABEL_POD_UID, ContainerState
from orchestra.runtime.simclock import SimClock
from orchestra.runtime.simjournal import Journal, JournalError
from orchestra.runtime.simnet import PodNetworks
from orchestra.runtime.simpersist import INFRA_SCRIPT, Record, Restored, log_record, snapshot
from orchestra.runtime.simscript import SimScript
from orchestra.runtime.simstate import SimContainer, SimSandbox

COMPACT_MIN = 20_000  # journal records before compaction is considered (then: 4x the live objects)


class StateUnavailable(Exception):
    """The state directory cannot be opened (in use by another process, unreadable)."""


class SimTables:
    def __init__(self, clock: SimClock, state_dir: Path | None) -> None:
        self.clock = clock
        self.journal = Journal(state_dir) if state_dir is not None else None
        self.generation = 0  # opens of the persisted state: part of new ids, so they never repeat
        self.sandboxes: dict[str, SimSandbox] = {}
        self.containers: dict[str, SimContainer] = {}
        self.sandbox_by_name: dict[str, SimSandbox] = {}
        self.by_pod_uid: dict[str, dict[str, SimContainer]] = {}  # pod uid -> {id: container}, infra included
        self._images: set[str] = set()
        self._compacting = False
        self._nursery: trio.Nursery | None = None
        self._output_hook = self._output  # one bound method for every container (30,000 of them)

    # --- the tables -------------------------------------------------------------------------------

    def add_sandbox(self, sandbox: SimSandbox) -> None:
        self.sandboxes[sandbox.id] = self.sandbox_by_name[sandbox.spec.name] = sandbox

    def add_container(self, c: SimContainer) -> None:
        self.containers[c.id] = c
        self.by_pod_uid.setdefault(c.labels.get(LABEL_POD_UID, ""), {})[c.id] = c
        c.sandbox.members[c.id] = c
        if self.journal is not None:
            c.on_output = self._output_hook

    def remove_container(self, c: SimContainer, *, record: bool = True) -> None:
        if record and c.id in self.containers:
            self.record({"k": "rm", "id": c.id})
        self.containers.pop(c.id, None)
        c.sandbox.members.pop(c.id, None)
        uid = c.labels.get(LABEL_POD_UID, "")
        same_pod = self.by_pod_uid.get(uid)
        if same_pod is not None:
            same_pod.pop(c.id, None)
            if not same_pod:
                del self.by_pod_uid[uid]

    def remove_sandbox(self, sandbox: SimSandbox) -> None:
        """Drop the sandbox (its containers are removed by the caller, unrecorded)."""
        self.record({"k": "rmsb", "id": sandbox.id})
        del self.sandboxes[sandbox.id]
        if self.sandbox_by_name.get(sandbox.spec.name) is sandbox:
            del self.sandbox_by_name[sandbox.spec.name]

    # --- persistence ------------------------------------------------------------------------------

    def record(self, record: Record) -> None:
        journal = self.journal
        if journal is None:
            return
        journal.append(record)
        live = len(self.containers) + len(self.sandboxes)
        due = journal.appended > max(COMPACT_MIN, 4 * live)
        if due and not self._compacting and self._nursery is not None:
            self._compacting = True
            self._nursery.start_soon(self._compact, journal)

    def _output(self, c: SimContainer, at: float, stream: int, line: bytes) -> None:
        self.record(log_record(c, at, stream, line, self.clock))

    def load(self) -> Restored | None:
        """Lock the state directory and read what the journal adds up to (None: no state directory).
        Synchronous, at start-up, as the store reads its log: no thread, so virtual clocks stay exact."""
        journal = self.journal
        if journal is None:
            return None
        try:
            records = journal.open()
        except (OSError, JournalError) as exc:
            raise StateUnavailable(
                f"cannot open the simulated runtime's state in {journal.directory}: {exc}") from exc
        restored = Restored(self.clock)
        for r in records:
            restored.apply(r)
        return restored

    async def restore(self, restored: Restored | None, nursery: trio.Nursery, script: SimScript,
                      networks: PodNetworks, resume: Callable[[SimContainer], None]) -> None:
        """Rebuild the tables from what `load` read (claiming the running sandboxes' IPs) and `resume` each
        running container. Later changes are journalled (compacted in the background if it is due)."""
        journal = self.journal
        if journal is None or restored is None:
            for c in list(self.containers.values()):  # run() again, in memory: the processes go on
                if c.state == ContainerState.RUNNING:
                    resume(c)
            return
        self._nursery = nursery
        self.generation = restored.generation + 1
        script.present_images |= restored.images
        self._images = script.present_images
        self.sandboxes, self.containers, self.sandbox_by_name, self.by_pod_uid = {}, {}, {}, {}
        for sandbox in restored.sandboxes.values():
            self.add_sandbox(sandbox)
            if sandbox.infra is not None and sandbox.infra.state == ContainerState.RUNNING and sandbox.ip:
                networks.claim(sandbox.ip, sandbox.id)
        for c in restored.containers.values():
            c.script = INFRA_SCRIPT if c.infra else (script.explicit(c.spec) or c.script)
            self.add_container(c)
            if c.state == ContainerState.RUNNING:
                resume(c)
        nursery.start_soon(journal.run)
        self.record({"k": "gen", "n": self.generation})

    def _snapshot(self) -> list[bytes]:
        return snapshot(self.generation, self._images, list(self.sandboxes.values()), self.clock)

    async def _compact(self, journal: Journal) -> None:
        try:
            await journal.rewrite(self._snapshot())
        finally:
            self._compacting = False

    def close(self) -> None:
        self._nursery = None
        if self.journal is not None:
            self.journal.close()

    def discard(self) -> None:
        if self.journal is not None:
            self.journal.discard()
