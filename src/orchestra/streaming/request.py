"""An ASGI request as the stream subresources read it: method, path, query, headers and the channel.

Owns: `StreamRequest` (parsed from an ASGI scope: repeated query parameters, headers folded as Go
folds them, `arg` / `flag` / `int_arg` as kube reads its query options) and the ASGI callable types.
The API server's `Request` (apiserver/http.py) extends it with the caller and the body; the kubelet
API (node/kubeletapi) serves with it as it is.
Must not import: anything of orchestra but api.errors.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Self
from urllib.parse import parse_qsl

import attrs

from orchestra.api.errors import BadRequest

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_INT = re.compile(r"[+-]?[0-9]+")


@attrs.define
class StreamRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    receive: Receive
    send: Send
    scope: Scope

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, send: Send) -> Self:
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
