"""The simulated runtime's state on disk: an append-only journal of JSON lines, compacted on open.

Owns: the files under the runtime's state directory and nothing of their meaning (simpersist.py
says what a record is). Like the store's log, a record is os.write()n to the file from the trio
loop (a page-cache write of a few hundred bytes: it survives the process being killed) as soon as
the loop has finished what it is doing; fsync runs in a thread at most once a second (a power
loss may cost the last second). A torn last line (the process died mid-write) is dropped on
open. `rewrite(records)` replaces the journal with a compact one (written to a temporary file,
fsynced, renamed, in a thread), which the runtime does on open and when the journal has grown well
past the live state.

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
FSYNC_INTERVAL = 1.0


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
        self._dirty = False
        self._rewriting = False
        self.appended = 0  # records since the last rewrite

    # --- opening (blocking: call through trio.to_thread) ----------------------------------------

    def load(self) -> list[Record]:
        """Lock the directory and read every whole record."""
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
            return []
        records = []
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line:
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:  # a torn tail (killed mid-write) or damage: keep what came before
                log.warning("%s: line %d is not a whole record; ignoring it and what follows", self.path, number)
                break
        return records

    def write_snapshot(self, lines: Iterable[bytes]) -> int:
        """Write `lines` (encoded records) as the new journal; the fd to append to after them."""
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
        self.appended = 0
        self.flush()

    # --- appending (in the trio loop) -----------------------------------------------------------

    def append(self, record: Record) -> None:
        self._pending.append(orjson.dumps(record) + b"\n")
        self.appended += 1
        self._wake.set()

    def flush(self) -> None:
        """Write what is pending (page cache; fsync comes later)."""
        if not self._pending or self._fd is None or self._rewriting:
            return
        data, self._pending = b"".join(self._pending), []
        _write_all(self._fd, data)
        self._dirty = True

    async def run(self) -> None:
        """Write pending records as soon as the loop is idle; fsync at most every FSYNC_INTERVAL."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await trio.lowlevel.checkpoint()  # let the loop finish its batch of changes first
            self.flush()
            if self._dirty and self._fd is not None:
                self._dirty = False
                fd = self._fd
                await trio.to_thread.run_sync(os.fsync, fd)
                await trio.sleep(FSYNC_INTERVAL)

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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
