"""Where the CLI finds the cluster: state directory, kubeconfig, server, token, namespace.

Owns: reading a kubeconfig (the one `orchestra up` writes, or any kubectl-style one) into a
`ClientConfig`. Must not import: the server side.
"""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path
from typing import Any

import attrs
import platformdirs
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from orchestra.cli.errors import CliError

STATE_DIR_ENV = "ORCHESTRA_STATE_DIR"
KUBECONFIG_ENV = "ORCHESTRA_KUBECONFIG"


def default_state_dir() -> Path:
    """`$ORCHESTRA_STATE_DIR`, else the user's data directory (e.g. ~/.local/share/orchestra)."""
    env = os.environ.get(STATE_DIR_ENV)
    return Path(env) if env else Path(platformdirs.user_data_dir("orchestra"))


def default_kubeconfig() -> Path:
    return default_state_dir() / "kubeconfig"


@attrs.frozen
class ClientConfig:
    server: str
    token: str | None = None
    namespace: str = "default"
    source: Path | None = None
    ca_pem: str | None = None  # the cluster's CA (PEM) for https servers
    insecure: bool = False  # insecure-skip-tls-verify
    client_cert: bytes | None = None  # the user's client certificate and key (PEM), if it has them
    client_key: bytes | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx's `verify=` needs: the kubeconfig's CA, no verification, or the system CAs;
        with the user's client certificate when the kubeconfig gives one."""
        if not (self.client_cert and self.client_key):
            if self.insecure:
                return False
            return ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem else True
        from orchestra.client.http import load_pem_chain

        ctx = ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem else ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            load_pem_chain(ctx, self.client_cert, self.client_key)
        except (ssl.SSLError, OSError) as exc:
            raise CliError(f"the kubeconfig's client certificate or key cannot be used: {exc}") from None
        return ctx

    @classmethod
    def from_kubeconfig(cls, path: Path, *, context: str | None = None) -> ClientConfig:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise CliError(
                f"no kubeconfig at {path}: start a cluster with `orchestra up`, "
                "or pass --kubeconfig / set ORCHESTRA_KUBECONFIG"
            ) from None
        except OSError as exc:
            raise CliError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
        try:
            doc = YAML(typ="safe").load(text)
        except YAMLError as exc:
            raise CliError(f"kubeconfig {path} is not valid YAML: {exc}") from None
        return cls.from_dict(doc if isinstance(doc, dict) else {}, path=path, context=context)

    @classmethod
    def from_dict(
        cls, doc: dict[str, Any], *, path: Path | None = None, context: str | None = None
    ) -> ClientConfig:
        where = f"kubeconfig {path}" if path else "kubeconfig"
        ctx_name = context or doc.get("current-context")
        ctx = _named(doc.get("contexts"), ctx_name, "context") if ctx_name else {}
        if ctx_name and ctx is None:
            raise CliError(f'{where}: context "{ctx_name}" does not exist')
        ctx = ctx or {}
        cluster = _named(doc.get("clusters"), ctx.get("cluster"), "cluster")
        if cluster is None:
            clusters = doc.get("clusters") or []
            cluster = clusters[0].get("cluster") if len(clusters) == 1 else None
        if not cluster or not cluster.get("server"):
            raise CliError(f"{where}: no cluster server configured")
        user = _named(doc.get("users"), ctx.get("user"), "user") or {}
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        return cls(
            server=str(cluster["server"]).rstrip("/"),
            token=token,
            namespace=str(ctx.get("namespace") or "default"),
            source=path,
            ca_pem=_ca_pem(cluster, where, path),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            client_cert=_user_pem(user, "client-certificate", where, path),
            client_key=_user_pem(user, "client-key", where, path),
        )


def _ca_pem(cluster: dict[str, Any], where: str, path: Path | None) -> str | None:
    if cluster.get("certificate-authority-data"):
        try:
            return base64.b64decode(cluster["certificate-authority-data"]).decode()
        except (ValueError, UnicodeDecodeError):
            raise CliError(f"{where}: certificate-authority-data is not base64 PEM") from None
    if cluster.get("certificate-authority"):
        ca = Path(cluster["certificate-authority"]).expanduser()
        if not ca.is_absolute() and path is not None:
            ca = path.parent / ca  # kubectl resolves relative paths against the kubeconfig's directory
        try:
            return ca.read_text()
        except OSError as exc:
            raise CliError(f"{where}: cannot read certificate-authority {ca}: {exc.strerror}") from None
    return None


def _user_pem(user: dict[str, Any], field: str, where: str, path: Path | None) -> bytes | None:
    """`<field>-data` (base64 PEM) or `<field>` (a file, relative to the kubeconfig) of a kubeconfig user."""
    if user.get(f"{field}-data"):
        try:
            return base64.b64decode(user[f"{field}-data"], validate=True)
        except ValueError:
            raise CliError(f"{where}: {field}-data is not base64") from None
    if user.get(field):
        file = Path(user[field]).expanduser()
        if not file.is_absolute() and path is not None:
            file = path.parent / file
        try:
            return file.read_bytes()
        except OSError as exc:
            raise CliError(f"{where}: cannot read {field} {file}: {exc.strerror}") from None
    return None


def _named(items: Any, name: Any, field: str) -> dict[str, Any] | None:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(field)
            return value if isinstance(value, dict) else {}
    return None


def load_client_config(kubeconfig: str | None) -> ClientConfig:
    """`--kubeconfig` / `$ORCHESTRA_KUBECONFIG` (click fills both), else the state dir's kubeconfig."""
    path = Path(kubeconfig).expanduser() if kubeconfig else default_kubeconfig()
    return ClientConfig.from_kubeconfig(path)
