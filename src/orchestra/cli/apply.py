"""`orchestra apply`: check everything, dry-run everything on the server, then apply for real.

Owns: the three phases (client-side checks in manifests.py; server-side apply with dryRun=All for
every document; the real server-side apply with fieldManager `orchestra`), namespace defaulting,
ordering (Namespaces first) and the kubectl-style `deployment.apps/web created` lines.
Must not import: the server side.
"""

from __future__ import annotations

import time  # wall clock: waiting for the server to establish CRDs
from typing import Any

import click

from orchestra.cli.errors import ApiStatusError, CliError
from orchestra.cli.manifests import CheckedDocument, Document, ManifestError, check_documents, load_paths
from orchestra.cli.render import kind_prefix
from orchestra.cli.rest import RestClient, resource_path
from orchestra.cli.session import Session, client_options

APPLY_HELP = """Apply a configuration to resources from files, directories or stdin.

Every document is checked first (YAML syntax, apiVersion, kind, name), then validated by the
server with a dry run; only if all of them pass is anything applied (server-side apply, field
manager "orchestra"). Namespaces are applied first, everything else in file order. Namespaced
objects without metadata.namespace go to -n / the kubeconfig's namespace.

\b
Examples:
  orchestra apply -f examples/web-app.yaml
  orchestra apply -f examples/            # every .yaml/.yml/.json file, sorted
  cat web.yaml | orchestra apply -f -
  orchestra apply -f web.yaml --dry-run   # validate on the server, change nothing
"""


@click.command("apply", help=APPLY_HELP)
@click.option("-f", "--filename", "paths", multiple=True, required=True, metavar="FILE|DIR|-",
              help="Manifest file, directory of manifests, or - for stdin (repeatable).")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns instead of failing with a conflict.")
@click.option("--dry-run", is_flag=True, help="Only validate with the server (dryRun=All); change nothing.")
@client_options
def apply_command(paths: tuple[str, ...], force_conflicts: bool, dry_run: bool, session: Session) -> None:
    apply_manifests(paths, session, force_conflicts=force_conflicts, dry_run=dry_run)


def apply_manifests(
    paths: tuple[str, ...], session: Session, *, force_conflicts: bool = False, dry_run: bool = False
) -> None:
    """Check every document, validate all with the server, then apply; raises CliError/SystemExit.
    CustomResourceDefinitions among the documents go first, and are waited for, when other documents
    are objects of them (kubectl would need two runs)."""
    docs = load_paths(paths)
    crds = [d for d in docs if _is_crd(d.body)]
    if crds and len(crds) < len(docs) and _defines_pending(crds, docs, session):
        _apply_checked(check_documents(crds, session.registry()), session, force_conflicts, dry_run)
        if dry_run:
            return
        _wait_established(session.client, [str(d.body["metadata"]["name"]) for d in crds])
        session.forget_kinds()
        docs = [d for d in docs if not _is_crd(d.body)]
    checked = check_documents(docs, session.registry())
    if not checked:
        raise CliError("no objects passed to apply")
    _apply_checked(checked, session, force_conflicts, dry_run)


def _apply_checked(
    checked: list[CheckedDocument], session: Session, force_conflicts: bool, dry_run: bool
) -> None:
    ordered = order_for_apply(checked)
    bodies = [with_namespace(c, session) for c in ordered]
    client = session.client
    validate_on_server(client, ordered, bodies, force=force_conflicts)
    if dry_run:
        for c in ordered:
            click.echo(f"{kind_prefix(c.rt)}/{c.doc.name} validated (server dry run)")
        return
    failed = False
    for c, body in zip(ordered, bodies, strict=True):
        try:
            click.echo(
                f"{kind_prefix(c.rt)}/{c.doc.name} {apply_one(client, c, body, force=force_conflicts)}"
            )
        except ApiStatusError as exc:
            failed = True
            click.echo(f"error: {c.doc.where}: {_server_message(exc, force_conflicts)}", err=True)
    if failed:
        raise SystemExit(1)


def order_for_apply(docs: list[CheckedDocument]) -> list[CheckedDocument]:
    """Namespaces first (objects may live in them), then everything else in file order."""
    return [d for d in docs if d.rt.kind == "Namespace"] + [d for d in docs if d.rt.kind != "Namespace"]


def with_namespace(c: CheckedDocument, session: Session) -> dict[str, Any]:
    """A copy of the body with metadata.namespace set for namespaced kinds (and removed for others)."""
    body = dict(c.body)
    meta = dict(body.get("metadata") or {})
    if c.rt.namespaced:
        given = meta.get("namespace")
        if given and session.namespace_flag and given != session.namespace_flag:
            raise CliError(
                f'{c.doc.where}: the namespace from the provided object "{given}" does not match the '
                f"namespace \"{session.namespace_flag}\". You must pass '--namespace={given}' to perform "
                "this operation."
            )
        meta["namespace"] = given or session.namespace
    body["metadata"] = meta
    return body


def object_path(c: CheckedDocument, body: dict[str, Any]) -> str:
    return resource_path(c.rt, body["metadata"].get("namespace"), body["metadata"]["name"])


def validate_on_server(
    client: RestClient, docs: list[CheckedDocument], bodies: list[dict[str, Any]], *, force: bool
) -> None:
    """Dry-run every document; report every failure and raise before anything is applied."""
    new_namespaces = {
        b["metadata"]["name"] for c, b in zip(docs, bodies, strict=True) if c.rt.kind == "Namespace"
    }
    errors: list[str] = []
    for c, body in zip(docs, bodies, strict=True):
        try:
            client.apply(object_path(c, body), body, dry_run=True, force=force)
        except ApiStatusError as exc:
            if _missing_namespace(exc, body, new_namespaces):
                # Its namespace is created by this same apply; the dry run cannot see it yet, and the
                # real apply (after the namespace) will report any remaining problem.
                continue
            errors.append(f"{c.doc.where}: {_server_message(exc, force)}")
    if errors:
        raise ManifestError(errors)


def _missing_namespace(exc: ApiStatusError, body: dict[str, Any], new_namespaces: set[str]) -> bool:
    ns = body["metadata"].get("namespace")
    if not exc.not_found or ns not in new_namespaces:
        return False
    return exc.details.get("kind") == "namespaces" or f'namespaces "{ns}" not found' in exc.message


def apply_one(client: RestClient, c: CheckedDocument, body: dict[str, Any], *, force: bool) -> str:
    """Apply for real; the word kubectl would print: created, configured or unchanged."""
    path = object_path(c, body)
    before = client.get_optional(path)
    after = client.apply(path, body, force=force)
    if before is None:
        return "created"
    old_rv = (before.get("metadata") or {}).get("resourceVersion")
    new_rv = (after.get("metadata") or {}).get("resourceVersion")
    return "unchanged" if old_rv == new_rv else "configured"


def _server_message(exc: ApiStatusError, force: bool) -> str:
    if exc.code == 422 and exc.details.get("kind") and exc.causes:
        text = exc.invalid_message()
    else:
        text = exc.message
    if exc.code == 409 and exc.causes and not force:
        text += (
            "\n  (another field manager owns these fields; re-run with --force-conflicts to take them over)"
        )
    return text


CRD_API_VERSION = "apiextensions.k8s.io/v1"


def _is_crd(body: Any) -> bool:
    return (isinstance(body, dict) and body.get("apiVersion") == CRD_API_VERSION
            and body.get("kind") == "CustomResourceDefinition" and isinstance(body.get("metadata"), dict))


def _defines_pending(crds: list[Document], docs: list[Document], session: Session) -> bool:
    """Whether some document is an object of a kind only one of these CRDs defines."""
    defined = set()
    for d in crds:
        spec = d.body.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        defined |= {(f"{spec.get('group')}/{v.get('name')}", kind) for v in spec.get("versions") or []}
    registry = session.registry()
    return any(
        isinstance(d.body, dict)
        and (d.body.get("apiVersion"), d.body.get("kind")) in defined
        and registry.by_api_version_kind(str(d.body.get("apiVersion")), str(d.body.get("kind"))) is None
        for d in docs
    )


def _wait_established(client: RestClient, names: list[str], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit  # wall-clock: the CLI waits on a server
    for name in names:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        while True:
            conds = (client.get(path).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                break
            if time.monotonic() > deadline:  # wall-clock: as above
                raise CliError(f"customresourcedefinition {name} was not established after {limit:.0f} s")
            time.sleep(0.05)  # wall-clock: a synchronous CLI, no trio loop
