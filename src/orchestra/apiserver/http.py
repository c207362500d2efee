"""ASGI request/response plumbing: parsing, body limits, JSON responses, Status errors, streaming.

Owns: turning ASGI scope/receive/send into a Request and sending responses; no API semantics.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
import orjson

from orchestra.api.errors import ApiError, BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from orchestra.api.request import bodies
from orchestra.apiserver.protobuf import CONTENT_TYPE as PROTOBUF
from orchestra.apiserver.protobuf import decode_protobuf

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = bodies.MAX_BYTES
JSON = b"application/json"
_INT = re.compile(r"[+-]?[0-9]+")
# What POST and PUT bodies may be, in kube-apiserver's order (its 415 lists them so).
BODY_MEDIA_TYPES = ("application/json", "application/yaml", PROTOBUF)


@attrs.define
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    receive: Receive
    send: Send
    scope: Scope

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, send: Send) -> Request:
        query: dict[str, list[str]] = {}
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query.setdefault(k, []).append(v)
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            key = k.decode("latin-1").lower()
            val = v.decode("latin-1")
            headers[key] = f"{headers[key]},{val}" if key in headers else val
        return cls(scope.get("method", "GET"), scope["path"], query, headers, receive, send, scope)

    def arg(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[-1] if vals else default

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() in ("true", "1")

    def int_arg(self, name: str) -> int | None:
        """An int64 query parameter, as Go's strconv.ParseInt reads it (no spaces or `_`, in range)."""
        raw = self.arg(name)
        if raw is None or raw == "":
            return None
        if _INT.fullmatch(raw) is None or not -(2**63) <= int(raw) < 2**63:
            raise BadRequest(f'invalid value for {name}: "{raw}"')
        return int(raw)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    async def body(self) -> bytes:
        length = self.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            raise RequestEntityTooLarge("Request entity too large: limit is 3145728")
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise RequestEntityTooLarge("Request entity too large: limit is 3145728")
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        return b"".join(chunks)

    async def json_body(self, *, allow_empty: bool = False) -> Any:
        """The body's value (see decoded_body); None for an empty body when `allow_empty`."""
        decoded = await self.decoded_body(allow_empty=allow_empty)
        return decoded.value if decoded is not None else None

    async def decoded_body(self, *, allow_empty: bool = False) -> bodies.Decoded | None:
        """A POST/PUT/DELETE body decoded by its Content-Type, as kube-apiserver negotiates it: none
        means JSON; JSON, YAML and Kubernetes protobuf are accepted, anything else is 415. Decoding
        keeps the limits of api/request/bodies.py (depth, decoded size, YAML aliases)."""
        data = await self.body()
        if not data.strip():
            if allow_empty:
                return None
            raise BadRequest("the request body is empty")
        media = _media_type(self.content_type)
        if media not in BODY_MEDIA_TYPES:
            raise UnsupportedMediaType("the body of the request was in an unknown format - accepted media "
                                       f"types include: {', '.join(BODY_MEDIA_TYPES)}")
        try:
            if media == PROTOBUF:  # kubectl 1.32+ `create <generator>` sends protobuf for built-in kinds
                return await bodies.decode_off_loop(decode_protobuf, data)
            if media == "application/yaml":
                return await _yaml_or_json(data)
            return bodies.decode_json(data)
        except bodies.DecodeError as exc:
            if exc.too_large:
                raise RequestEntityTooLarge(exc.message) from None
            prefix = {PROTOBUF: "error decoding protobuf body: ",
                      "application/yaml": "error converting YAML to JSON: "}.get(
                          media, "couldn't get version/kind; json parse error: ")
            raise BadRequest(prefix + exc.message) from None


def _media_type(content_type: str) -> str:
    """The media type of a Content-Type ("" when absent, which kube reads as JSON); "invalid" when
    its parameters do not parse (Go's mime.ParseMediaType refuses those, so kube answers 415)."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    for param in params.split(";") if params.strip() else ():
        name, eq, _value = param.partition("=")
        if not eq or not name.strip():
            return "invalid"
    return media or "application/json"


async def _yaml_or_json(data: bytes) -> bodies.Decoded:
    """An application/yaml body: JSON is YAML, and far quicker to read as JSON."""
    try:
        return bodies.decode_json(data)
    except bodies.DecodeError as exc:
        if exc.reason != "syntax":
            raise
    return await bodies.decode_off_loop(bodies.decode_yaml, data)


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes = JSON,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    hdrs = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache, private")]
    if headers:
        hdrs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, obj: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """`obj` as kube's JSON serializer writes it: encoding/json's Encoder ends it with a newline."""
    await send_bytes(send, status, orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE), JSON, headers)


async def send_error(send: Send, err: ApiError) -> None:
    headers = []
    if err.retry_after is not None:
        headers.append((b"retry-after", str(err.retry_after).encode()))
    if err.code == 401:
        headers.append((b"www-authenticate", b'Bearer realm="orchestra"'))
    await send_json(send, err.code, err.status(), headers)


def warning_headers(warnings: list[str]) -> list[tuple[bytes, bytes]]:
    """`Warning: 299 - "text"` headers; control characters (a field named "\\r" in a body) are written
    escaped, since a header value cannot hold them."""
    out = []
    for w in warnings:
        text = w.replace("\\", "\\\\").replace('"', '\\"')
        text = "".join(c if c == "\t" or (" " <= c != "\x7f") else f"\\u{ord(c):04x}" for c in text)
        out.append((b"warning", f'299 - "{text}"'.encode()))
    return out
