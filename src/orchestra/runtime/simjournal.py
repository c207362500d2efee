"""The simulated runtime's state on disk: an append-only journal of JSON lines.

Owns: the files under the runtime's state directory and nothing of their meaning (simpersist.py
says what a record is). Like the store's log, the journal is read when it is opened (synchronously,
at start-up, as the store reads its log) and a record is os.write()n from the trio loop as soon as
the loop has finished what it is doing: a page-cache write of a few hundred bytes, which survives
the process being killed. Records are not fsynced (a power loss may cost the latest ones; the
simulated pods they describe are then created again), so no thread runs in the common path and a
virtual clock stays deterministic. A torn or damaged line (the process died mid-write; a crash of the
machine left zeros; anything but a JSON object) ends what is read, and is cut off so that appends
follow the last whole record. `rewrite(lines)` replaces the
journal with a compact one (a temporary file, fsynced, renamed, in a thread), which the runtime
does once the journal has grown well past the live state.

    LOCK            flock()ed while open: two processes never share one journal
    journal.jsonl   one JSON object per line
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import trio

log = logging.getLogger("orchestra.runtime.simjournal")

Record = dict[str, Any]


class JournalError(Exception):
    """The state directory cannot be used (locked by another process, unwritable)."""


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "journal.jsonl"
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._pending: list[bytes] = []
        self._wake = trio.Event()
        self._rewriting = False
        self.appended = 0  # records in the file (and pending) since it was last written whole

    def open(self) -> list[Record]:
        """Lock the directory, read every whole record, and get ready to append after the last one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise JournalError(f"{self.directory} is in use by another orchestra") from None
        self._lock_fd = lock_fd
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        records, good = _parse(data, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if good < len(data):
            os.truncate(self.path, good)  # appends must follow the last whole record
        self.appended = len(records)
        return records

    def write_snapshot(self, lines: Iterable[bytes]) -> int:
        """Write `lines` (encoded records) as the new journal; the fd to append to after them. Blocking."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            chunk: list[bytes] = []
            for line in lines:
                chunk.append(line)
                if len(chunk) >= 4096:
                    _write_all(fd, b"".join(chunk))
                    chunk = []
            _write_all(fd, b"".join(chunk))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND)

    async def rewrite(self, lines: list[bytes]) -> None:
        """Replace the journal with `lines`, the whole live state encoded in the loop just now.
        Records appended meanwhile wait, and go to the new journal."""
        self.flush()
        self._rewriting = True
        try:
            fd = await trio.to_thread.run_sync(self.write_snapshot, lines)
        finally:
            self._rewriting = False
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)
        self.appended = len(lines) + len(self._pending)
        self.flush()

    # --- appending (in the trio loop) -----------------------------------------------------------

    def append(self, record: Record) -> None:
        self._pending.append(orjson.dumps(record) + b"\n")
        self.appended += 1
        self._wake.set()

    def flush(self) -> None:
        """Write what is pending (to the page cache)."""
        if not self._pending or self._fd is None or self._rewriting:
            return
        data, self._pending = b"".join(self._pending), []
        _write_all(self._fd, data)

    async def run(self) -> None:
        """Write pending records whenever the loop has finished its current batch of changes."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await trio.lowlevel.checkpoint()
            self.flush()

    def close(self) -> None:
        """Flush and close (the runtime is stopping, or its state is being discarded)."""
        try:
            self.flush()
        finally:
            for fd in (self._fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._lock_fd = None

    def discard(self) -> None:
        """Forget every record (`orchestra up --stop-pods`: the next start has no simulated pods)."""
        self._pending.clear()
        self.path.unlink(missing_ok=True)


def _parse(data: bytes, path: Path) -> tuple[list[Record], int]:
    """The whole records at the start of `data`, and the length of the bytes they take."""
    records: list[Record] = []
    good = 0
    while good < len(data):
        end = data.find(b"\n", good)
        if end < 0:  # a last line without its newline: torn
            log.warning("%s: a torn last record at byte %d; dropping it", path, good)
            break
        try:
            record = orjson.loads(data[good:end])
        except orjson.JSONDecodeError:  # damage: keep what came before it
            record = None
        if not isinstance(record, dict):
            log.warning("%s: byte %d is not a whole record; dropping it and what follows", path, good)
            break
        records.append(record)
        good = end + 1
    return records, good


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
