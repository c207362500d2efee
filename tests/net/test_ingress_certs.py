"""SNI: the ingress picks the certificate of the name a client asks for (exact, then a one-label
wildcard, else the default), from kubernetes.io/tls Secrets."""

from __future__ import annotations

import ssl

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.x509.oid import NameOID

from orchestra.net.ingress import certs
from tests.net.certutil import CertAuthority, Pem, tls_secret

CA = CertAuthority()
A = CA.issue("a.example.com")
WILD = CA.issue("*.example.org", "example.org")
DEFAULT = CertAuthority("default-ca").issue("ingress.local")


@pytest.fixture(scope="module")
def store() -> certs.CertStore:
    out = certs.CertStore(certs.load(tls_secret("default", DEFAULT))[0])
    out.update(
        {
            "a.example.com": certs.load(tls_secret("a", A))[0],
            "*.example.org": certs.load(tls_secret("w", WILD))[0],
        }
    )
    return out


async def served_subject(store: certs.CertStore, server_name: str | None) -> str:
    """The common name of the certificate a TLS client asking for `server_name` is given."""
    client_side, server_side = trio.testing.memory_stream_pair()
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE  # the test looks at the certificate itself
    server = trio.SSLStream(server_side, store.context, server_side=True)
    client = trio.SSLStream(client_side, client_ctx, server_hostname=server_name)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            await client.do_handshake()
    der = client.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.mark.parametrize(("name", "subject"), [
    ("a.example.com", "a.example.com"),
    ("A.Example.Com", "a.example.com"),
    ("x.example.org", "*.example.org"),
    ("x.y.example.org", "ingress.local"),
    ("example.org", "ingress.local"),
    ("b.example.com", "ingress.local"),
    (None, "ingress.local"),
], ids=["exact", "case-insensitive", "wildcard", "wildcard-is-one-label", "wildcard-not-the-apex", "unknown",
        "no-sni"])
async def test_sni_selects_the_certificate(store: certs.CertStore, name: str | None, subject: str) -> None:
    assert await served_subject(store, name) == subject


def test_plan_and_secret_errors() -> None:
    ingresses = [
        {
            "metadata": {"name": "old", "namespace": "ns"},
            "spec": {
                "tls": [
                    {"hosts": ["a.example.com"], "secretName": "a"},
                    {"secretName": "by-names"},
                    {"hosts": ["x"]},
                ]
            },
        },
        {
            "metadata": {"name": "new", "namespace": "ns"},
            "spec": {"tls": [{"hosts": ["a.example.com"], "secretName": "b"}]},
        },
    ]
    assert certs.plan(ingresses) == ({"a.example.com": "ns/a"}, ["ns/by-names"])
    _ctx, names = certs.load(tls_secret("w", WILD))
    assert names == ["*.example.org", "example.org"]
    with pytest.raises(certs.CertError, match=r"no tls\.crt"):
        certs.load({"data": {}})
    with pytest.raises(certs.CertError, match="do not load"):
        certs.load(tls_secret("mixed", Pem(A.cert, WILD.key)))
    with pytest.raises(certs.CertError, match="not base64"):
        certs.load({"data": {"tls.crt": "!!", "tls.key": "!!"}})
