"""`orchestra status`: the cluster's servers, which one leads, and the store's health.

Owns: reading, through the API with the kubeconfig's credentials, the servers' identity Leases
(`kube-system`, label `apiserver.kubernetes.io/identity=orchestra`; app/servers.py writes them on
etcd), the controllers' Lease `kube-system/orchestra-controllers` (its holder is the leader) and the
ComponentStatus `etcd-0`, and printing them as a table (SERVER URL ROLE RENEWED) and a store line.
A server not renewed for 30 s (three renewals) is shown `unreachable`.
Must not import (at module level): the server side.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from orchestra.cli.session import Session, client_options
from orchestra.cli.tabwriter import tabwrite
from orchestra.objects import human_duration

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
CONTROLLERS_LEASE = f"{LEASES}/orchestra-controllers"
IDENTITY_SELECTOR = "apiserver.kubernetes.io/identity=orchestra"
URL_ANNOTATION = "orchestra.io/server-url"
STALE_SECONDS = 30.0  # three missed identity-lease renewals (every 10 s)


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def server_rows(identities: list[dict[str, Any]], leader: str, now: dt.datetime) -> list[list[str]]:
    """One row per server (SERVER URL ROLE RENEWED), the leader first."""
    rows = []
    for lease in identities:
        spec = lease.get("spec") or {}
        who = str(spec.get("holderIdentity") or lease["metadata"]["name"])
        renewed = _parse(spec.get("renewTime"))
        age = (now - renewed).total_seconds() if renewed else None
        role = "leader" if who == leader else "standby"
        if age is None or age > STALE_SECONDS:
            role = "unreachable"
        url = ((lease["metadata"].get("annotations") or {}).get(URL_ANNOTATION)) or "<unknown>"
        rows.append([who, url, role, "<never>" if age is None else f"{human_duration(max(age, 0))} ago"])
    return sorted(rows, key=lambda r: (r[2] != "leader", r[0]))


@click.command("status")
@client_options
def status_command(session: Session) -> None:
    """Show the cluster's servers (the leader runs the controllers and the scheduler) and its store.

    \b
    Several `orchestra up --store etcd://...` servers form one cluster; each publishes an identity
    Lease, and the holder of kube-system/orchestra-controllers is the leader.
    """
    client = session.client
    identities = client.get(LEASES, params={"labelSelector": IDENTITY_SELECTOR}).get("items") or []
    election = client.get_optional(CONTROLLERS_LEASE)
    leader = str(((election or {}).get("spec") or {}).get("holderIdentity") or "")
    now = dt.datetime.now(dt.UTC)
    if identities:
        lines = ["SERVER\tURL\tROLE\tRENEWED", *("\t".join(r) for r in server_rows(identities, leader, now))]
        click.echo(tabwrite("\n".join(lines) + "\n"), nl=False)
    else:
        click.echo(f"one server ({session.config.server}): no leader election (the store is not etcd)")
    if election is not None:
        click.echo(f"leader: {leader or '<none>'} (lease kube-system/orchestra-controllers, "
                   f"{election['spec'].get('leaseTransitions', 0)} transitions)")
    store = client.get_optional("/api/v1/componentstatuses/etcd-0")
    if store is not None:
        cond = (store.get("conditions") or [{}])[0]
        health = "healthy" if cond.get("status") == "True" else "unhealthy"
        detail = cond.get("message") or cond.get("error") or ""
        click.echo(f"store: {health}{f' ({detail})' if detail else ''}")
