"""`orchestra store migrate`: move a stopped cluster between the durable log of its state directory and
etcd (app/migrate.py does it; this is its command line: options, the summary, the next step).

Must not import (at module level): the server side (it is loaded when the command runs).
"""

from __future__ import annotations

from pathlib import Path

import click

from orchestra.cli.config import default_state_dir
from orchestra.cli.errors import CliError
from orchestra.cli.etcdoptions import check_etcd_tls


def _check_place(value: str | None, *, durable_ok: bool = True) -> str | None:
    """`durable`, `etcd` (the state directory's local etcd) or etcd://HOST:PORT[,HOST:PORT]."""
    if value is None or value == "etcd" or (durable_ok and value == "durable"):
        return value
    from orchestra.store.etcd import endpoints_from_url

    try:
        endpoints_from_url(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; or `durable`, or `etcd` (the local etcd)") from None
    return value


@click.group("store")
def store_command() -> None:
    """Manage where a cluster's objects are kept (the durable log or etcd)."""


MIGRATE_HELP = """Move a stopped cluster between the durable log and etcd.

Copies every stored object of the cluster whose state directory is --state-dir: from its
durable log (<state dir>/store) into etcd (--to etcd://HOST:PORT[,...], or --to etcd: the
local etcd that `orchestra up --store etcd` runs under <state dir>/etcd), or from etcd
(--from, the local etcd by default) back into the durable log (--to durable).

Stop the cluster first (its pods keep running; the next `orchestra up` adopts them), then
start it on the new store with the same state directory (token, CA and encryption key stay
there): `orchestra up --store etcd://...`, `orchestra up --store etcd` or `orchestra up`.

Objects keep their uid, creationTimestamp, generation, managedFields, finalizers,
ownerReferences and status; Secrets stay encrypted at rest (copied as they are stored).
resourceVersions are the new store's revisions: clients re-list. All or nothing: a failure
leaves the target as it was; the source is never changed (it stays behind, no longer followed).
Refused: a running cluster, an empty source, an unreachable etcd, a target that already
holds a cluster (unless --overwrite).

\b
Examples:
  orchestra store migrate --to etcd://10.0.0.1:2379 --state-dir /srv/orchestra
  orchestra store migrate --to etcd                 # the local etcd of `up --store etcd`
  orchestra store migrate --to durable --from etcd://10.0.0.1:2379
  orchestra store migrate --to durable              # from the local etcd
"""


@store_command.command("migrate", help=MIGRATE_HELP)
@click.option("--to", "to", required=True, metavar="durable|etcd|etcd://HOST:PORT[,...]",
              callback=lambda ctx, param, value: _check_place(value),
              help="Where the cluster goes: the durable log of the state directory, its local etcd, or an "
                   "etcd cluster.")
@click.option("--from", "source", default=None, metavar="etcd|etcd://HOST:PORT[,...]|durable",
              callback=lambda ctx, param, value: _check_place(value),
              help="With --to durable: the etcd the cluster is in [default: the local etcd, etcd]. "
                   "With --to etcd...: durable (the default and only choice).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="ORCHESTRA_STATE_DIR",
              help="The cluster's state directory [default: the user data dir].")
@click.option("--etcd-cafile", default=None, envvar="ORCHESTRA_ETCD_CAFILE", metavar="FILE",
              help="With etcds://...: the CA of etcd's serving certificates (PEM) [default: the system's].")
@click.option("--etcd-certfile", default=None, envvar="ORCHESTRA_ETCD_CERTFILE", metavar="FILE",
              help="With etcds://...: the client certificate (PEM).")
@click.option("--etcd-keyfile", default=None, envvar="ORCHESTRA_ETCD_KEYFILE", metavar="FILE",
              help="With etcds://...: the client certificate's key (PEM).")
@click.option("--overwrite", is_flag=True,
              help="Replace what the target already holds (another cluster, or a migration that did not "
                   "finish) instead of refusing.")
def migrate_command(to: str, source: str | None, state_dir: Path | None, etcd_cafile: str | None,
                    etcd_certfile: str | None, etcd_keyfile: str | None, overwrite: bool) -> None:
    import trio

    from orchestra.app.migrate import DURABLE, MigrationError, migrate
    from orchestra.store.etcdtls import client_tls

    state = state_dir or default_state_dir()
    if to == DURABLE and source is None:
        source = "etcd"
    where = "the durable log" if to == DURABLE else to
    click.echo(f"migrating the cluster of {state} to {where} ...", err=True)
    try:
        url = to if to.startswith("etcds://") else (source or "")
        check_etcd_tls(url, etcd_cafile, etcd_certfile, etcd_keyfile)
        tls = client_tls(etcd_cafile, etcd_certfile, etcd_keyfile) if url.startswith("etcds://") else None
        done = trio.run(lambda: migrate(state, to=to, source=source, overwrite=overwrite, tls=tls))
    except MigrationError as exc:
        raise CliError(f"{exc}") from None
    click.echo(f"migrated {done.keys} objects ({done.encrypted} encrypted at rest, copied as stored) "
               f"from {done.source} to {done.target}; resourceVersions are now its revisions (up to "
               f"{done.revision}): clients re-list")
    store = "" if to == DURABLE else f" --store {to}"
    click.echo(f"start the cluster with: orchestra up{store} --state-dir {state}")
    left = f"the durable log {state / 'store'}" if to != DURABLE else (
        f"the local etcd in {state / 'etcd'}" if source == "etcd" else f"etcd at {source}")
    click.echo(f"({left} still holds the cluster as it was and no longer follows it)")
