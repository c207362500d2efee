"""TLS for the ingress listener: one server certificate per host, chosen by SNI.

Owns: `CertStore` — the context the HTTPS listener hands to trio.SSLStream; its `sni_callback` swaps in
the context of the certificate for the name the client asked for: an exact name first, then a
`*.example.com` wildcard (one label, as Ingress hosts match), else the default certificate (a
cluster-CA-signed one the app makes; clients that verify will refuse it for unknown names, as they
refuse ingress-nginx's fake certificate). `plan(ingresses)` reads the served Ingresses' spec.tls:
each entry's hosts map to its Secret (`namespace/secretName`); an entry without hosts covers the DNS
names in its certificate. The oldest Ingress wins a host two Ingresses claim.
`load(secret)` turns a Secret's `tls.crt` / `tls.key` into a context (blocking: ssl only loads
files, so the PEM goes through a private temporary directory; callers run it in a thread).
A Secret that is missing or does not load leaves its hosts on the default certificate.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509

from orchestra.objects import Obj, as_dict, as_dicts, as_list, namespace_of

log = logging.getLogger("orchestra.net.ingress")

ALPN = ["http/1.1"]


class CertError(Exception):
    """A Secret's certificate or key cannot be used."""


def new_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.set_alpn_protocols(ALPN)
    return ctx


def context_from_files(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = new_context()
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _pem(secret: Obj, key: str) -> bytes:
    try:
        return base64.b64decode(str(as_dict(secret.get("data")).get(key) or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertError(f"{key} is not base64") from exc


def load(secret: Obj) -> tuple[ssl.SSLContext, list[str]]:
    """The server context of a TLS Secret and the DNS names its certificate covers (blocking)."""
    cert, key = _pem(secret, "tls.crt"), _pem(secret, "tls.key")
    if not cert or not key:
        raise CertError("the Secret has no tls.crt or tls.key")
    try:
        parsed = x509.load_pem_x509_certificate(cert)
        names = list(parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                     .get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []
    except ValueError as exc:
        raise CertError(f"tls.crt: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="orchestra-ingress-") as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(cert)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        try:
            return context_from_files(cert_file, key_file), [n.lower() for n in names]
        except ssl.SSLError as exc:
            raise CertError(f"the certificate and key do not load: {exc.reason or exc}") from exc


def plan(ingresses: Iterable[Obj]) -> tuple[dict[str, str], list[str]]:
    """(host -> `namespace/secretName` for the entries that list hosts, the Secrets of entries that
    do not: their certificates' names count). Ingresses are taken oldest first."""
    by_host: dict[str, str] = {}
    by_names: list[str] = []
    for ing in ingresses:
        for tls in as_dicts(as_dict(ing.get("spec")).get("tls")):
            secret = str(tls.get("secretName") or "")
            if not secret:
                continue  # kube allows it (SNI without a certificate of its own): the default serves
            ref = f"{namespace_of(ing)}/{secret}"
            hosts = [str(h).lower() for h in as_list(tls.get("hosts"))]
            for host in hosts:
                by_host.setdefault(host, ref)
            if not hosts and ref not in by_names:
                by_names.append(ref)
    return by_host, by_names


class CertStore:
    """The HTTPS listener's contexts; `update()` swaps the host map in one step."""

    def __init__(self, default: ssl.SSLContext) -> None:
        self.default = default
        self._exact: dict[str, ssl.SSLContext] = {}
        self._wildcard: dict[str, ssl.SSLContext] = {}
        self.context = default  # what the handshake starts with (and keeps without a better match)
        self.context.sni_callback = self._sni

    def update(self, hosts: dict[str, ssl.SSLContext]) -> None:
        self._exact = {h: c for h, c in hosts.items() if not h.startswith("*.")}
        self._wildcard = {h[2:]: c for h, c in hosts.items() if h.startswith("*.")}

    def select(self, server_name: str | None) -> ssl.SSLContext:
        if server_name:
            name = server_name.lower().rstrip(".")
            found = self._exact.get(name)
            if found is not None:
                return found
            label, dot, parent = name.partition(".")
            if label and dot and parent in self._wildcard:
                return self._wildcard[parent]
        return self.default

    def _sni(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        chosen = self.select(server_name)
        if chosen is not sslobj.context:
            sslobj.context = chosen
