"""Client certificate rotation of a joined node (kubelet's certificate manager, client side).

Owns: renewing the node's client certificate before it expires: at a random point between 70 % and
90 % of its lifetime (kube's jitter) a new key and CSR are sent as the node itself (the selfnodeclient
approval), the new certificate is written into the node's kubeconfig (whole, join.write_kubeconfig) and
the client presents it from its next connection on. A failed renewal is retried with backoff (and
logged) until the certificate expires.
Must not import: apiserver, reconcilers, cli, runtime.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from pathlib import Path

import trio
from cryptography import x509

from orchestra.api.errors import ApiError
from orchestra.client.http import Endpoint, HttpClient, TransportError
from orchestra.node.join import JoinError, key_pem, node_key, request_certificate, write_kubeconfig

log = logging.getLogger("orchestra.node.certrotation")


def renew_after(cert_pem: bytes, now: dt.datetime, *, rng: random.Random | None = None) -> float:
    """Seconds from `now` until the certificate should be renewed (70-90 % of its lifetime)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    at = start + (end - start) * (rng or random).uniform(0.7, 0.9)
    return max((at - now).total_seconds(), 0.0)


class CertificateRotation:
    def __init__(self, client: HttpClient, kubeconfig: Path, node_name: str, *,
                 expiration_seconds: int | None = None, wait_seconds: float = 120.0) -> None:
        self.client, self.kubeconfig, self.node_name = client, kubeconfig, node_name
        self.expiration_seconds, self.wait_seconds = expiration_seconds, wait_seconds
        self.renewals = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backoff = 1.0
        while True:
            cert = self.client.endpoint.cert_data
            assert cert is not None
            await trio.sleep(renew_after(cert, dt.datetime.now(dt.UTC)))  # wall-clock: certificate validity
            try:
                await self.renew()
                backoff = 1.0
            except (ApiError, TransportError, JoinError) as exc:  # retried: the old certificate still works
                log.warning("renewing the client certificate of node %s failed: %s (retrying in %g s)",
                            self.node_name, exc, backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def renew(self) -> None:
        key = node_key()
        cert = await request_certificate(self.client, self.node_name, key, wait_seconds=self.wait_seconds,
                                         expiration_seconds=self.expiration_seconds)
        endpoint: Endpoint = self.client.endpoint
        assert endpoint.ca_data is not None
        write_kubeconfig(self.kubeconfig, endpoint.server, endpoint.ca_data, cert, key_pem(key),
                         self.node_name)
        self.client.use_client_certificate(cert, key_pem(key))
        self.renewals += 1
        log.info("node %s: client certificate renewed (valid until %s)", self.node_name,
                 x509.load_pem_x509_certificate(cert).not_valid_after_utc)
