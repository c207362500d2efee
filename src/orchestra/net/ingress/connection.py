"""One client connection of the ingress, request after request (keep-alive), in one task.

Owns: `serve_connection(router, stream, ...)` — the TLS handshake (bounded by HANDSHAKE_TIMEOUT), the
request loop over a downstream.Downstream (each request handed to a forward.Exchange), the
connection counters in the router's Stats, and the clean end of a connection. The same patterns as
apiserver/h11server.py (which net may not import: it is a layer above), for a proxy instead of an
ASGI app.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import logging
import ssl

import trio

from orchestra.net.ingress.downstream import ClientGone, Downstream
from orchestra.net.ingress.forward import Exchange, Router

log = logging.getLogger("orchestra.net.ingress")

HANDSHAKE_TIMEOUT = 10.0


async def serve_connection(router: Router, stream: trio.abc.Stream, *, scheme: str, client_ip: str,
                           port: int) -> None:
    """Serve one client connection until it ends; never raises but Cancelled."""
    down = Downstream(stream, scheme=scheme, client_ip=client_ip, port=port)
    stats = router.stats
    stats.connections_open += 1
    stats.connections_total += 1
    try:
        if isinstance(stream, trio.SSLStream):
            with trio.move_on_after(HANDSHAKE_TIMEOUT) as handshake:
                await stream.do_handshake()
            if handshake.cancelled_caught:
                down.broken = True  # half a handshake: nothing can be said on this connection
                return
        first = True
        while (request := await down.next_request(first=first)) is not None:
            stats.requests += 1
            if not await Exchange(router, down, request).run():
                break
            first = False
    except (ClientGone, trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
        down.broken = True  # the client went away: nobody left to answer
    except Exception:  # a bug costs this connection, never the listener (serve_listeners would end)
        stats.connection_errors += 1
        log.exception("ingress: connection from %s failed", client_ip)
        down.broken = True
    finally:
        stats.connections_open -= 1
        await down.close()
