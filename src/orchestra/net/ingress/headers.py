"""Header rewriting between the client and the backend (RFC 9110 §7.6.1, and what ingress-nginx adds).

Owns: dropping hop-by-hop headers (Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
Transfer-Encoding on responses, and every header the Connection header names) in both directions;
the request's X-Forwarded-For / -Proto / -Host / -Port and X-Real-IP, which replace what the client
sent (the ingress is the edge: a client's own X-Forwarded-For is not trusted, as ingress-nginx's
default `use-forwarded-headers: false` has it); keeping `Upgrade` and `Connection: Upgrade` for an
upgrade request and its 101. Header names arrive lower-cased from h11. The request keeps its
Transfer-Encoding: h11 frames a chunked body again only when the header says so.
Must not import: anything of orchestra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"})
# never dropped because a Connection header names them: the request's framing depends on them
FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host"})
FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                       b"x-real-ip"})


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens - FRAMING


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return bytes(v)
    return None


def request_headers(headers: Sequence[tuple[bytes, bytes]], *, client_ip: str, scheme: str, host: bytes,
                    port: int, upgrade: bool) -> Headers:
    """The headers sent to the backend. `host` is the request's authority (its Host header)."""
    drop = HOP_BY_HOP | FORWARDED | _connection_tokens(headers)
    out: Headers = [(bytes(k), bytes(v)) for k, v in headers if k not in drop]
    if header(out, b"host") is None:
        out.append((b"host", host))
    out += [(b"x-forwarded-for", client_ip.encode()), (b"x-real-ip", client_ip.encode()),
            (b"x-forwarded-proto", scheme.encode()), (b"x-forwarded-host", host),
            (b"x-forwarded-port", str(port).encode())]
    if upgrade:
        out += [(b"connection", b"Upgrade"), (b"upgrade", header(headers, b"upgrade") or b"")]
    return out


def response_headers(headers: Sequence[tuple[bytes, bytes]], *, switching: bool = False) -> Headers:
    """The headers sent to the client: framing is h11's to choose again, hop-by-hop ones go; a 101
    keeps its Upgrade and says Connection: Upgrade."""
    drop = HOP_BY_HOP | {b"transfer-encoding"} | _connection_tokens(headers)
    out: Headers = [(bytes(k), bytes(v)) for k, v in headers if k not in drop]
    if switching:
        out += [(b"connection", b"Upgrade"), (b"upgrade", header(headers, b"upgrade") or b"")]
    return out
