"""`orchestra token create|list|delete`: bootstrap tokens for joining nodes (kubeadm token's verbs).

Owns: writing a bootstrap token Secret (`kube-system/bootstrap-token-<id>`, api/policy/bootstraptoken.py
makes it) through the API with the kubeconfig's credentials, and printing the join token that pins
the cluster CA: `K10<sha256 of the CA certificate DER>::<id>.<secret>` (k3s' secure format), the CA
being the one the kubeconfig trusts; listing them (TOKEN TTL EXPIRES USAGES DESCRIPTION EXTRA GROUPS,
as kubeadm prints) and deleting one by id (or by `<id>.<secret>`).
Must not import (at module level): the server side.
"""

from __future__ import annotations

import datetime as dt
import re

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from orchestra.api.policy import bootstraptoken as bt
from orchestra.cli.errors import CliError
from orchestra.cli.session import Session, client_options
from orchestra.cli.tabwriter import tabwrite
from orchestra.objects import human_duration

SECRETS = f"/api/v1/namespaces/{bt.NAMESPACE}/secrets"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_ttl(value: str) -> float:
    """A Go duration of hours, minutes and seconds (`24h`, `1h30m`, `90s`); `0` = never expires."""
    if value.strip() == "0":
        return 0.0
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        raise click.BadParameter(f"invalid duration {value!r}: use e.g. 24h, 1h30m, 600s or 0 (never)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _ca_der(session: Session) -> bytes:
    pem = session.config.ca_pem
    if not pem:
        raise CliError("the kubeconfig names no cluster CA (certificate-authority-data): "
                       "a join token pins it")
    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise CliError(f"the kubeconfig's cluster CA is not a PEM certificate: {exc}") from None


@click.group("token")
def token_command() -> None:
    """Manage bootstrap tokens: what `orchestra join` authenticates a new node with.

    \b
    Examples:
      orchestra token create --ttl 2h --description "worker-1"
      orchestra token list
      orchestra token delete abcdef
    """


@token_command.command("create")
@click.option("--ttl", default="24h", show_default=True, metavar="DURATION",
              help="How long the token is valid (0: never expires).")
@click.option("--description", default="", help="A note kept with the token.")
@client_options
def create_command(ttl: str, description: str, session: Session) -> None:
    """Create a bootstrap token and print its join token (K10<CA sha256>::<id>.<secret>)."""
    seconds = parse_ttl(ttl)
    ca_der = _ca_der(session)
    token_id, secret = bt.new_token()
    expires = bt.now_utc() + dt.timedelta(seconds=seconds) if seconds else None
    body = bt.token_secret(token_id, secret, expires=expires, description=description)
    session.client.request("POST", SECRETS, body=body)
    click.echo(bt.join_token(ca_der, token_id, secret))


@token_command.command("list")
@client_options
def list_command(session: Session) -> None:
    """List the bootstrap tokens (their secrets are not shown)."""
    found = session.client.get(SECRETS, params={"fieldSelector": f"type={bt.SECRET_TYPE}"})
    now = bt.now_utc()
    lines = ["TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS"]
    for secret in found.get("items") or []:
        token_id = bt.data_of(secret, bt.ID_KEY)
        if not token_id:
            continue
        try:
            when = bt.expiration(secret)
        except ValueError:
            when = now  # unparsable: counted as expired
        ttl = "<forever>" if when is None else (
            human_duration((when - now).total_seconds()) if when > now else "<expired>")
        expires = "<never>" if when is None else bt.data_of(secret, bt.EXPIRATION_KEY)
        usages = ",".join(u.removeprefix("usage-bootstrap-")
                          for u in (bt.USAGE_AUTHENTICATION, bt.USAGE_SIGNING)
                          if bt.data_of(secret, u) == "true")
        lines.append("\t".join([f"{token_id}.<secret>", ttl, expires, usages or "<none>",
                                bt.data_of(secret, bt.DESCRIPTION_KEY) or "<none>",
                                bt.data_of(secret, bt.EXTRA_GROUPS_KEY) or "<none>"]))
    click.echo(tabwrite("\n".join(lines) + "\n"), nl=False)


@token_command.command("delete")
@click.argument("tokens", nargs=-1, required=True, metavar="ID|ID.SECRET...")
@client_options
def delete_command(tokens: tuple[str, ...], session: Session) -> None:
    """Delete bootstrap tokens: a node can no longer join with them."""
    for token in tokens:
        parsed = bt.parse_token(token)
        token_id = parsed[0] if parsed else token
        if not bt.ID_RE.match(token_id):
            raise CliError(f"token id {token_id!r} is not [a-z0-9]{{6}} (nor is it <id>.<secret>)")
        session.client.request("DELETE", f"{SECRETS}/{bt.secret_name(token_id)}")
        click.echo(f"bootstrap token {token_id!r} deleted")
