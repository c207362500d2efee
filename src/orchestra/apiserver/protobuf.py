"""Decode Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into JSON dicts.

Owns: `decode_protobuf(data)`, the HTTP layer's decoder of such bodies, held to the limits of
api/request/bodies.py (nesting depth, decoded size) like JSON and YAML bodies; the protobuf wire decoder
for the `k8s\\x00` + runtime.Unknown envelope and the Go types inside it, driven by the field table
in orchestra/data/k8s-proto.json (made by scripts/extract-k8s-proto.py from the descriptors compiled
into kubectl). `kubectl create namespace|configmap|deployment|...` posts such bodies; orchestra
stores JSON, so the HTTP layer turns them into the dict the equivalent JSON body would have given.
Replies stay JSON. Only request bodies are decoded here, so this lives in the HTTP layer; the API
core only ever sees the JSON value.
Must not import: third-party protobuf libraries, the store, or the rest of the apiserver (http.py
imports this).

The dict is what kube-apiserver would see after decoding into the Go struct, written the way
`encoding/json` plus omitempty would write it:

* gogo protobuf writes a non-pointer ("non-nullable") scalar even when it is zero (`generateName: ""`,
  `generation: 0`, `hostNetwork: false`); Go treats such a zero exactly as an absent field, so these
  zeros are dropped — except in fields the API marks required (no omitempty: Go's JSON writes their
  zero, e.g. a PodDisruptionBudget status's counts, a PriorityClass's `value: 0`). A pointer field
  is on the wire only when set, so it is kept even when zero (`replicas: 0`, `suspend: false`).
* non-pointer structs stay, even when empty (`status: {}`, `strategy: {}`), as in Go's JSON.
* the inline embedded structs (Probe's handler, Volume's volumeSource, LocalObjectReference in the
  key selectors) are merged into their parent.
* Quantity -> string; IntOrString -> int or string; Time -> RFC 3339 seconds, MicroTime -> with
  microseconds (a zero Time, an empty message, is dropped like Go's `null`); FieldsV1 and
  RawExtension -> the JSON they carry; bytes -> base64; maps -> dicts.
* unknown field numbers are skipped (as Go does); a malformed body raises ProtobufError, and nothing
  else.
"""

from __future__ import annotations

import base64
import functools
import importlib.resources
import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from orchestra.api.request.bodies import (
    MAX_BYTES,
    Decoded,
    DecodeError,
    depth_error,
    depth_over,
    too_large_message,
)
from orchestra.objects import go_duration

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAX_DEPTH = 100

_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
_MICRO_TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime"
_DURATION = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration"
_FIELDS_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_META_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1"

# wire types
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_VARINT_TYPES = frozenset({"int32", "int64", "uint32", "uint64", "bool", "enum", "sint32", "sint64"})
_I64_TYPES = frozenset({"double", "fixed64", "sfixed64"})
_I32_TYPES = frozenset({"float", "fixed32", "sfixed32"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# field spec: (json name, type, message type, repeated, map, nullable, inline, required)
_Field = tuple[str, str, str | None, bool, bool, bool, bool, bool]
_Table = dict[str, dict[int, _Field]]


class ProtobufError(ValueError):
    """The body is not a valid Kubernetes protobuf message (or not one orchestra knows)."""


@functools.cache
def _table() -> _Table:
    res = importlib.resources.files("orchestra") / "data" / "k8s-proto.json"
    raw: dict[str, dict[str, list[Any]]] = json.loads(res.read_text(encoding="utf-8"))
    table: _Table = {}
    for msg, fields in raw.items():
        table[msg] = {
            int(num): (f[0], f[1], f[2], bool(f[3]), bool(f[4]), bool(f[5]), bool(f[6]), bool(f[7]))
            for num, f in fields.items()
        }
    return table


def message_for(api_version: str, kind: str) -> str | None:
    """The protobuf message full name of a kind (`apps/v1`, `Deployment` -> k8s.io.api.apps.v1.Deployment)."""
    group, _, version = api_version.rpartition("/")
    table = _table()
    pkg = group.split(".")[0] if group else "core"
    for name in (f"k8s.io.api.{pkg}.{version}.{kind}", f"{_META_V1}.{kind}"):
        if name in table:
            return name
    return None


def decode_k8s_protobuf(body: bytes) -> dict[str, Any]:
    """Decode a `k8s\\x00`-prefixed runtime.Unknown body into the object's JSON dict.

    apiVersion and kind come from the envelope's typeMeta. Raises ProtobufError for anything malformed
    or for a kind with no known schema.
    """
    try:
        return decode_unguarded(bytes(body))
    except ProtobufError:
        raise
    except Exception as exc:  # any slip on hostile input is a malformed body, never a 500
        raise ProtobufError(f"malformed protobuf body: {type(exc).__name__}") from None


def decode_protobuf(data: bytes) -> Decoded:
    """A `k8s\\x00` protobuf body as the JSON value it stands for, within the depth and size limits."""
    try:
        value = decode_k8s_protobuf(data)
    except ProtobufError as exc:
        raise DecodeError(str(exc)) from None
    char = depth_over(value)
    if char is not None:
        raise depth_error(char)
    size = len(orjson.dumps(value))
    if size > MAX_BYTES:
        raise DecodeError(too_large_message(size), reason="too_large")
    return Decoded(value)


def decode_unguarded(body: bytes) -> dict[str, Any]:
    if body[:4] != MAGIC:
        raise ProtobufError("protobuf body does not start with the Kubernetes magic prefix")
    # runtime.Unknown: 1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType
    envelope = _plain(body, 4, len(body), {1: "bytes", 2: "bytes", 3: "string", 4: "string"})
    type_meta = _plain(envelope.get(1, b""), 0, len(envelope.get(1, b"")), {1: "string", 2: "string"})
    api_version = type_meta.get(1, b"").decode("utf-8", errors="replace")
    kind = type_meta.get(2, b"").decode("utf-8", errors="replace")
    if not kind or not api_version:
        raise ProtobufError("protobuf body has no apiVersion/kind in its typeMeta")
    if envelope.get(3):
        raise ProtobufError(f"unsupported protobuf content encoding {envelope[3].decode(errors='replace')!r}")
    msg = message_for(api_version, kind)
    if msg is None:
        raise ProtobufError(f"no protobuf schema for {kind} in {api_version}")
    raw: bytes = envelope.get(2, b"")
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    _decode_into(raw, 0, len(raw), _table()[msg], out, 1)
    return out


# -- wire level ---------------------------------------------------------------------------------------


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= end:
            raise ProtobufError("unexpected end of protobuf data in a varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, i
        shift += 7
        if shift >= 70:
            raise ProtobufError("protobuf varint overflows 64 bits")


def _fields(buf: bytes, i: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) for each field of a message in buf[i:end]."""
    while i < end:
        key, i = _varint(buf, i, end)
        num, wt = key >> 3, key & 7
        if num <= 0 or num > 0x1FFFFFFF:
            raise ProtobufError(f"illegal protobuf field number {num}")
        if wt == _VARINT:
            v, i = _varint(buf, i, end)
            yield num, wt, v, i
        elif wt == _I64:
            if i + 8 > end:
                raise ProtobufError("unexpected end of protobuf data in a fixed64")
            yield num, wt, i, i + 8
            i += 8
        elif wt == _I32:
            if i + 4 > end:
                raise ProtobufError("unexpected end of protobuf data in a fixed32")
            yield num, wt, i, i + 4
            i += 4
        elif wt == _LEN:
            n, i = _varint(buf, i, end)
            if n > end - i:
                raise ProtobufError("unexpected end of protobuf data in a length-delimited field")
            yield num, wt, i, i + n
            i += n
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wt}")


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _scalar_from_varint(typ: str, v: int) -> Any:
    if typ in ("int64", "enum"):
        return _signed(v, 64)
    if typ == "int32":
        return _signed(v, 32)
    if typ == "bool":
        return v != 0
    if typ == "uint32":
        return v & 0xFFFFFFFF
    if typ == "uint64":
        return v
    if typ == "sint32":
        v &= 0xFFFFFFFF
        return (v >> 1) ^ -(v & 1)
    return (v >> 1) ^ -(v & 1)  # sint64


def _scalar_from_fixed(typ: str, raw: bytes) -> Any:
    fmt = {
        "double": "<d",
        "fixed64": "<Q",
        "sfixed64": "<q",
        "float": "<f",
        "fixed32": "<I",
        "sfixed32": "<i",
    }
    value = struct.unpack(fmt[typ], raw)[0]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ProtobufError("protobuf float is not representable in JSON")
    return value


def _scalar(typ: str, wt: int, a: int, b: int, buf: bytes) -> Any:
    """One scalar value of a field whose wire type was checked against its type."""
    if wt == _VARINT:
        return _scalar_from_varint(typ, a)
    if wt in (_I64, _I32):
        return _scalar_from_fixed(typ, buf[a:b])
    if typ == "string":
        return buf[a:b].decode("utf-8", errors="replace")
    return base64.b64encode(buf[a:b]).decode("ascii")  # bytes


def _expected_wire_type(typ: str) -> int:
    if typ in _VARINT_TYPES:
        return _VARINT
    if typ in _I64_TYPES:
        return _I64
    if typ in _I32_TYPES:
        return _I32
    return _LEN  # string, bytes, message


def _packed(typ: str, buf: bytes, a: int, b: int) -> list[Any]:
    out: list[Any] = []
    wt = _expected_wire_type(typ)
    size = {_I64: 8, _I32: 4}.get(wt, 0)
    i = a
    while i < b:
        if wt == _VARINT:
            v, i = _varint(buf, i, b)
            out.append(_scalar_from_varint(typ, v))
        else:
            if i + size > b:
                raise ProtobufError("truncated packed protobuf field")
            out.append(_scalar_from_fixed(typ, buf[i : i + size]))
            i += size
    return out


def _is_zero(v: Any) -> bool:
    return (
        v is None
        or v == ""
        or v is False
        or (isinstance(v, int | float) and not isinstance(v, bool) and v == 0)
    )


# -- messages -----------------------------------------------------------------------------------------


def _decode_into(
    buf: bytes, i: int, end: int, fields: dict[int, _Field], out: dict[str, Any], depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise ProtobufError("protobuf message nested too deeply")
    for num, wt, a, b in _fields(buf, i, end):
        spec = fields.get(num)
        if spec is None:
            continue  # unknown field: skipped, as Go's generated code does
        name, typ, mtype, repeated, is_map, nullable, inline, required = spec
        expected = _expected_wire_type(typ)
        if is_map:
            if wt != _LEN:
                raise ProtobufError(f"wrong wire type {wt} for map field {name}")
            key, value = _map_entry(buf, a, b, typ, mtype, depth + 1)
            m = out.get(name)
            if not isinstance(m, dict):
                m = out[name] = {}
            m[key] = value
            continue
        if typ == "message":
            if wt != _LEN:
                raise ProtobufError(f"wrong wire type {wt} for message field {name}")
            assert mtype is not None
            if mtype in _SPECIAL:
                value = _SPECIAL[mtype](buf, a, b, depth + 1)
                if repeated:
                    _append(out, name, value)
                elif value is None or (not nullable and _is_zero(value)):
                    out.pop(name, None)
                else:
                    out[name] = value
                continue
            sub_fields = _message(mtype)
            if inline:
                _decode_into(buf, a, b, sub_fields, out, depth + 1)
            elif repeated:
                item: dict[str, Any] = {}
                _decode_into(buf, a, b, sub_fields, item, depth + 1)
                _append(out, name, item)
            else:
                sub = out.get(name)
                if not isinstance(sub, dict):
                    sub = out[name] = {}
                _decode_into(buf, a, b, sub_fields, sub, depth + 1)  # repeated occurrences merge
            continue
        if repeated and wt == _LEN and expected != _LEN:
            items = _packed(typ, buf, a, b)
            lst = out.get(name)
            if not isinstance(lst, list):
                lst = out[name] = []
            lst.extend(items)
            continue
        if wt != expected:
            raise ProtobufError(f"wrong wire type {wt} for {typ} field {name}")
        value = _scalar(typ, wt, a, b, buf)
        if repeated:
            _append(out, name, value)
        elif not nullable and not required and _is_zero(value):
            out.pop(name, None)  # a Go value field at its zero value (omitempty): as if absent
        else:
            out[name] = value


def _append(out: dict[str, Any], name: str, value: Any) -> None:
    lst = out.get(name)
    if not isinstance(lst, list):
        lst = out[name] = []
    lst.append(value)


def _message(name: str) -> dict[int, _Field]:
    fields = _table().get(name)
    if fields is None:
        raise ProtobufError(f"no protobuf schema for message {name}")
    return fields


def _map_entry(buf: bytes, a: int, b: int, typ: str, mtype: str | None, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = None
    seen_value = False
    for num, wt, x, y in _fields(buf, a, b):
        if num == 1:
            if wt != _LEN:
                raise ProtobufError(f"wrong wire type {wt} for a map key")
            key = buf[x:y].decode("utf-8", errors="replace")
        elif num == 2:
            seen_value = True
            if typ == "message":
                if wt != _LEN:
                    raise ProtobufError(f"wrong wire type {wt} for a map value")
                assert mtype is not None
                if mtype in _SPECIAL:
                    value = _SPECIAL[mtype](buf, x, y, depth + 1)
                else:
                    value = {}
                    _decode_into(buf, x, y, _message(mtype), value, depth + 1)
            elif wt == _expected_wire_type(typ):
                value = _scalar(typ, wt, x, y, buf)
            else:
                raise ProtobufError(f"wrong wire type {wt} for a map value")
    if not seen_value:  # Go fills in the zero value
        value = _zero(typ, mtype)
    return key, value


def _zero(typ: str, mtype: str | None) -> Any:
    if typ == "message":
        return {_QUANTITY: "0", _INT_OR_STRING: 0, _TIME: None, _MICRO_TIME: None}.get(mtype or "", {})
    if typ in ("string", "bytes"):
        return ""
    if typ == "bool":
        return False
    return 0


# -- the apimachinery types with their own JSON form ---------------------------------------------------


def _plain(buf: bytes, a: int, b: int, spec: dict[int, str]) -> dict[int, Any]:
    """The scalar fields of a small fixed message, by number (string and bytes fields as raw bytes)."""
    out: dict[int, Any] = {}
    for num, wt, x, y in _fields(buf, a, b):
        typ = spec.get(num)
        if typ is None:
            continue
        if wt != _expected_wire_type(typ):
            raise ProtobufError(f"wrong wire type {wt} in a {typ} field")
        out[num] = buf[x:y] if wt == _LEN else _scalar_from_varint(typ, x)
    return out


def _quantity(buf: bytes, a: int, b: int, depth: int) -> str:
    s = _plain(buf, a, b, {1: "string"}).get(1, b"")
    return s.decode("utf-8", errors="replace") or "0"


def _int_or_string(buf: bytes, a: int, b: int, depth: int) -> int | str:
    f = _plain(buf, a, b, {1: "int64", 2: "int32", 3: "string"})
    kind = f.get(1, 0)
    if kind == 0:
        return int(f.get(2, 0))
    if kind == 1:
        return bytes(f.get(3, b"")).decode("utf-8", errors="replace")
    raise ProtobufError(f"invalid IntOrString type {kind}")


def _timestamp(buf: bytes, a: int, b: int, micro: bool) -> str | None:
    if a == b:
        return None  # the zero time: Go's JSON writes null
    f = _plain(buf, a, b, {1: "int64", 2: "int32"})
    total_ns = f.get(1, 0) * 1_000_000_000 + f.get(2, 0)
    seconds, ns = divmod(total_ns, 1_000_000_000)
    try:
        t = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise ProtobufError("protobuf time out of range") from None
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return text + (f".{ns // 1000:06d}Z" if micro else "Z")


def _time(buf: bytes, a: int, b: int, depth: int) -> str | None:
    return _timestamp(buf, a, b, micro=False)


def _micro_time(buf: bytes, a: int, b: int, depth: int) -> str | None:
    return _timestamp(buf, a, b, micro=True)


def _duration(buf: bytes, a: int, b: int, depth: int) -> str:
    return go_duration(_plain(buf, a, b, {1: "int64"}).get(1, 0))


def _embedded_json(buf: bytes, a: int, b: int, depth: int) -> Any:
    raw = _plain(buf, a, b, {1: "bytes"}).get(1)
    if not raw:
        return None
    try:
        return json.loads(bytes(raw))
    except (ValueError, RecursionError):
        raise ProtobufError("embedded raw object is not JSON") from None


_SPECIAL = {
    _QUANTITY: _quantity,
    _INT_OR_STRING: _int_or_string,
    _TIME: _time,
    _MICRO_TIME: _micro_time,
    _DURATION: _duration,
    _FIELDS_V1: _embedded_json,
    _RAW_EXTENSION: _embedded_json,
}
