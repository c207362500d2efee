"""Server-side apply in the API core: decoding the configuration and writing the merged object.

Owns: `ApplyMixin._apply` (PATCH `application/apply-patch+yaml`): the body as JSON when it is JSON
(kubectl sends JSON) and else as YAML under the limits of bodies.py (in a worker thread when large),
kube's apiVersion/kind rules for apply (typemeta.py), strict field validation, then apply.py's merge
onto the live object (create if absent) with retries on conflicting writes. Mixed into ApiCore.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

import attrs

from orchestra.api import conversion
from orchestra.api.errors import (
    AlreadyExists,
    BadRequest,
    Cause,
    Conflict,
    RequestEntityTooLarge,
    conflict,
    not_found,
)
from orchestra.api.registry import ResourceType
from orchestra.api.request import bodies, patch, typemeta
from orchestra.api.request.stored import meta
from orchestra.api.request.types import WriteOptions, WriteResult

MAX_RETRIES = 8


class ApplyMixin:
    async def _apply(self: Any, rt: ResourceType, namespace: str | None, name: str, body: bytes,
                     opts: WriteOptions, subresource: str) -> WriteResult:
        if not opts.field_manager:
            raise BadRequest("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        decoded = await _decode(body, find_duplicates=opts.field_validation != "Ignore")
        config = decoded.value
        if not isinstance(config, dict):
            raise BadRequest("error decoding YAML: the apply configuration must be a YAML or JSON object")
        typemeta.check_apply_version(self.registry, rt, config)
        findings = tuple((f'duplicate field "{d}"', d) for d in decoded.duplicates)
        opts = attrs.evolve(opts, decode_findings=findings)
        typed = {**config, "kind": rt.kind, "apiVersion": rt.api_version}
        warnings = self._schema_check(rt, typed, opts, partial=True)  # wrong types are refused here
        cm = config.get("metadata") or {}
        if cm.get("name") and cm["name"] != name:
            raise BadRequest(f"the name of the object ({cm['name']}) does not match the name on the URL "
                             f"({name})")
        self._check_body(rt, namespace, config)  # namespace agreement
        quiet = attrs.evolve(opts, field_validation="Ignore", decode_findings=())
        for _ in range(MAX_RETRIES):
            kv = self.store.get(rt.key(namespace, name))
            live = conversion.served(rt, self._load(kv)) if kv else None
            try:
                merged = patch.apply_patch(live, config, opts.field_manager, force=opts.force,
                                           schema=self.schema, definition=rt.definition)
            except patch.ApplyConflict as exc:
                raise _apply_conflict(exc, rt) from None
            except patch.PatchError as exc:
                raise BadRequest(str(exc)) from None
            meta(merged)["name"] = name
            self._schema_check(rt, merged, quiet)
            try:
                if kv is None:
                    if subresource:
                        raise not_found(rt.group_resource, name, group=rt.group, plural=rt.plural)
                    result: WriteResult = await self.create(rt, namespace, merged, quiet)
                else:
                    meta(merged).pop("resourceVersion", None)
                    result = await self._replace(rt, kv, merged, opts, subresource)
            except (Conflict, AlreadyExists):
                continue
            result.warnings = warnings
            return result
        raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)


async def _decode(body: bytes, *, find_duplicates: bool) -> bodies.Decoded:
    """The apply body: JSON first (what kubectl sends, and fast), else YAML."""
    try:
        return bodies.decode_json(body, find_duplicates=find_duplicates)
    except bodies.DecodeError as exc:
        if exc.too_large:
            raise RequestEntityTooLarge(exc.message) from None
        if exc.reason == "depth":  # kube reads the body as YAML, whose decoder says it this way
            raise BadRequest("error decoding YAML: error converting YAML to JSON: yaml: exceeded max depth "
                             f"of {bodies.MAX_DEPTH}") from None
    try:
        return await bodies.decode_off_loop(bodies.decode_yaml, body)
    except bodies.DecodeError as exc:
        if exc.too_large:
            raise RequestEntityTooLarge(exc.message) from None
        raise BadRequest(f"error decoding YAML: error converting YAML to JSON: {exc.message}") from None


def _apply_conflict(exc: patch.ApplyConflict, rt: ResourceType) -> Conflict:
    n = len(exc.conflicts)
    lines = [f'conflict with "{mgr}" using {rt.api_version}: {field}' for mgr, field in exc.conflicts]
    msg = f"Apply failed with {n} conflict{'s' if n != 1 else ''}: " + "; ".join(lines)
    causes = [Cause("FieldManagerConflict", f'conflict with "{mgr}" using {rt.api_version}', field)
              for mgr, field in exc.conflicts]
    return Conflict(msg, causes=causes)
