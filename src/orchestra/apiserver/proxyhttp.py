"""One proxied HTTP exchange, the way kube-apiserver's proxy (UpgradeAwareHandler over Go's
httputil.ReverseProxy and apimachinery's proxy.Transport) does it: h11 on both sides of orchestra,
never HTTP by hand.

Owns: dialling the backend (TLS without verification for https, as kube's proxy transport does;
a failed dial is 503 "error trying to reach service: dial tcp IP:PORT: connect: connection
refused"), the request sent on (method, escaped path, query, body streamed in either framing;
hop-by-hop headers and those the Connection header names dropped, the Authorization and Impersonate-*
headers dropped as kube's authentication and impersonation filters drop them once they have been used,
X-Forwarded-For appended, X-Forwarded-Uri set), and the
response streamed back as it arrives with the same header rules, CORS headers removed
(corsRemovingTransport) and a Location that points into the backend rewritten to go through the
proxy again (Transport.rewriteURL).
Not built: rewriting links inside text/html bodies (kube's rewriteHTML); such bodies pass unchanged.
Must not import: cli, reconcilers, node, net, or a runtime.
"""

from __future__ import annotations

import errno
import posixpath
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
import h11
import trio

from orchestra.api.errors import ServiceUnavailable
from orchestra.apiserver.http import Request
from orchestra.streaming.portforward import Connect

HOP_BY_HOP = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"proxy-authenticate",
                        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade"})
CORS = frozenset({b"access-control-allow-credentials", b"access-control-allow-headers",
                  b"access-control-allow-methods", b"access-control-allow-origin"})
DIAL_TIMEOUT = 30.0  # kube's proxy dialer
READ_SIZE = 64 * 1024
Headers = list[tuple[bytes, bytes]]


@attrs.frozen
class Upstream:
    scheme: str  # http | https
    host: str
    port: str  # "" for the scheme's default
    path: str  # escaped, starting with "/"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def port_number(self) -> int:
        return int(self.port) if self.port.isdigit() else (443 if self.scheme == "https" else 80)


async def forward(req: Request, up: Upstream, connect: Connect, *, prefix: str) -> None:
    """Send `req` to `up` and stream the answer back; `prefix` is the request path before `up.path`."""
    stream = await _dial(up, connect)
    try:
        conn = h11.Connection(h11.CLIENT)
        query = req.scope.get("query_string", b"").decode("latin-1")
        target = up.path + ("?" + query if query else "")
        headers, body = _request_headers(req, up, prefix + up.path)
        await stream.send_all(conn.send(h11.Request(method=req.method, target=target, headers=headers)))
        async with trio.open_nursery() as nursery:
            if body:
                nursery.start_soon(_send_body, req, conn, stream, nursery.cancel_scope)
            else:
                await stream.send_all(conn.send(h11.EndOfMessage()))
            await _relay_response(req, conn, stream, up, prefix)
            nursery.cancel_scope.cancel()  # the backend answered without reading the whole body
    finally:
        await trio.aclose_forcefully(stream)


async def _dial(up: Upstream, connect: Connect) -> trio.abc.Stream:
    where = f"dial tcp {up.authority if up.port else f'{up.host}:{up.port_number}'}"
    try:
        with trio.fail_after(DIAL_TIMEOUT):
            stream: trio.abc.Stream = await connect(up.host, up.port_number)
    except trio.TooSlowError:
        raise ServiceUnavailable(f"error trying to reach service: {where}: i/o timeout") from None
    except OSError as exc:
        why = _go_errno(exc)
        raise ServiceUnavailable(f"error trying to reach service: {where}: connect: {why}") from None
    if up.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # kube's proxy transport skips verification too
        stream = trio.SSLStream(stream, context, server_hostname=up.host)
    return stream


def _go_errno(exc: OSError) -> str:
    """The strerror Go prints for a failed connect."""
    known = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
             errno.ENETUNREACH: "network is unreachable", errno.ETIMEDOUT: "connection timed out"}
    cause = exc.__cause__  # trio's "all attempts to connect ... failed" holds the attempts' errors
    if exc.errno is None and isinstance(cause, BaseExceptionGroup):
        first = cause.exceptions[0] if cause.exceptions else None
        if isinstance(first, OSError):
            return _go_errno(first)
    if exc.errno in known:
        return known[exc.errno]
    return (exc.strerror or str(exc)).lower()


def _dropped(headers: Headers) -> set[bytes]:
    """The hop-by-hop headers of a message: the fixed ones and those its Connection header names."""
    named = {t.strip().lower() for k, v in headers if k.lower() == b"connection" for t in v.split(b",")}
    return set(HOP_BY_HOP) | named


def _request_headers(req: Request, up: Upstream, forwarded_uri: str) -> tuple[Headers, bool]:
    """The headers sent on, and whether a body follows."""
    raw: Headers = [(bytes(k).lower(), bytes(v)) for k, v in req.scope.get("headers", [])]
    drop = _dropped(raw) | {b"authorization", b"x-forwarded-uri"}
    chunked = any(k == b"transfer-encoding" and b"chunked" in v.lower() for k, v in raw)
    # the caller's credentials and whom it acts as are the API server's, never the backend's
    out = [(k, v) for k, v in raw if k not in drop and not k.startswith(b"impersonate-")]
    has_length = any(k == b"content-length" for k, _ in out)
    client = req.scope.get("client")
    if client:
        prior = [v for k, v in out if k == b"x-forwarded-for"]
        out = [(k, v) for k, v in out if k != b"x-forwarded-for"]
        ip = str(client[0]).encode()
        out.append((b"x-forwarded-for", b", ".join([*prior, ip])))
    out.append((b"x-forwarded-uri", forwarded_uri.encode("latin-1")))
    if not any(k == b"host" for k, _ in out):
        out.append((b"host", up.authority.encode("latin-1")))  # Go's default: the URL's host
    if chunked and not has_length:
        out.append((b"transfer-encoding", b"chunked"))
    empty = any(k == b"content-length" and v.strip() == b"0" for k, v in out)
    return out, chunked or (has_length and not empty)


async def _send_body(req: Request, conn: h11.Connection, stream: trio.abc.Stream,
                     exchange: trio.CancelScope) -> None:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            exchange.cancel()  # the client went away: nobody is waiting for the answer
            return
        chunk = message.get("body", b"")
        if chunk:
            await stream.send_all(conn.send(h11.Data(data=chunk)))
        if not message.get("more_body"):
            break
    await stream.send_all(conn.send(h11.EndOfMessage()))


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(bytes(await stream.receive_some(READ_SIZE)))


async def _relay_response(req: Request, conn: h11.Connection, stream: trio.abc.Stream, up: Upstream,
                          prefix: str) -> None:
    try:
        event = await _next_event(conn, stream)
        while isinstance(event, h11.InformationalResponse):  # 100 Continue and the like: not relayed
            event = await _next_event(conn, stream)
    except (h11.RemoteProtocolError, trio.BrokenResourceError, OSError) as exc:
        reason = "EOF" if isinstance(exc, h11.RemoteProtocolError) else str(exc)
        raise ServiceUnavailable(f"error trying to reach service: {reason}") from None
    if not isinstance(event, h11.Response):
        raise ServiceUnavailable("error trying to reach service: EOF")
    headers = _response_headers(list(event.headers), req, up, prefix)
    await req.send({"type": "http.response.start", "status": event.status_code, "headers": headers})
    while True:
        try:
            event = await _next_event(conn, stream)
        except (h11.RemoteProtocolError, trio.BrokenResourceError, OSError):
            break  # the backend broke off mid-body: the answer ends there, as Go's ReverseProxy ends it
        if not isinstance(event, h11.Data):
            break
        # a client that went away makes send() raise (an OSError): the exchange ends with it
        await req.send({"type": "http.response.body", "body": bytes(event.data), "more_body": True})
    await req.send({"type": "http.response.body", "body": b"", "more_body": False})


def _response_headers(headers: Headers, req: Request, up: Upstream, prefix: str) -> Headers:
    drop = _dropped(headers) | CORS
    out: Headers = []
    for name, value in headers:
        if name in drop:
            continue
        if name == b"location":
            value = rewrite_location(value.decode("latin-1"), up.authority, req.headers.get("host", ""),
                                     prefix).encode("latin-1")
        out.append((name, value))
    return out


def rewrite_location(location: str, backend: str, request_host: str, prefix: str) -> str:
    """proxy.Transport.rewriteURL: a redirect to the backend itself (or to a path on this host)
    goes through the proxy again (`prefix` + its path); any other is left as it is."""
    url = urlsplit(location)
    if (url.netloc and url.netloc not in (backend, request_host)) or not url.path.startswith("/"):
        return location
    scheme, netloc = (url.scheme, url.netloc) if url.netloc == request_host else ("", "")
    path = url.path
    if not path.startswith(prefix):
        path = posixpath.normpath(prefix + "/" + path)
        path = "/" + path.lstrip("/")
        if url.path.endswith("/") and not path.endswith("/"):
            path += "/"
    return urlunsplit((scheme, netloc, path, url.query, url.fragment))
