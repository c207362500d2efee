"""Serving the ASGI API app: orchestra's h11 server (default) or hypercorn's trio worker.

The h11 server (h11 parses, wsproto frames; nothing is hand-parsed) writes each response in one
send and spends ~2.5x less CPU per request than hypercorn, and it can hand over the raw socket
after `101 Switching Protocols`, which SPDY exec/port-forward of kubectl <= 1.30 needs.
`ORCHESTRA_HTTP_SERVER=hypercorn` selects hypercorn instead (which hands the app no client
certificate: with it only bearer tokens authenticate).
Owns: listener configuration and the `serve_api(..., task_status)` start protocol.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import logging
import os

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from orchestra.apiserver.h11server import serve_asgi
from orchestra.apiserver.server import ApiServer
from orchestra.apiserver.tls import ServingCert
from orchestra.apiserver.tlsconn import server_ssl_context


def hypercorn_config(host: str, port: int, tls: ServingCert | None = None) -> Config:
    config = Config()
    if tls is not None:
        config.certfile = str(tls.cert)
        config.keyfile = str(tls.key)
        config.alpn_protocols = ["http/1.1"]  # kubectl's SPDY/WebSocket upgrades need HTTP/1.1
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("orchestra.http")
    config.keep_alive_timeout = 75  # kubectl keeps connections alive between requests
    config.keep_alive_max_requests = 100_000
    config.h11_max_incomplete_size = 64 * 1024
    config.graceful_timeout = 1
    config.websocket_ping_interval = None
    return config


async def serve_api(
    server: ApiServer,
    host: str,
    port: int,
    tls: ServingCert | None = None,
    *,
    http_server: str | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; `started()` reports the bound addresses once the socket listens."""
    choice = http_server or os.environ.get("ORCHESTRA_HTTP_SERVER", "h11")
    if choice != "hypercorn":
        ctx = server_ssl_context(tls.cert, tls.key, client_ca=tls.ca_cert) if tls is not None else None
        await serve_asgi(server, host, port, ssl_context=ctx, task_status=task_status, keep_alive_timeout=75)
        return
    await serve(server, hypercorn_config(host, port, tls), task_status=task_status, mode="asgi")  # type: ignore[arg-type]
