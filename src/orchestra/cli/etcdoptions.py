"""The --etcd-cafile/--etcd-certfile/--etcd-keyfile options `orchestra up` and `orchestra store migrate`
share: checked before anything starts, so a wrong file is a usage error naming the option."""

from __future__ import annotations

import click


def check_etcd_tls(url: str | None, cafile: str | None, certfile: str | None, keyfile: str | None) -> None:
    """The --etcd-* TLS options: only with an etcds:// URL, and files that make a TLS context."""
    if not (cafile or certfile or keyfile):
        return
    if not (url or "").startswith("etcds://"):
        raise click.UsageError("--etcd-cafile, --etcd-certfile and --etcd-keyfile are for TLS to etcd: give "
                               "the store as etcds://HOST:PORT[,...]")
    from orchestra.store.etcdtls import client_tls

    try:
        client_tls(cafile, certfile, keyfile)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
