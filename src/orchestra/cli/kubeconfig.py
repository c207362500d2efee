"""`orchestra kubeconfig --user NAME [--group G]... [--out FILE]`: a kubeconfig for another user.

Owns: issuing a new key and a client certificate for the user, signed by the cluster CA of the
state directory (CN = the user, one O per group: what the API server's x509 authenticator reads),
and writing a kubeconfig with them (client-certificate-data / client-key-data, as `kubectl config
set-credentials --embed-certs` writes), the cluster's server and CA taken from the state directory's
own kubeconfig. The file is written 0600 (it holds a private key); without --out it goes to stdout.
It needs the CA's private key, so it runs where the state directory is.
Must not import (at module level): the server side (apiserver.tls is imported when the command runs).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import click
import orjson

from orchestra.cli.config import ClientConfig, default_state_dir
from orchestra.cli.errors import CliError

HELP = """Issue a kubeconfig for a user, with a new client certificate signed by the cluster CA.

The certificate's Common Name is the user and each --group an Organization, so the API server
authenticates requests made with it as that user in those groups (`kubectl auth whoami`). Run it on
the machine that holds the state directory (it needs the CA's key).

\b
Examples:
  orchestra kubeconfig --user jane --group dev --out jane.kubeconfig
  KUBECONFIG=jane.kubeconfig kubectl auth whoami
"""


@click.command("kubeconfig", help=HELP)
@click.option("--user", required=True, metavar="NAME", help="The user name (the certificate's CN).")
@click.option("--group", "groups", multiple=True, metavar="GROUP", help="A group of the user (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here [default: stdout].")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True,
              help="How long the certificate is valid.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="ORCHESTRA_STATE_DIR",
              help="The cluster's state directory [default: the user data dir].")
def kubeconfig_command(user: str, groups: tuple[str, ...], out: Path | None, days: int,
                       state_dir: Path | None) -> None:
    if not user.strip() or len(user.encode()) > 64:
        raise CliError("--user must be 1 to 64 bytes long (it is the certificate's Common Name)")
    if any(not g or len(g.encode()) > 64 for g in groups):
        raise CliError("--group must be 1 to 64 bytes long (it is an Organization of the certificate)")
    state = state_dir or default_state_dir()
    cluster = ClientConfig.from_kubeconfig(state / "kubeconfig")
    from orchestra.apiserver.tls import issue_client_cert

    try:
        cert, key = issue_client_cert(state, user, list(groups), days=days)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot use the cluster CA in {state / 'pki'}: {exc}; start the cluster once with "
                       "`orchestra up --state-dir` this directory") from None
    data = orjson.dumps(kubeconfig(cluster, user, cert, key), option=orjson.OPT_INDENT_2) + b"\n"
    if out is None:
        click.echo(data.decode(), nl=False)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(out, 0o600)  # an existing file keeps its mode through O_CREAT
    click.echo(f"kubeconfig for user {user} written to {out}", err=True)


def kubeconfig(cluster: ClientConfig, user: str, cert: bytes, key: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {"server": cluster.server}
    if cluster.ca_pem:
        entry["certificate-authority-data"] = base64.b64encode(cluster.ca_pem.encode()).decode()
    context = f"{user}@orchestra"
    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "orchestra", "cluster": entry}],
        "users": [{"name": user, "user": {"client-certificate-data": base64.b64encode(cert).decode(),
                                          "client-key-data": base64.b64encode(key).decode()}}],
        "contexts": [{"name": context, "context": {"cluster": "orchestra", "user": user,
                                                    "namespace": cluster.namespace}}],
        "current-context": context,
        "preferences": {},
    }
