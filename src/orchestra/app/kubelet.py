"""The kubelet API's wiring: the API server's client of it, and the server a node agent runs.

Owns: `remote_containers(state_dir, get_node)`: the API server's kubelet client certificate
(<state-dir>/pki/apiserver-kubelet-client.crt: CN kube-apiserver-kubelet-client, O system:masters,
as kubeadm issues it; made at start-up from the cluster CA, again when under 30 days are left) and the
RemoteContainers the locator asks for pods of nodes in other processes; `kubelet_api(...)`: a node's
KubeletApi served by orchestra's HTTP server (the node layer does not import the apiserver).
Must not import: cli.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from orchestra.apiserver.h11server import serve_asgi
from orchestra.apiserver.kubelet.dial import KubeletDialer, client_context
from orchestra.apiserver.kubelet.runtime import GetNode, RemoteContainers
from orchestra.apiserver.tls import issue_client_cert

if TYPE_CHECKING:  # (the node's side is loaded only by what runs a node agent: start-up time)
    from orchestra.client.base import Client
    from orchestra.node.kubeletapi.app import PodSource
    from orchestra.node.kubeletapi.server import KubeletApi, KubeletApiConfig
    from orchestra.runtime.base import Runtime

KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
KUBELET_CLIENT_GROUPS = ["system:masters"]
RENEW_BEFORE = dt.timedelta(days=30)


def kubelet_client_cert(state_dir: Path) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) of the API server's kubelet client, made or renewed as needed."""
    pki = state_dir / "pki"
    crt, key = pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key"
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE:  # calendar time
            return crt.read_bytes(), key.read_bytes()
    cert_pem, key_pem = issue_client_cert(state_dir, KUBELET_CLIENT_USER, KUBELET_CLIENT_GROUPS)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    crt.write_bytes(cert_pem)
    return cert_pem, key_pem


def remote_containers(state_dir: Path, get_node: GetNode) -> RemoteContainers:
    cert, key = kubelet_client_cert(state_dir)
    ctx = client_context((state_dir / "pki" / "ca.crt").read_bytes(), cert, key)
    return RemoteContainers(KubeletDialer(ctx), get_node)


def kubelet_api(client: Client, pods: PodSource, runtime: Runtime, config: KubeletApiConfig) -> KubeletApi:
    """A node's kubelet API (`await nursery.start(api.run)` once its agent runs)."""
    from orchestra.node.kubeletapi.server import KubeletApi

    return KubeletApi(client, pods, runtime, config, serve=serve_asgi)


def node_getter(core: Any) -> GetNode:
    """The API core's Node by name (None when there is none), for the locator."""
    from orchestra.api.errors import NotFound

    node_rt = core.registry.by_kind("Node")

    async def get_node(name: str) -> dict[str, Any] | None:
        try:
            node: dict[str, Any] = core.get(node_rt, None, name)
        except NotFound:
            return None
        return node

    return get_node
