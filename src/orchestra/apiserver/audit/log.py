"""The audit log file: JSON lines, written in batches off the request path, rotated by size.

Owns: `AuditLog(path, max_bytes=, backups=, ...)` — kube's log backend in batch mode
(--audit-log-mode=batch): a request only appends its event to an in-memory buffer (`add`); the
`run()` task writes what has gathered every `flush_interval` seconds (or as soon as `batch_size`
events wait), one JSON document per line, in a worker thread; before a line would take the file
past `max_bytes`, the file is rotated (`audit.log` -> `audit.log.1` -> ... -> `audit.log.<backups>`,
the oldest dropped), as --audit-log-maxsize / --audit-log-maxbackup do. When the buffer holds
`buffer_size` events (the disk cannot keep up), new ones are dropped and counted, as kube's batch
backend drops them, rather than slowing requests down. On shutdown what is buffered is written.
`statistics()` counts written, dropped and rotated.
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from orchestra.apiserver.audit.events import to_event

log = logging.getLogger("orchestra.audit")

MAX_BYTES = 100 * 1024 * 1024
BACKUPS = 3
FLUSH_INTERVAL = 0.5
BATCH_SIZE = 1000
BUFFER_SIZE = 10_000  # kube's --audit-log-batch-buffer-size


@attrs.frozen
class AuditStatistics:
    written: int
    dropped: int
    rotations: int
    buffered: int


class AuditLog:
    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS,
                 flush_interval: float = FLUSH_INTERVAL, batch_size: int = BATCH_SIZE,
                 buffer_size: int = BUFFER_SIZE) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.buffer_size = buffer_size
        self._pending: list[tuple[Any, ...]] = []
        self._wake = trio.Event()
        self._limiter = trio.CapacityLimiter(1)  # one writer: rotation and appends never interleave
        self._written = self._dropped = self._rotations = 0

    def add(self, entry: tuple[Any, ...]) -> None:
        """Buffer one (record, stage, time) entry; never blocks the request."""
        if len(self._pending) >= self.buffer_size:
            if not self._dropped % 1000:
                log.warning("audit log %s cannot keep up: dropping events", self.path)
            self._dropped += 1
            return
        self._pending.append(entry)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def statistics(self) -> AuditStatistics:
        return AuditStatistics(self._written, self._dropped, self._rotations, len(self._pending))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        task_status.started()
        try:
            while True:
                with trio.move_on_after(self.flush_interval):
                    await self._wake.wait()
                self._wake = trio.Event()
                await self.flush()
        finally:
            with trio.CancelScope(shield=True):  # what requests already logged must reach the file
                await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            await trio.to_thread.run_sync(self._write, batch, limiter=self._limiter)

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        lines = [orjson.dumps(to_event(*entry), option=orjson.OPT_APPEND_NEWLINE) for entry in batch]
        try:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            chunk: list[bytes] = []
            for line in lines:  # rotate between lines, so no file grows past max_bytes (bar one huge line)
                if size and size + len(line) > self.max_bytes:
                    self._append(b"".join(chunk))
                    chunk, size = [], 0
                    self._rotate()
                chunk.append(line)
                size += len(line)
            self._append(b"".join(chunk))
        except OSError as exc:  # a full or read-only disk must not stop the API: the batch is lost, counted
            log.warning("cannot write the audit log %s: %s (%d events lost)", self.path, exc, len(batch))
            self._dropped += len(batch)
            return
        self._written += len(batch)

    def _append(self, data: bytes) -> None:
        if not data:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # it names users and sources
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
        for i in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            newer = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if i == self.backups:
                older.unlink(missing_ok=True)
            if newer.exists():
                os.replace(newer, older)
        self._rotations += 1
