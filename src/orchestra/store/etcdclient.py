"""An etcd v3 client on trio: etcd's gRPC JSON gateway (`/v3/...`) over HTTP/1.1.

Owns: the wire - JSON bodies with base64 keys and values and int64s as strings, the KV calls (range,
put, delete, txn with compares, compact), maintenance status, and the watch stream (one POST to
/v3/watch whose response is a stream of JSON lines) - and the translation of etcd's errors into the
store's (StoreUnavailableError, CompactedError, FutureRevisionError). The connections are
orchestra.store.etcdhttp's. Endpoints are tried in order; a request moves to the next one only when
it could not connect, so a write is never sent twice.

Why the gateway and not gRPC: the gateway is part of every etcd v3 server (3.4 serves it at /v3/) and
needs nothing but HTTP/1.1 on trio, whereas the maintained gRPC clients for Python (grpcio, grpclib)
run on threads or asyncio, not trio, and need generated protobuf stubs. The price is JSON instead of
protobuf on the wire, small next to etcd's own fsync per write. (Why its own HTTP/1.1 framing rather
than h11 or httpx: orchestra.store.etcdhttp says.)

Must not import: anything from orchestra except orchestra.store.{types, etcdhttp}.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio

from orchestra.store.etcdhttp import Connection, Pool
from orchestra.store.types import (
    CompactedError,
    Compare,
    Delete,
    FutureRevisionError,
    KeyValue,
    Put,
    StoreError,
    StoreUnavailableError,
)

_TARGET = {"mod": ("MOD", "mod_revision"), "create": ("CREATE", "create_revision"),
           "version": ("VERSION", "version"), "value": ("VALUE", "value")}
_RESULT = {"==": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


@attrs.frozen
class Get:
    """A txn op that reads one key (etcd's RequestRange), e.g. to learn why a compare failed."""

    key: str


TxnOp = Put | Delete | Get


@attrs.frozen
class TxnResponse:
    """revision: etcd's revision after the txn; responses, one per op of the branch taken: the previous
    KeyValue (or None) of a Put or Delete, the current one (or None) of a Get."""

    succeeded: bool
    revision: int
    responses: list[KeyValue | None]


@attrs.frozen
class WatchResponse:
    revision: int  # header.revision: etcd's revision when this response was sent
    events: list[tuple[str, KeyValue, KeyValue | None]]  # (PUT|DELETE, kv, prev_kv) in revision order
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def key_of(raw: str | None) -> str:
    return _unb64(raw).decode("utf-8", "surrogateescape")


def kv_from(doc: dict[str, Any] | None) -> KeyValue | None:
    if not doc:
        return None
    return KeyValue(key_of(doc.get("key")), _unb64(doc.get("value")), int(doc.get("create_revision", 0)),
                    int(doc.get("mod_revision", 0)), int(doc.get("version", 0)))


def prefix_end(prefix: str) -> str:
    """etcd's range_end for every key starting with `prefix` (as base64)."""
    raw = bytearray(prefix.encode("utf-8", "surrogateescape"))
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return _b64(bytes(raw))
        raw.pop()
    return _b64(b"\0")  # the empty prefix: every key


def compare_doc(c: Compare) -> dict[str, Any]:
    target, field = _TARGET[c.target]
    value: Any = _b64(c.value) if isinstance(c.value, bytes) else str(c.value)
    return {"key": _b64(c.key), "target": target, "result": _RESULT[c.op], field: value}


def _op_doc(op: TxnOp) -> dict[str, Any]:
    if isinstance(op, Put):
        return {"request_put": {"key": _b64(op.key), "value": _b64(op.value), "prev_kv": True}}
    if isinstance(op, Delete):
        return {"request_delete_range": {"key": _b64(op.key), "prev_kv": True}}
    return {"request_range": {"key": _b64(op.key)}}


@attrs.frozen
class _Plan:
    """An etcd txn, maybe nested, that takes `success` exactly when every compare holds. etcd fails
    every value compare on an absent key, where the store's `value != x` holds: such a compare is
    asked as `value == x` in a nested txn with the branches swapped (nested txns: etcd >= 3.3)."""

    doc: dict[str, Any]
    on_success: _Plan | bool  # a nested plan, or the leaf: True = the caller's success ops
    on_failure: _Plan | bool

    def outcome(self, resp: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
        branch = self.on_success if resp.get("succeeded") else self.on_failure
        responses = resp.get("responses") or []
        if isinstance(branch, bool):
            return branch, responses
        return branch.outcome(responses[0].get("response_txn") or {})


def _plan(compares: list[Compare], success: list[dict[str, Any]], failure: list[dict[str, Any]]) -> _Plan:
    negated = [c for c in compares if c.target == "value" and c.op == "!="]
    plain = [compare_doc(c) for c in compares if c not in negated]
    if not negated:
        return _Plan({"compare": plain, "success": success, "failure": failure}, True, False)
    first, rest = negated[0], negated[1:]
    tail: _Plan | bool = _plan(rest, success, failure) if rest else True
    tail_ops = [{"request_txn": tail.doc}] if isinstance(tail, _Plan) else success
    inner = _Plan({"compare": [compare_doc(attrs.evolve(first, op="=="))], "success": failure,
                   "failure": tail_ops}, False, tail)
    if not plain:
        return inner
    outer = {"compare": plain, "success": [{"request_txn": inner.doc}], "failure": failure}
    return _Plan(outer, inner, False)


def _op_response(doc: dict[str, Any]) -> KeyValue | None:
    if "response_put" in doc:
        return kv_from(doc["response_put"].get("prev_kv"))
    if "response_delete_range" in doc:
        prev = doc["response_delete_range"].get("prev_kvs") or [None]
        return kv_from(prev[0])
    kvs = doc.get("response_range", {}).get("kvs") or [None]
    return kv_from(kvs[0])


class EtcdClient:
    """Calls to an etcd cluster through the gateway of the first endpoint that answers."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float = 5.0,
                 tls: ssl.SSLContext | None = None) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoints")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._pools = [Pool(e, tls=tls, timeout=timeout) for e in self.endpoints]
        self._current = 0  # the endpoint that answered last: tried first

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.shutdown()

    # --- calls -----------------------------------------------------------------------------------

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        content = orjson.dumps(body)
        last: BaseException | None = None
        for i in range(len(self._pools)):
            index = (self._current + i) % len(self._pools)
            try:
                status, answer = await self._pools[index].call(path, content)
            except (OSError, trio.TooSlowError) as exc:
                if isinstance(exc, StoreUnavailableError):
                    raise  # reached etcd, then lost it: the call may have happened
                last = exc  # never reached etcd: the next endpoint may answer
                continue
            self._current = index
            doc = _json_bytes(answer)
            if status != 200:
                raise _error(doc, status, body)
            return doc
        raise StoreUnavailableError(f"etcd unreachable at {', '.join(self.endpoints)}: {_why(last)}")

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0,
                    start: str | None = None) -> tuple[list[KeyValue], int, bool]:
        """The keys starting with `prefix` (linearizable), from `start` on, at `revision` (0: now):
        kvs, the revision read at (header.revision), whether more keys follow `limit`."""
        body: dict[str, Any] = {"key": _b64(prefix if start is None else start),
                                "range_end": prefix_end(prefix)}
        if revision:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        doc = await self._call("/v3/kv/range", body)
        kvs = [kv for kv in map(kv_from, doc.get("kvs") or []) if kv is not None]
        return kvs, _revision(doc), bool(doc.get("more"))

    async def get(self, key: str) -> tuple[KeyValue | None, int]:
        doc = await self._call("/v3/kv/range", {"key": _b64(key)})
        kvs = doc.get("kvs") or [None]
        return kv_from(kvs[0]), _revision(doc)

    async def put(self, key: str, value: bytes) -> tuple[int, KeyValue | None]:
        """Set `key`: (the new revision, the previous KeyValue or None)."""
        doc = await self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(value), "prev_kv": True})
        return _revision(doc), kv_from(doc.get("prev_kv"))

    async def delete(self, key: str) -> tuple[int, KeyValue | None]:
        """Delete `key`: (etcd's revision after, the deleted KeyValue or None)."""
        doc = await self._call("/v3/kv/deleterange", {"key": _b64(key), "prev_kv": True})
        prev = doc.get("prev_kvs") or [None]
        return _revision(doc), kv_from(prev[0])

    async def txn(self, compares: Sequence[Compare], success: Sequence[TxnOp],
                  failure: Sequence[TxnOp] = ()) -> TxnResponse:
        plan = _plan(list(compares), [_op_doc(op) for op in success], [_op_doc(op) for op in failure])
        doc = await self._call("/v3/kv/txn", plan.doc)
        succeeded, responses = plan.outcome(doc)
        return TxnResponse(succeeded, _revision(doc), [_op_response(r) for r in responses])

    async def has_revision(self, key: str, revision: int) -> bool:
        """Whether etcd still keeps `revision` (a count-only read of `key` at it; False once etcd's
        compaction dropped it)."""
        try:
            await self._call("/v3/kv/range",
                             {"key": _b64(key), "revision": str(revision), "count_only": True})
        except CompactedError:
            return False
        return True

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        """Drop etcd's history before `revision`; an already compacted revision is not an error."""
        try:
            await self._call("/v3/kv/compaction", {"revision": str(revision), "physical": physical})
        except CompactedError:
            pass  # someone (another server's compactor) compacted at or past it first

    async def status(self) -> dict[str, Any]:
        """The answering member's status: version, dbSize, leader, raftIndex, header.revision."""
        return await self._call("/v3/maintenance/status", {})

    # --- watch -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(self, prefix: str, *, start_revision: int, progress_notify: bool = True,
                    prev_kv: bool = True) -> AsyncIterator[WatchResponses]:
        """A watch of every key under `prefix` from `start_revision`, with each event's prev_kv
        unless `prev_kv` is false (then None: etcd neither reads nor sends it): yields the responses
        as they come (the first is `created`, or `canceled` with compact_revision when the start is
        compacted). The stream ends (StoreUnavailableError) when the connection does."""
        body = {"create_request": {"key": _b64(prefix), "range_end": prefix_end(prefix), "prev_kv": prev_kv,
                                   "start_revision": str(start_revision), "progress_notify": progress_notify}}
        status, conn = await self._open_watch(orjson.dumps(body))
        try:
            if status != 200:
                raise _error(_json_bytes(await conn.read_body()), status, body)
            yield WatchResponses(conn)
        finally:
            await conn.aclose()

    async def _open_watch(self, content: bytes) -> tuple[int, Connection]:
        last: BaseException | None = None
        for i in range(len(self._pools)):
            pool = self._pools[(self._current + i) % len(self._pools)]
            try:
                return await pool.stream("/v3/watch", content)
            except (OSError, trio.TooSlowError) as exc:
                if isinstance(exc, StoreUnavailableError):
                    raise
                last = exc  # never reached etcd: the next one may answer
        raise StoreUnavailableError(f"etcd unreachable at {', '.join(self.endpoints)}: {_why(last)}")


class WatchResponses:
    """The WatchResponses of one watch stream (an async iterator)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __aiter__(self) -> WatchResponses:
        return self

    async def __anext__(self) -> WatchResponse:
        doc = await self._conn.next_json()  # (a lost connection: StoreUnavailableError)
        if "error" in doc:
            err = doc["error"]
            raise StoreUnavailableError(f"etcd watch at {self._conn.endpoint}: {err.get('message') or err}")
        return _watch_response(doc.get("result") or {})


def _watch_response(doc: dict[str, Any]) -> WatchResponse:
    events = []
    for ev in doc.get("events") or []:
        kv = kv_from(ev.get("kv"))
        if kv is not None:
            events.append((ev.get("type") or "PUT", kv, kv_from(ev.get("prev_kv"))))
    return WatchResponse(_revision(doc), events, bool(doc.get("created")), bool(doc.get("canceled")),
                         int(doc.get("compact_revision", 0)), str(doc.get("cancel_reason", "")))


def _revision(doc: dict[str, Any]) -> int:
    return int(doc.get("header", {}).get("revision", 0))


def _json_bytes(data: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"message": data.decode("utf-8", "replace")[:200]}
    return doc if isinstance(doc, dict) else {"message": str(doc)}


def _error(doc: dict[str, Any], status: int, body: dict[str, Any]) -> StoreError:
    message = str(doc.get("message") or doc.get("error") or f"HTTP {status}")
    requested = int(body.get("revision", 0) or 0)
    if "required revision has been compacted" in message:
        return CompactedError(requested, 0)
    if "required revision is a future revision" in message:
        return FutureRevisionError(requested, 0)
    if doc.get("code") in (4, 14) or status in (502, 503, 504):  # DEADLINE_EXCEEDED, UNAVAILABLE
        return StoreUnavailableError(f"etcd: {message}")
    return StoreError(f"etcd: {message}")


def _why(exc: BaseException | None) -> str:
    if exc is None:
        return "no endpoint"
    return str(exc) or type(exc).__name__
