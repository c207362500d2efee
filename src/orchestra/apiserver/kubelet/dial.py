"""Reaching a node's kubelet API: where it is, TLS both ways, and kube's errors when it cannot be reached.

Owns: `KubeletEndpoint.of_node(node)` (status.addresses InternalIP and
status.daemonEndpoints.kubeletEndpoint.Port, as kube-apiserver's --kubelet-preferred-address-types
puts InternalIP first for kubeadm clusters; None when the node publishes neither), `client_context(ca,
cert, key)` (the API server's kubelet client certificate; the node's serving certificate verified
against the cluster CA and its IP SAN), `KubeletDialer.dial(endpoint)` -> a TLS stream, and
`DialError`, an InternalError with kube's "error dialing backend: dial tcp HOST:PORT: connect:
connection refused".
Must not import: cli, app, reconcilers, node, net, runtime beyond its base contract.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import attrs
import trio

from orchestra.api.errors import InternalError
from orchestra.client.http import load_pem_chain

DIAL_TIMEOUT = 10.0  # seconds for TCP and the TLS handshake (kube-apiserver's dialer: 30 s, keep-alive)


class DialError(InternalError):
    """The node's kubelet API cannot be reached (kube answers this as a 500)."""


@attrs.frozen
class KubeletEndpoint:
    host: str
    port: int

    @classmethod
    def of_node(cls, node: dict[str, Any] | None) -> KubeletEndpoint | None:
        status = (node or {}).get("status") or {}
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        ips = [
            a.get("address")
            for a in status.get("addresses") or []
            if isinstance(a, dict) and a.get("type") == "InternalIP" and a.get("address")
        ]
        if not ips or not isinstance(port, int) or not 0 < port < 65536:
            return None
        return cls(str(ips[0]), port)

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def client_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
    load_pem_chain(ctx, cert_pem, key_pem)
    ctx.set_alpn_protocols(["http/1.1"])  # the streams' upgrades need HTTP/1.1
    return ctx


def _root_cause(exc: OSError) -> OSError:
    """trio.open_tcp_stream's "all attempts ... failed" carries each attempt's error in its cause."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup):
        found = [e for e in cause.exceptions if isinstance(e, OSError)]
        return found[0] if found else exc
    return cause if isinstance(cause, OSError) else exc


def _go_error(exc: OSError) -> str:
    """An OSError as Go's dialer words it ("connect: connection refused")."""
    exc = _root_cause(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"remote error: tls: {exc.reason or exc}"
    text = (os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__).lower()
    return f"connect: {text}"


class KubeletDialer:
    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx

    async def dial(self, endpoint: KubeletEndpoint) -> trio.SSLStream[trio.SocketStream]:
        try:
            with trio.fail_after(DIAL_TIMEOUT):
                tcp = await trio.open_tcp_stream(endpoint.host, endpoint.port)
                stream = trio.SSLStream(tcp, self.ctx, server_hostname=endpoint.host, https_compatible=True)
                try:
                    await stream.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(tcp)
                    raise
        except trio.TooSlowError:
            raise DialError(f"error dialing backend: dial tcp {endpoint.netloc}: i/o timeout") from None
        except (OSError, trio.BrokenResourceError) as exc:
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            why = _go_error(cause) if isinstance(cause, OSError) else str(cause or exc)
            raise DialError(f"error dialing backend: dial tcp {endpoint.netloc}: {why}") from None
        return stream

    async def check(self, endpoint: KubeletEndpoint) -> None:
        """Dial and hang up: kube-apiserver dials the node before it answers the client's upgrade."""
        stream = await self.dial(endpoint)
        await trio.aclose_forcefully(stream)
