"""ASGI request/response plumbing: parsing, body limits, JSON responses, Status errors, streaming.

Owns: turning ASGI scope/receive/send into a Request and sending responses; no API semantics.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
import orjson

from orchestra.api.errors import ApiError, BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from orchestra.api.protobuf import CONTENT_TYPE as PROTOBUF
from orchestra.api.protobuf import ProtobufError, decode_k8s_protobuf

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 3 * 1024 * 1024
JSON = b"application/json"


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
        raw = self.arg(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)  # type: ignore[arg-type]
        except ValueError:
            raise BadRequest(f'invalid value for {name}: "{raw}"') from None

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
        data = await self.body()
        if not data.strip():
            if allow_empty:
                return None
            raise BadRequest("the request body is empty")
        ct = self.content_type.split(";")[0].strip().lower()
        if ct == PROTOBUF:
            # kubectl 1.32+ `create <generator>` sends protobuf for built-in kinds
            try:
                return decode_k8s_protobuf(data)
            except ProtobufError as exc:
                raise BadRequest(f"error decoding protobuf body: {exc}") from None
        if "cbor" in ct or "protobuf" in ct:
            raise UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: "
                                       f"application/json, application/yaml, {PROTOBUF} (got {ct})")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if ct == "application/yaml":
                return _yaml(data)
            raise BadRequest(f"couldn't get version/kind; json parse error: {exc}") from None


def _yaml(data: bytes) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(data.decode("utf-8"))
    except (YAMLError, UnicodeDecodeError) as exc:
        raise BadRequest(f"error converting YAML to JSON: {exc}") from None


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes = JSON,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    hdrs = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache, private")]
    if headers:
        hdrs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(obj), JSON, headers)


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
