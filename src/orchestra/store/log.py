"""The durable backend's files: an append-only, crc-checked log plus snapshots.

Owns the bytes on disk and nothing else: the directory layout, the record and snapshot formats,
group-commit fsync, segment rotation and recovery (replay, torn-tail truncation). It knows nothing
of MVCC: a record is (revision, ops) with an op being (kind, key, value), and snapshot entries are
anything with key/value/create_revision/mod_revision/version attributes.

Only orchestra.store.durable imports this module. Must not import: anything from orchestra.

Directory layout:
    LOCK                        flock()ed while open, so two processes never append to one log
    wal-<first revision>.log    log segments; a record is os.write()n before the write returns
    snap-<revision>.snap        every live key at <revision> (written .tmp, fsync, rename)

Record, one per committed revision:
    u32 payload length | u32 crc32(payload) | payload
    payload = u64 revision | u32 op count | op...
    op      = u8 kind (0 put, 1 delete) | u32 key length | u32 value length | key (utf-8) | value
Snapshot:
    magic | u64 revision | u64 entry count | entry... | u32 crc32(everything before it)
    entry = u32 key length | u32 value length | u64 create | u64 mod | u64 version | key | value
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import trio

FsyncPolicy = Literal["always", "batch", "never"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "batch", "never")

OP_PUT = 0
OP_DELETE = 1
Op = tuple[int, str, bytes]
SnapshotRow = tuple[str, bytes, int, int, int]  # key, value, create, mod, version

_HEADER = struct.Struct("<II")
_PAYLOAD = struct.Struct("<QI")
_OP = struct.Struct("<BII")
_ONE_OP = struct.Struct("<QIBII")  # payload head + its only op: the common single put/delete
_SNAP_MAGIC = b"orchestra-snapshot-1\n"
_SNAP_HEAD = struct.Struct("<QQ")
_SNAP_ENTRY = struct.Struct("<IIQQQ")
_CRC = struct.Struct("<I")


class LogError(Exception):
    """The directory is unusable (in use, corrupt beyond its tail) or a write failed."""


class SnapshotEntry(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> bytes: ...
    @property
    def create_revision(self) -> int: ...
    @property
    def mod_revision(self) -> int: ...
    @property
    def version(self) -> int: ...


def encode_record(revision: int, ops: Sequence[Op]) -> bytes:
    parts = [_PAYLOAD.pack(revision, len(ops))]
    for kind, key, value in ops:
        kb = key.encode()
        parts += (_OP.pack(kind, len(kb), len(value)), kb, value)
    payload = b"".join(parts)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def iter_records(data: bytes) -> Iterator[tuple[int, int, list[Op]]]:
    """Yield (end offset, revision, ops) per intact record; stop at the first torn or bad-crc one."""
    view = memoryview(data)
    pos, size = 0, len(data)
    while pos + _HEADER.size <= size:
        length, crc = _HEADER.unpack_from(data, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if end > size or length < _PAYLOAD.size or zlib.crc32(view[start:end]) != crc:
            return
        try:
            revision, ops = _decode_payload(view[start:end])
        except (struct.error, UnicodeDecodeError, ValueError) as exc:
            # the crc matched, so this is not a torn write but a writer bug: refuse to guess
            raise LogError(f"malformed record at offset {pos}: {exc}") from exc
        yield end, revision, ops
        pos = end


def _decode_payload(payload: memoryview) -> tuple[int, list[Op]]:
    revision, count = _PAYLOAD.unpack_from(payload)
    pos, ops = _PAYLOAD.size, []
    for _ in range(count):
        kind, klen, vlen = _OP.unpack_from(payload, pos)
        pos += _OP.size
        key = str(payload[pos : pos + klen], "utf-8")
        value = bytes(payload[pos + klen : pos + klen + vlen])
        pos += klen + vlen
        if kind not in (OP_PUT, OP_DELETE) or pos > len(payload):
            raise ValueError(f"bad op kind {kind} or length")
        ops.append((kind, key, value))
    if pos != len(payload):
        raise ValueError("trailing bytes in record")
    return revision, ops


def encode_snapshot(revision: int, entries: Sequence[SnapshotEntry]) -> bytes:
    parts = [_SNAP_MAGIC, _SNAP_HEAD.pack(revision, len(entries))]
    for kv in entries:
        kb = kv.key.encode()
        head = _SNAP_ENTRY.pack(len(kb), len(kv.value), kv.create_revision, kv.mod_revision, kv.version)
        parts += (head, kb, kv.value)
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode_snapshot(data: bytes) -> tuple[int, list[SnapshotRow]]:
    body, (crc,) = data[: -_CRC.size], _CRC.unpack_from(data, len(data) - _CRC.size)
    if not body.startswith(_SNAP_MAGIC) or zlib.crc32(body) != crc:
        raise LogError("snapshot is corrupt (bad magic or crc)")
    pos = len(_SNAP_MAGIC)
    revision, count = _SNAP_HEAD.unpack_from(body, pos)
    pos += _SNAP_HEAD.size
    rows: list[SnapshotRow] = []
    for _ in range(count):
        klen, vlen, create, mod, version = _SNAP_ENTRY.unpack_from(body, pos)
        pos += _SNAP_ENTRY.size
        key = body[pos : pos + klen].decode()
        rows.append((key, body[pos + klen : pos + klen + vlen], create, mod, version))
        pos += klen + vlen
    return revision, rows


def _numbered(directory: Path, prefix: str, suffix: str) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"{prefix}*{suffix}"):
        digits = path.name[len(prefix) : -len(suffix)]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def _segment_path(directory: Path, first_revision: int) -> Path:
    return directory / f"wal-{first_revision:020d}.log"


def _fsync_and_close(fds: list[int]) -> None:
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


def _write_snapshot_file(directory: Path, revision: int, entries: Sequence[SnapshotEntry]) -> int:
    data = encode_snapshot(revision, entries)
    final = directory / f"snap-{revision:020d}.snap"
    tmp = final.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    _fsync_and_close([os.open(directory, os.O_RDONLY)])
    return len(data)


class DurableLog:
    """Segments + snapshots in one directory. Use `DurableLog.open`; then load_snapshot(),
    exhaust replay(), start(); then append_*() on every commit."""

    def __init__(self, directory: Path, fsync: FsyncPolicy, lock_fd: int, *, read_only: bool = False) -> None:
        self._directory = directory
        self._read_only = read_only
        self._fsync = fsync
        self._lock_fd = lock_fd
        self._fd = -1
        self._segment_start = 0
        self._size = 0  # bytes in the current segment
        self._other_bytes = 0  # bytes in older segments and the snapshot
        self._retired: list[int] = []  # fds of rotated-out segments, closed after their fsync
        self._dir_dirty = False
        self._written = 0
        self._durable = 0
        self._snapshot_revision = 0
        self._sync_lock = trio.Lock()
        self._closed = False
        self.fsyncs = 0
        self.truncated_bytes = 0

    @classmethod
    def open(cls, directory: Path, *, fsync: FsyncPolicy, read_only: bool = False) -> DurableLog:
        """Lock `directory` (created if needed) for this process. read_only: the directory must exist,
        and nothing in it changes - load_snapshot() and replay() leave superseded files and a torn
        tail where they are (the next writer's open cleans them up) and start() is refused; the lock
        is taken all the same, so no writer opens the log while it is read."""
        if read_only and not (directory / "LOCK").exists():
            raise LogError(f"{directory} holds no store")
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise LogError(f"{directory} is in use by another open store") from None
        if not read_only:
            for tmp in directory.glob("*.tmp"):
                tmp.unlink()  # a snapshot that never got renamed: the log still holds its data
        return cls(directory, fsync, lock_fd, read_only=read_only)

    @property
    def snapshot_revision(self) -> int:
        return self._snapshot_revision

    def load_snapshot(self) -> tuple[int, list[SnapshotRow]]:
        snapshots = _numbered(self._directory, "snap-", ".snap")
        if not snapshots:
            return 0, []
        for _, old in snapshots[:-1] if not self._read_only else ():
            old.unlink()  # superseded; a crash interrupted the cleanup after the newest one
        path = snapshots[-1][1]
        data = path.read_bytes()
        if len(data) < len(_SNAP_MAGIC) + _SNAP_HEAD.size + _CRC.size:
            raise LogError(f"snapshot {path.name} is truncated")
        revision, rows = decode_snapshot(data)
        self._snapshot_revision = revision
        self._other_bytes += len(data)
        return revision, rows

    def replay(self, after: int) -> Iterator[tuple[int, list[Op]]]:
        """Yield every record after revision `after` in order; truncate a torn tail of the last
        segment. Raises LogError for a gap or damage anywhere but the tail."""
        segments = []
        for start, path in _numbered(self._directory, "wal-", ".log"):
            if start > after:
                segments.append((start, path))
            elif not self._read_only:
                path.unlink()  # fully covered by the snapshot (rotation precedes the snapshot)
        expected = after + 1
        for i, (start, path) in enumerate(segments):
            if start != expected:
                raise LogError(f"log gap: {path.name} starts at {start}, expected revision {expected}")
            data = path.read_bytes()
            good = 0
            for end, revision, ops in iter_records(data):
                if revision != expected:
                    raise LogError(f"{path.name}: record {revision} where {expected} was expected")
                yield revision, ops
                expected, good = expected + 1, end
            if good != len(data):
                if i != len(segments) - 1:
                    raise LogError(f"{path.name} is damaged at offset {good} and is not the last segment")
                if not self._read_only:
                    os.truncate(path, good)  # a torn tail: that write was never acknowledged
                self.truncated_bytes = len(data) - good
            if i != len(segments) - 1:
                self._other_bytes += good
        if segments:
            self._segment_start = segments[-1][0]

    def start(self, revision: int) -> None:
        """Open the newest segment (or a new one at revision + 1) for appending."""
        if self._read_only:
            raise LogError(f"{self._directory} is open read-only")
        if self._segment_start:
            path = _segment_path(self._directory, self._segment_start)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
            os.fsync(self._fd)  # what we replayed may only have been in the page cache
        else:
            self._open_segment(revision + 1)
            _fsync_and_close([os.open(self._directory, os.O_RDONLY)])
            self._dir_dirty = False
        self._written = self._durable = revision

    def _open_segment(self, first_revision: int) -> None:
        path = _segment_path(self._directory, first_revision)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        self._segment_start, self._size, self._dir_dirty = first_revision, 0, True

    # --- writing ---------------------------------------------------------------------------------

    def append_one(self, revision: int, kind: int, key: str, value: bytes) -> None:
        kb = key.encode()
        head = _ONE_OP.pack(revision, 1, kind, len(kb), len(value))
        length = len(head) + len(kb) + len(value)
        crc = zlib.crc32(value, zlib.crc32(kb, zlib.crc32(head)))
        self._write([_HEADER.pack(length, crc), head, kb, value], _HEADER.size + length)
        self._written = revision

    def append(self, revision: int, ops: Sequence[Op]) -> None:
        record = encode_record(revision, ops)
        self._write([record], len(record))
        self._written = revision

    def _write(self, parts: list[Any], size: int) -> None:
        if self._closed:
            raise LogError("log is closed")
        try:
            done = os.writev(self._fd, parts)
            if done != size:  # short write (disk nearly full, signal): finish or fail
                rest = memoryview(b"".join(parts))[done:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._size)  # drop the partial record so later ones stay readable
            except OSError:
                pass  # replay will truncate the torn tail instead
            raise LogError(f"log write failed: {exc}") from exc
        self._size += size

    # --- durability ------------------------------------------------------------------------------

    async def wait_durable(self, revision: int) -> None:
        """Policy "always": group commit, one fsync covers every record written when it starts.
        "batch" and "never": return at once (batch fsyncs every ~50 ms from tick())."""
        await trio.lowlevel.checkpoint()
        if self._fsync != "always":
            return
        revision = min(revision, self._written)
        while self._durable < revision:
            async with self._sync_lock:
                if self._durable < revision:
                    await self._sync_locked()

    async def tick(self) -> None:
        """Periodic upkeep from Store.run(): the batch-policy fsync."""
        if self._fsync == "batch" and (self._durable < self._written or self._retired):
            async with self._sync_lock:
                await self._sync_locked()

    async def _sync_locked(self) -> None:
        if self._closed:
            raise LogError("log is closed")
        target, retired = self._written, list(self._retired)
        fds = [os.dup(fd) for fd in (*retired, self._fd)]  # dups: close() may run meanwhile
        dir_dirty, self._dir_dirty = self._dir_dirty, False
        if dir_dirty:
            fds.append(os.open(self._directory, os.O_RDONLY))
        try:
            await trio.to_thread.run_sync(_fsync_and_close, fds)
        except OSError as exc:
            self._dir_dirty |= dir_dirty
            raise LogError(f"fsync failed: {exc}") from exc
        self.fsyncs += 1
        if not self._closed:
            for fd in retired:
                self._retired.remove(fd)
                os.close(fd)
        self._durable = max(self._durable, target)

    # --- snapshots -------------------------------------------------------------------------------

    async def snapshot(self, revision: int, entries: Sequence[SnapshotEntry]) -> None:
        """Write a snapshot of `entries` (every live key at `revision` == the last written one).
        The rotation runs before the first checkpoint, so later records land in the new segment."""
        if revision != self._written:
            raise LogError(f"snapshot at {revision} but the log is at {self._written}")
        if revision == self._snapshot_revision:
            await trio.lowlevel.checkpoint()
            return  # nothing new since the last one
        if self._segment_start <= revision:
            self._retired.append(self._fd)
            self._other_bytes += self._size
            self._open_segment(revision + 1)
        async with self._sync_lock:
            await self._sync_locked()  # the old segments and the new segment's directory entry
        old_snapshot = self._snapshot_revision
        written = await trio.to_thread.run_sync(_write_snapshot_file, self._directory, revision, entries)
        self._snapshot_revision = revision
        obsolete = [p for s, p in _numbered(self._directory, "wal-", ".log") if s <= revision]
        if old_snapshot:
            obsolete.append(self._directory / f"snap-{old_snapshot:020d}.snap")
        await trio.to_thread.run_sync(_unlink_all, obsolete)
        self._other_bytes = written

    # --- lifecycle -------------------------------------------------------------------------------

    def statistics(self) -> dict[str, object]:
        return {
            "fsync": self._fsync,
            "fsyncs": self.fsyncs,
            "bytes_on_disk": self._other_bytes + self._size,
            "written_revision": self._written,
            "durable_revision": self._durable,
            "snapshot_revision": self._snapshot_revision,
            "segment_start": self._segment_start,
            "truncated_bytes": self.truncated_bytes,
        }

    def close(self) -> None:
        """Close the files (fsyncing first unless the policy is "never"); idempotent."""
        if self._closed:
            return
        self._closed = True
        fds = [fd for fd in (*self._retired, self._fd) if fd >= 0]
        self._retired.clear()
        try:
            if self._fsync != "never":
                for fd in fds:
                    os.fsync(fd)  # blocking, once, at shutdown: cheaper than an async close protocol
                self._durable = self._written
        finally:
            for fd in fds:
                os.close(fd)
            os.close(self._lock_fd)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
