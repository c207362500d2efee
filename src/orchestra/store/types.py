"""The store's value types and errors: KeyValue, Event, the txn ops and guards, StoreError and kin.

Owns: the frozen records the store hands out and takes in (and its backends hand back), and the error
hierarchy; no behaviour.
Must not import: anything from orchestra (every other module of orchestra.store imports this one).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Final, Literal

import attrs

PUT: Final = "PUT"
DELETE: Final = "DELETE"


class StoreError(Exception):
    """Base of every error the store raises."""


class CompactedError(StoreError):
    """The requested revision is at or before compact_revision (Kubernetes: 410 Gone)."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} has been compacted (compact revision {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    """The requested revision has not happened yet."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current revision {current})")
        self.requested = requested
        self.current = current


class CompareFailed(StoreError):
    """A conditional write found another mod revision (0 = absent) than it expected."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{key}: expected mod revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class StoreClosedError(StoreError):
    """The store was closed."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The backend cannot be reached or did not answer in time (etcd down, no quorum); the write may
    or may not have happened. The API answers 503; in-process clients retry it as any connection
    error (it is an OSError)."""


@attrs.frozen
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


@attrs.frozen
class Event:
    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


_TARGETS = ("mod", "create", "version", "value")
_OPS = ("==", "!=", "<", ">")


@attrs.frozen
class Compare:
    """A txn guard on the current state of `key`; absent keys have mod/create/version 0 and value
    None (so only "!=" holds for a value compare on an absent key)."""

    key: str
    target: Literal["mod", "create", "version", "value"] = attrs.field(
        validator=attrs.validators.in_(_TARGETS)
    )
    op: Literal["==", "!=", "<", ">"] = attrs.field(validator=attrs.validators.in_(_OPS))
    value: int | bytes


@attrs.frozen
class Put:
    key: str
    value: bytes


@attrs.frozen
class Delete:
    key: str


Op = Put | Delete  # one write of a txn branch, of a log record, of a backend's committed revision


@attrs.frozen
class TxnResult:
    """revision: the txn's revision if it wrote, else the revision it read at. responses, one per op
    of the branch taken: the new KeyValue for a Put, the previous KeyValue (or None) for a Delete."""

    succeeded: bool
    revision: int
    responses: list[KeyValue | None]


rev_of = attrgetter("kv.mod_revision")  # sort key: an event by its revision
