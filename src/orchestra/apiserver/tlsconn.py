"""TLS of one HTTP connection: the server's context, and what the client proved with its certificate.

Owns: `server_ssl_context(cert, key, client_ca=)` — HTTP/1.1 only (kubectl's upgrades need it) and,
with `client_ca`, a client certificate is requested but not required (kube-apiserver's
RequestClientCert): one that is sent must chain to `client_ca`, which OpenSSL checks in the
handshake (Python's ssl cannot request a certificate without checking it, so a certificate of
another CA fails the handshake rather than the request); `tls_extension(stream)`: the ASGI `tls`
scope extension of a connection (`client_cert_chain`: the client's certificate as PEM, when it sent
one), read once after the handshake and shared by every request on the connection.
Must not import: anything of orchestra (it is part of the HTTP server, which knows no Kubernetes).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import trio


def server_ssl_context(certfile: Path, keyfile: Path, *, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certfile), str(keyfile))
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def tls_extension(stream: trio.abc.Stream) -> dict[str, Any] | None:
    """The ASGI `tls` extension of a connection after its handshake; None for plain TCP."""
    if not isinstance(stream, trio.SSLStream):
        return None
    der = stream.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {"client_cert_chain": chain, "tls_version": None, "cipher_suite": None}
