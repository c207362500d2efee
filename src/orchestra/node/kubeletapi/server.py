"""The kubelet API server: HTTPS on the node (port 10250 by default) for the API server's streams.

Owns: `KubeletApi(client, pods, runtime, config, serve=)`, a long-lived component: it gets its serving
certificate (certs.py: a kubelet-serving CSR through the API, waiting for approval), then serves
`KubeletApp` with TLS that asks every client for a certificate of the cluster CA (one that is sent
must chain to it; the app answers 401 when none was sent), and swaps the certificate in when it is
renewed (new connections get the new one). `started()` hands back the bound URLs.
The HTTP server itself is handed in (`serve`: the app layer gives apiserver/h11server.serve_asgi),
as the node layer does not import the apiserver.
Must not import: apiserver, app, cli, reconcilers, podman.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography import x509

from orchestra.client.base import Client
from orchestra.node.kubeletapi.app import KubeletApp, PodSource
from orchestra.node.kubeletapi.certs import CertFiles, ServingCertificate
from orchestra.runtime.base import Runtime

DEFAULT_PORT = 10250
Serve = Callable[..., Awaitable[None]]  # serve(app, host, port, *, ssl_context=, task_status=)


@attrs.frozen
class KubeletApiConfig:
    node_name: str
    addresses: Sequence[str]  # the serving certificate's SANs: the node's IPs and host names
    pki_dir: Path  # where the serving certificate and key are kept
    client_ca: Path  # the cluster CA: the one client certificates must chain to
    host: str = "0.0.0.0"  # kubelet listens on every address; the API server dials the InternalIP
    port: int = DEFAULT_PORT
    expiration_seconds: int | None = None  # asked of the signer (None: the signer's default)


def server_context(files: CertFiles, client_ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(files.cert), str(files.key))
    ctx.set_alpn_protocols(["http/1.1"])  # the streams' upgrades need HTTP/1.1
    ctx.load_verify_locations(cafile=str(client_ca))
    ctx.verify_mode = ssl.CERT_OPTIONAL  # requested, and checked when sent; none sent: 401 from the app
    return ctx


class KubeletApi:
    def __init__(
        self, client: Client, pods: PodSource, runtime: Runtime, config: KubeletApiConfig, *, serve: Serve
    ) -> None:
        self.config = config
        self.certificate = ServingCertificate(
            client,
            config.node_name,
            config.addresses,
            config.pki_dir,
            expiration_seconds=config.expiration_seconds,
        )
        ca = x509.load_pem_x509_certificate(config.client_ca.read_bytes())
        self.app = KubeletApp(config.node_name, ca, pods, runtime)
        self._serve = serve
        self._ctx: ssl.SSLContext | None = None

    def _renewed(self, files: CertFiles) -> None:
        if self._ctx is not None:
            self._ctx.load_cert_chain(str(files.cert), str(files.key))

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            files = await nursery.start(functools.partial(self.certificate.run, self._renewed))
            self._ctx = server_context(files, self.config.client_ca)
            bound = await nursery.start(
                functools.partial(
                    self._serve, self.app, self.config.host, self.config.port, ssl_context=self._ctx
                )
            )
            task_status.started(bound)
