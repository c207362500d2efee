"""`orchestra delete`: delete by TYPE NAME..., TYPE/NAME, or -f FILE, and wait for the objects to go.

Owns: the delete requests (propagationPolicy Background, as kubectl sends) and waiting for each
object to disappear, by watching it from the resourceVersion we last saw.
Must not import: the server side.
"""

from __future__ import annotations

import time
from typing import Any

import click

from orchestra.api.registry import ResourceType
from orchestra.cli.errors import ApiStatusError, CliError
from orchestra.cli.manifests import check_documents, load_paths
from orchestra.cli.render import kind_prefix
from orchestra.cli.rest import RestClient, resource_path
from orchestra.cli.session import Session, client_options
from orchestra.cli.targets import parse_targets

DELETE_HELP = """Delete resources by type and names, by TYPE/NAME, or by the objects in manifest files.

By default waits until each object is really gone (e.g. a pod's containers have stopped); pass
--wait=false to return as soon as the deletion has been accepted.

\b
Examples:
  orchestra delete pod web-1
  orchestra delete deploy/web svc/web
  orchestra delete -f examples/web-app.yaml
  orchestra delete pods -l app=web --wait=false
"""


@click.command("delete", help=DELETE_HELP)
@click.argument("args", nargs=-1, metavar="(TYPE NAME... | TYPE/NAME... | -f FILE)")
@click.option("-f", "--filename", "paths", multiple=True, metavar="FILE|DIR|-",
              help="Delete the objects in these manifests (repeatable).")
@click.option("-l", "--selector", metavar="SELECTOR", help="Delete every object of TYPE "
                                                           "matching the label selector.")
@click.option("--all", "delete_all", is_flag=True, help="Delete every object of TYPE in the namespace.")
@click.option("--wait", type=click.BOOL, default=True, is_flag=False, flag_value=True, show_default=True,
              metavar="[=true|false]", help="Wait for the objects to disappear (--wait=false: do not).")
@click.option("--timeout", type=float, default=0, metavar="SECONDS",
              help="Give up waiting after this long (0: wait without a limit).")
@click.option("--ignore-not-found", is_flag=True, help="Treat objects that do not exist as deleted.")
@client_options
def delete_command(
    args: tuple[str, ...],
    paths: tuple[str, ...],
    selector: str | None,
    delete_all: bool,
    wait: bool,
    timeout: float,
    ignore_not_found: bool,
    session: Session,
) -> None:
    if paths and args:
        raise CliError("pass either -f FILE or TYPE NAME..., not both")
    work = _work_from_files(paths, session) if paths else _work_from_args(args, selector, delete_all, session)
    deleter = Deleter(session.client, ignore_not_found=ignore_not_found)
    for rt, ns, name in work:
        deleter.delete(rt, ns, name)
    if wait:
        # a CLI waiting on a server
        deadline = time.monotonic() + timeout if timeout > 0 else None  # wall-clock: see above
        for rt, ns, name, uid, rv in deleter.pending:
            deleter.wait_gone(rt, ns, name, uid=uid, resource_version=rv, deadline=deadline)
    if deleter.failed:
        raise SystemExit(1)


Work = list[tuple[ResourceType, str | None, str]]


def _work_from_files(paths: tuple[str, ...], session: Session) -> Work:
    out: Work = []
    for c in check_documents(load_paths(paths)):
        ns = (c.body.get("metadata") or {}).get("namespace") or session.namespace if c.rt.namespaced else None
        out.append((c.rt, ns, c.doc.name))
    return out


def _work_from_args(args: tuple[str, ...], selector: str | None, delete_all: bool, session: Session) -> Work:
    if not args:
        raise CliError("you must provide one or more resources by argument or filename (-f)")
    out: Work = []
    for target in parse_targets(args):
        ns = session.namespace if target.rt.namespaced else None
        if target.names:
            out.extend((target.rt, ns, name) for name in target.names)
            continue
        if not (selector or delete_all):
            raise CliError(f"resource(s) were provided, but no name was specified for {target.rt.plural} "
                           "(give names, -l SELECTOR or --all)")
        params = {"labelSelector": selector} if selector else {}
        listing = session.client.get(resource_path(target.rt, ns), params=params)
        out.extend((target.rt, ns, item["metadata"]["name"]) for item in listing.get("items") or [])
    if not out:
        click.echo("No resources found", err=True)
    return out


class Deleter:
    def __init__(self, client: RestClient, *, ignore_not_found: bool) -> None:
        self.client = client
        self.ignore_not_found = ignore_not_found
        self.failed = False
        self.pending: list[tuple[ResourceType, str | None, str, str, str]] = []

    def delete(self, rt: ResourceType, ns: str | None, name: str) -> None:
        try:
            reply = self.client.delete(resource_path(rt, ns, name))
        except ApiStatusError as exc:
            if exc.not_found and self.ignore_not_found:
                return
            exc.show()
            self.failed = True
            return
        click.echo(f'{kind_prefix(rt)} "{name}" deleted')
        if reply.get("kind") == "Status":
            uid, rv = str((reply.get("details") or {}).get("uid") or ""), ""
        else:
            meta = reply.get("metadata") or {}
            uid, rv = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        self.pending.append((rt, ns, name, uid, rv))

    def wait_gone(
        self, rt: ResourceType, ns: str | None, name: str, *, uid: str, resource_version: str,
        deadline: float | None,
    ) -> None:
        """Watch this one object until a DELETED event (or a GET that finds it gone or replaced)."""
        path = resource_path(rt, ns)
        while True:
            current = self.client.get_optional(resource_path(rt, ns, name))
            if current is None or (uid and (current.get("metadata") or {}).get("uid") != uid):
                return
            if deadline is not None and time.monotonic() >= deadline:  # wall-clock: CLI deadline
                raise CliError(f'timed out waiting for {kind_prefix(rt)} "{name}" to be deleted')
            rv = (current.get("metadata") or {}).get("resourceVersion") or resource_version
            params = {"fieldSelector": f"metadata.name={name}", "resourceVersion": str(rv),
                      "timeoutSeconds": str(_watch_seconds(deadline))}
            if self._watch_until_deleted(path, params, uid):
                return

    def _watch_until_deleted(self, path: str, params: dict[str, str], uid: str) -> bool:
        for event in self.client.watch(path, params=params):
            obj: dict[str, Any] = event.get("object") or {}
            if event.get("type") == "ERROR":
                return False  # e.g. 410 Expired: re-check with a GET and watch again
            meta = obj.get("metadata") or {}
            if event.get("type") == "DELETED" and (not uid or meta.get("uid") == uid):
                return True
        return False


def _watch_seconds(deadline: float | None) -> int:
    if deadline is None:
        return 60
    return max(1, min(60, int(deadline - time.monotonic()) + 1))  # wall-clock: CLI deadline
