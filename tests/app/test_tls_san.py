"""`orchestra up --tls-san`: the serving certificate covers the extra names and addresses, besides the
listen and advertised addresses; a certificate made without them is made again when they are added."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from orchestra.apiserver.tls import ensure_serving_cert
from orchestra.app.config import ClusterConfig
from orchestra.app.run import api_hosts


def sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in names}


def test_the_serving_certificate_covers_every_tls_san(tmp_path: Path) -> None:
    plain = ClusterConfig(state_dir=tmp_path, listen_host="127.0.0.1", advertise_address="192.0.2.7")
    first = ensure_serving_cert(tmp_path, api_hosts(plain))
    assert "api.example.com" not in sans(first.cert)
    config = ClusterConfig(state_dir=tmp_path, listen_host="127.0.0.1", advertise_address="192.0.2.7",
                           tls_sans=("api.example.com", "192.0.2.10", "*.lb.example.com"))
    assert api_hosts(config) == ["127.0.0.1", "192.0.2.7", "api.example.com", "192.0.2.10",
                                 "*.lb.example.com"]
    again = ensure_serving_cert(tmp_path, api_hosts(config))
    have = sans(again.cert)
    assert {"api.example.com", "*.lb.example.com", "localhost"} <= have
    assert {str(ipaddress.ip_address(a)) for a in ("192.0.2.10", "192.0.2.7", "127.0.0.1")} <= have
