"""TLS to etcd: an etcd that serves HTTPS and asks for client certificates (--client-cert-auth), a
store opened with `etcds://` and kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile, and
`orchestra up` over it driven with kubectl 1.32."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestra.app.etcdlocal import etcd_binary, free_port
from orchestra.store import Store
from orchestra.store.etcdtls import client_tls
from orchestra.store.types import StoreUnavailableError
from tests.conftest import KUBECTL
from tests.etcdserver import etcd_missing

pytestmark = pytest.mark.slow


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def make_pki(d: Path) -> None:
    """ca.crt, server.crt/.key (127.0.0.1), client.crt/.key, and other-ca.crt (an unrelated CA)."""
    now = dt.datetime.now(dt.UTC)
    for ca_name in ("ca", "other-ca"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(ca_name)).issuer_name(_name(ca_name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        _write(d / ca_name, cert, key)
        if ca_name == "ca":
            ca_cert, ca_key = cert, key
    # etcd's gRPC gateway dials etcd's own gRPC server with the serving certificate: it needs clientAuth too
    for leaf, usage in (("server", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                        ("client", [ExtendedKeyUsageOID.CLIENT_AUTH])):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(f"etcd-{leaf}"))
                   .issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False))
        if leaf == "server":
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
        _write(d / leaf, builder.sign(ca_key, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An etcd serving HTTPS on 127.0.0.1 that requires a client certificate of the test CA."""
    why = etcd_missing()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("etcdtls")
    make_pki(d)
    client, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{client}"
    log = (d / "etcd.log").open("wb")
    proc = subprocess.Popen(
        [str(etcd_binary()), "--name", "tls", "--data-dir", str(d / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
         f"http://127.0.0.1:{peer}", "--initial-cluster", f"tls=http://127.0.0.1:{peer}",
         "--cert-file", str(d / "server.crt"), "--key-file", str(d / "server.key"),
         "--client-cert-auth", "--trusted-ca-file", str(d / "ca.crt"), "--logger", "zap",
         "--log-outputs", "stderr"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        ctl = ["etcdctl", "--endpoints", url, "--cacert", str(d / "ca.crt"), "--cert", str(d / "client.crt"),
               "--key", str(d / "client.key")]
        deadline = time.monotonic() + 20
        while subprocess.run([*ctl, "endpoint", "health"], capture_output=True).returncode != 0:
            assert proc.poll() is None, (d / "etcd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "etcd with TLS did not become healthy"
            time.sleep(0.1)
        yield f"etcds://127.0.0.1:{client}", d
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def test_a_store_over_etcd_with_client_certificates(tls_etcd: tuple[str, Path]) -> None:
    url, d = tls_etcd
    tls = client_tls(str(d / "ca.crt"), str(d / "client.crt"), str(d / "client.key"))
    store = await Store.open_etcd(url, prefix="/tls-test-store", tls=tls)
    try:
        import trio

        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            kv = await store.aput("/registry/core/configmaps/default/a", b"x")
            assert store.get("/registry/core/configmaps/default/a").value == b"x"
            assert kv.mod_revision > 0
            nursery.cancel_scope.cancel()
    finally:
        await store.aclose()


@pytest.mark.parametrize("files, why", [
    (("ca.crt", None, None), "TLS: .*(BAD_CERTIFICATE|CERTIFICATE_REQUIRED).*--etcd-certfile"),  # none given
    (("other-ca.crt", "client.crt", "client.key"), "CERTIFICATE_VERIFY_FAILED|certificate verify failed"),
])
async def test_etcd_refusing_the_handshake_is_unreachable_with_the_reason(
        tls_etcd: tuple[str, Path], files: tuple[str, str | None, str | None], why: str) -> None:
    url, d = tls_etcd
    ca, cert, key = (str(d / f) if f else None for f in files)
    with pytest.raises(StoreUnavailableError, match=why):
        store = await Store.open_etcd(url, prefix="/tls-test-refused", tls=client_tls(ca, cert, key))
        await store.aclose()


def test_bad_tls_files_are_named() -> None:
    with pytest.raises(ValueError, match="--etcd-cafile /nonexistent: no such file"):
        client_tls("/nonexistent")
    with pytest.raises(ValueError, match="go together"):
        client_tls(None, __file__, None)
    with pytest.raises(ValueError, match=r"--etcd-cafile .*not a PEM CA certificate"):
        client_tls(__file__)


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl 1.32 is missing")
def test_orchestra_up_over_etcd_with_tls(tls_etcd: tuple[str, Path], tmp_path: Path) -> None:
    url, d = tls_etcd
    state, port = tmp_path / "s", free_port()
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestra", "up", "--store", url, "--etcd-cafile", str(d / "ca.crt"),
         "--etcd-certfile", str(d / "client.crt"), "--etcd-keyfile", str(d / "client.key"), "--no-network",
         "--no-podman", "--simulate-nodes", "1", "--no-dashboard", "--state-dir", str(state), "--listen",
         f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"})
    try:
        kubectl = [KUBECTL, "--kubeconfig", str(state / "kubeconfig")]
        deadline = time.monotonic() + 60
        while not (state / "kubeconfig").exists() or subprocess.run(
                [*kubectl, "get", "--raw", "/readyz"], capture_output=True).returncode != 0:
            assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.2)
        made = subprocess.run([*kubectl, "create", "configmap", "over-tls", "--from-literal=k=v"],
                              capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        got = subprocess.run(["etcdctl", "--endpoints", url.replace("etcds://", "https://"), "--cacert",
                              str(d / "ca.crt"), "--cert", str(d / "client.crt"), "--key",
                              str(d / "client.key"),
                              "get", "--prefix", "--keys-only", "/registry/configmaps/default/over-tls"],
                             capture_output=True, text=True)
        assert "/registry/configmaps/default/over-tls" in got.stdout, got.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    # without the client certificate the server does not start, and says why
    refused = subprocess.run(
        [sys.executable, "-m", "orchestra", "up", "--store", url, "--etcd-cafile", str(d / "ca.crt"),
         "--no-network", "--no-podman", "--no-dashboard", "--state-dir", str(tmp_path / "t"), "--listen",
         f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"})
    assert refused.returncode != 0
    assert "cannot start the cluster" in refused.stderr, refused.stderr
    assert "--etcd-certfile" in refused.stderr, refused.stderr
