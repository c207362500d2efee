"""`orchestra get`: server-side Tables like kubectl, plain objects for -o yaml/json/name, and -w.

Owns: the get command: which requests to make per target, the empty-result message, and
following a watch. Rendering itself is in render.py.
Must not import: the server side.
"""

from __future__ import annotations

from typing import Any

import click

from orchestra.cli.errors import ApiStatusError, CliError
from orchestra.cli.render import (
    TableLayout,
    age,
    as_list,
    kind_prefix,
    render_table,
    table_rows,
    to_json,
    to_yaml,
    without_managed_fields,
)
from orchestra.cli.rest import RestClient, resource_path
from orchestra.cli.session import Session, client_options
from orchestra.cli.targets import Target, is_multi, parse_targets

OUTPUTS = ("wide", "yaml", "json", "name")

GET_HELP = """Display one or many resources.

Prints a table of the most important information about the given resources, in the columns the
API server chooses (as `kubectl get` does). TYPE is a plural, singular, short name or kind
(`pods`, `pod`, `po`), several joined by commas, or `all`; TYPE/NAME selects one object.

\b
Examples:
  orchestra get pods
  orchestra get deploy,svc -n shop
  orchestra get pod/web-1 -o yaml
  orchestra get pods -A -o wide
  orchestra get pods -l app=web -w
"""


@click.command("get", help=GET_HELP)
@click.argument("args", nargs=-1, metavar="TYPE[,TYPE...] [NAME...] | TYPE/NAME...")
@click.option("-o", "--output", type=click.Choice(OUTPUTS), help="Output format (default: a table).")
@click.option("-w", "--watch", is_flag=True, help="After listing, watch for changes (until Ctrl-C).")
@click.option("-l", "--selector", metavar="SELECTOR", help="Label selector, e.g. app=web,tier!=db.")
@click.option("--field-selector", metavar="SELECTOR", help="Field selector, e.g. status.phase=Running.")
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("--no-headers", is_flag=True, help="Do not print the header row.")
@click.option("--show-managed-fields", is_flag=True, help="Keep metadata.managedFields in -o yaml/json.")
@client_options
def get_command(
    args: tuple[str, ...],
    output: str | None,
    watch: bool,
    selector: str | None,
    field_selector: str | None,
    all_namespaces: bool,
    no_headers: bool,
    show_managed_fields: bool,
    session: Session,
) -> None:
    targets = parse_targets(args, session.registry(args))
    query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", field_selector)) if v}
    getter = Getter(session, all_namespaces=all_namespaces, query=query, managed_fields=show_managed_fields)
    if watch:
        if len(targets) != 1 or len(targets[0].names) > 1:
            raise CliError("watch is only supported on individual resources and resource collections, "
                           f"but {sum(max(1, len(t.names)) for t in targets)} resources were found")
        getter.watch(targets[0], output=output, headers=not no_headers)
        return
    if output in ("yaml", "json", "name"):
        getter.print_objects(targets, output)
    else:
        getter.print_tables(
            targets, wide=output == "wide", multi=is_multi(args, targets), headers=not no_headers
        )
    if getter.failed:
        raise SystemExit(1)


class Getter:
    def __init__(
        self, session: Session, *, all_namespaces: bool, query: dict[str, str], managed_fields: bool = False
    ) -> None:
        self.session = session
        self.managed_fields = managed_fields
        self.client: RestClient = session.client
        self.all_namespaces = all_namespaces
        self.query = query
        self.failed = False

    def namespace_for(self, target: Target) -> str | None:
        if not target.rt.namespaced or (self.all_namespaces and not target.names):
            return None
        return self.session.namespace

    def _fetch(self, target: Target, *, table: bool) -> list[dict[str, Any]]:
        """One reply per name (errors printed, as kubectl does, and the rest still shown)."""
        ns = self.namespace_for(target)
        fix = _as_table if table else _same
        if not target.names:
            return [fix(self.client.get(resource_path(target.rt, ns), params=self.query, table=table))]
        replies = []
        for name in target.names:
            try:
                replies.append(fix(self.client.get(resource_path(target.rt, ns, name), table=table)))
            except ApiStatusError as exc:
                if not exc.not_found:
                    raise
                exc.show()
                self.failed = True
        return replies

    # -- tables ---------------------------------------------------------------------------------

    def print_tables(self, targets: list[Target], *, wide: bool, multi: bool, headers: bool) -> None:
        blocks: list[str] = []
        for target in targets:
            tables = self._fetch(target, table=True)
            table = _merge_tables(tables)
            if not table.get("rows"):
                continue
            with_ns = self.all_namespaces and target.rt.namespaced
            blocks.append(render_table(table, wide=wide, with_namespace=with_ns, headers=headers,
                                       name_prefix=kind_prefix(target.rt) if multi else ""))
        if blocks:
            click.echo("\n\n".join(blocks))
        elif not self.failed:
            self._nothing_found(targets)

    def _nothing_found(self, targets: list[Target]) -> None:
        if self.all_namespaces or not any(t.rt.namespaced for t in targets):
            click.echo("No resources found", err=True)
        else:
            click.echo(f"No resources found in {self.session.namespace} namespace.", err=True)

    # -- plain objects --------------------------------------------------------------------------

    def print_objects(self, targets: list[Target], output: str) -> None:
        items: list[dict[str, Any]] = []
        single = len(targets) == 1 and len(targets[0].names) == 1
        for target in targets:
            for reply in self._fetch(target, table=False):
                if "items" in reply and reply.get("kind", "").endswith("List"):
                    items.extend(self._for_output(item, target) for item in reply["items"])
                else:
                    items.append(self._for_output(reply, target))
        if output == "name":
            for item in items:
                rt = next(t.rt for t in targets if t.rt.kind == item.get("kind"))
                click.echo(f"{kind_prefix(rt)}/{item['metadata']['name']}")
            if not items and not self.failed:
                self._nothing_found(targets)
            return
        if single and not items:
            return
        doc = items[0] if single else as_list(items)
        click.echo(to_yaml(doc) if output == "yaml" else to_json(doc), nl=output != "yaml")

    # -- watch ----------------------------------------------------------------------------------

    def watch(self, target: Target, *, output: str | None, headers: bool) -> None:
        table_mode = output in (None, "wide")
        query = dict(self.query)
        path = resource_path(target.rt, self.namespace_for(target))
        if target.names:
            name_selector = f"metadata.name={target.names[0]}"
            query["fieldSelector"] = ",".join(filter(None, [query.get("fieldSelector"), name_selector]))
        listing = self.client.get(path, params=query, table=table_mode)
        layout = TableLayout()
        with_ns = self.all_namespaces and target.rt.namespaced
        opts: dict[str, Any] = {"wide": output == "wide", "with_namespace": with_ns}
        printed_header = False
        columns: list[dict[str, Any]] = listing.get("columnDefinitions") or []
        if table_mode:
            rows = table_rows(listing, headers=headers, **opts)
            if listing.get("rows"):
                click.echo("\n".join(layout.lines(rows)))
                printed_header = True
        else:
            for item in listing.get("items") or []:
                self._print_watched(self._for_output(item, target), output, target)
        rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
        params = {**query, **({"resourceVersion": rv} if rv else {})}
        for event in self.client.watch(path, params=params, table=table_mode):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "BOOKMARK":
                continue
            if kind == "ERROR":
                raise CliError(str(obj.get("message") or "the watch failed"))
            if not table_mode:
                self._print_watched(self._for_output(obj, target), output, target)
                continue
            if obj.get("kind") != "Table":
                obj = _fallback_table(obj)
            if obj.get("columnDefinitions"):
                columns = obj["columnDefinitions"]
            else:
                # The server may send the column definitions with the first table only.
                obj = {**obj, "columnDefinitions": columns}
            rows = table_rows(obj, headers=headers and not printed_header, **opts)
            if not printed_header:
                click.echo("\n".join(layout.lines(rows)))
                printed_header = headers
            else:
                for row in rows:
                    click.echo(layout.lines_for_row(row))

    def _for_output(self, obj: dict[str, Any], target: Target) -> dict[str, Any]:
        obj = _with_type(obj, target)
        return obj if self.managed_fields else without_managed_fields(obj)

    @staticmethod
    def _print_watched(obj: dict[str, Any], output: str | None, target: Target) -> None:
        if output == "yaml":
            click.echo("---\n" + to_yaml(obj), nl=False)
        elif output == "json":
            click.echo(to_json(obj))
        else:
            click.echo(f"{kind_prefix(target.rt)}/{(obj.get('metadata') or {}).get('name')}")


def _merge_tables(tables: list[dict[str, Any]]) -> dict[str, Any]:
    if not tables:
        return {"rows": []}
    merged = dict(tables[0])
    merged["rows"] = [row for t in tables for row in t.get("rows") or []]
    return merged


def _with_type(item: dict[str, Any], target: Target) -> dict[str, Any]:
    """List items may omit kind/apiVersion; kubectl fills them in before printing."""
    if "kind" in item and "apiVersion" in item:
        return item
    return {"apiVersion": target.rt.api_version, "kind": target.rt.kind, **item}


def _same(reply: dict[str, Any]) -> dict[str, Any]:
    return reply


def _as_table(reply: dict[str, Any]) -> dict[str, Any]:
    """Tables pass through; a plain object or list (a server without Tables) becomes NAME/AGE."""
    if reply.get("kind") == "Table":
        return reply
    items: list[dict[str, Any]] = reply["items"] if isinstance(reply.get("items"), list) else [reply]
    table = _fallback_table(items)
    table["metadata"] = reply.get("metadata") or {}
    return table


def _fallback_table(objs: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """What kubectl prints for plain objects: NAME and AGE (the row keeps the object for -A)."""
    rows = []
    for obj in objs if isinstance(objs, list) else [objs]:
        meta = obj.get("metadata") or {}
        rows.append({"cells": [meta.get("name", ""), age(meta.get("creationTimestamp"))], "object": obj})
    return {"columnDefinitions": [{"name": "Name", "type": "string", "format": "name"},
                                  {"name": "Age", "type": "string"}], "rows": rows}
