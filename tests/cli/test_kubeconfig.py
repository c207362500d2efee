"""`orchestra kubeconfig --user`: a kubeconfig with a new client certificate of the cluster CA (no server)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestra.apiserver.tls import ensure_serving_cert
from orchestra.app.state import write_kubeconfig
from orchestra.cli.config import ClientConfig
from orchestra.cli.main import cli


@pytest.fixture
def state(tmp_path: Path) -> Path:
    serving = ensure_serving_cert(tmp_path, [])
    write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:7443", "admin-token", serving.ca_cert)
    return tmp_path


def test_a_kubeconfig_for_a_user_in_groups(state: Path) -> None:
    out = state / "jane.kubeconfig"
    result = CliRunner().invoke(cli, ["kubeconfig", "--user", "jane", "--group", "dev", "--group", "qa",
                                      "--out", str(out), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(out.read_text())
    assert doc["current-context"] == "jane@orchestra"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"
    user = doc["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    ca = x509.load_pem_x509_certificate((state / "pki" / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["jane"]
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev", "qa"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    config = ClientConfig.from_kubeconfig(out)  # the CLI's own client reads it back, certificate included
    assert config.client_cert is not None and config.client_key is not None and config.token is None
    assert config.ssl_context() is not True


def test_to_stdout_without_out(state: Path) -> None:
    result = CliRunner().invoke(cli, ["kubeconfig", "--user", "ci", "--state-dir", str(state)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["users"][0]["name"] == "ci"


@pytest.mark.parametrize(("args", "message"), [
    (["--user", ""], "--user must be 1 to 64 bytes long"),
    (["--user", "x" * 65], "--user must be 1 to 64 bytes long"),
    (["--user", "jane", "--group", ""], "--group must be 1 to 64 bytes long"),
], ids=["empty", "too-long", "empty-group"])
def test_bad_names(state: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["kubeconfig", *args, "--state-dir", str(state)])
    assert result.exit_code == 1 and message in result.output


def test_without_a_cluster_ca(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text('{"clusters": [{"name": "c", "cluster": {"server": "https://x"}}]}')
    result = CliRunner().invoke(cli, ["kubeconfig", "--user", "jane", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "cannot use the cluster CA" in result.output
