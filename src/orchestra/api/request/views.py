"""Serving a kind in a second API version from the objects stored for the first (kube stores one
object and converts it for each version asked for): events.k8s.io/v1 Events are core/v1 Events.

Owns: `Views`, the verbs of such a version (`ResourceType.view_of`): get, list, create, update,
patch and delete convert the request body to the stored form (api/policy/conversion.py), run the
version's own validation (the strict events.k8s.io/v1 rules), call the API core on the stored kind,
and convert what comes back; errors name the version asked for (`events.events.k8s.io "x" not
found`). viewable.py routes an ApiCore verb here when its type is such a version; watch.py
converts watch events the same way.
Not built: server-side apply of a view (415, as for a patch type the version does not take).
Must not import: anything above the api layer (the core is handed in; this module never imports it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import attrs
import orjson

from orchestra.api.errors import ApiError, Conflict, MethodNotAllowed, UnsupportedMediaType, conflict, invalid
from orchestra.api.policy import validation
from orchestra.api.policy.conversion import CONVERSIONS, Conversion
from orchestra.api.registry import ResourceType
from orchestra.api.request.deletion import DeleteOptions
from orchestra.api.request.stored import meta, parse_rv
from orchestra.api.request.types import ListResult, WriteOptions, WriteResult
from orchestra.objects import Obj

MAX_RETRIES = 8
_PATCHES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


class Views:
    """The verbs of the versions served from another kind's objects, over an ApiCore."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def storage(self, rt: ResourceType) -> ResourceType:
        assert rt.view_of is not None
        stored = self.core.registry.by_plural(*rt.view_of)
        assert stored is not None, f"{rt.group_resource} is served from unknown {rt.view_of}"
        return cast(ResourceType, stored)

    @staticmethod
    def conversion(rt: ResourceType) -> Conversion:
        return CONVERSIONS[(rt.group, rt.kind)]

    def out(self, rt: ResourceType, obj: Obj) -> Obj:
        """A stored object as `rt` serves it."""
        return self.conversion(rt).from_storage(obj)

    # --- reads -----------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with _as(rt, self.storage(rt)):
            return self.out(rt, self.core.get(self.storage(rt), namespace, name))

    def list(self, rt: ResourceType, namespace: str | None = None, **options: Any) -> ListResult:
        """LIST; a field selector is already in the stored kind's labels (parse_field_selector)."""
        with _as(rt, self.storage(rt)):
            listed = self.core.list(self.storage(rt), namespace, **options)
        return attrs.evolve(listed, items=[self.out(rt, o) for o in listed.items])

    # --- writes ----------------------------------------------------------------------------------

    async def create(self, rt: ResourceType, namespace: str | None, body: Any,
                     opts: WriteOptions | None = None) -> WriteResult:
        opts = opts or WriteOptions()
        obj = self.core._check_body(rt, namespace, body)
        warnings = self.core._schema_check(rt, obj, opts)
        stored = self.conversion(rt).to_storage(obj)
        self._validate(rt, stored, None)
        with _as(rt, self.storage(rt)):
            result = await self.core.create(self.storage(rt), namespace, stored, _inner(opts))
        return WriteResult(self.out(rt, result.obj), warnings + result.warnings, created=result.created)

    async def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any,
                     opts: WriteOptions | None = None, *, subresource: str = "") -> WriteResult:
        if subresource:
            raise MethodNotAllowed(f"update is not supported on {rt.plural}/{subresource}")
        opts = opts or WriteOptions()
        obj = self.core._check_body(rt, namespace, body)
        warnings = self.core._schema_check(rt, obj, opts)
        stored = self.conversion(rt).to_storage(obj)
        want_rv = parse_rv(meta(stored).get("resourceVersion"))
        st = self.storage(rt)
        for _ in range(MAX_RETRIES):
            with _as(rt, st):
                try:
                    current = self.core.get(st, namespace, name)
                except ApiError as err:
                    if err.code != 404:
                        raise
                    current = None  # PUT creates
            self._validate(rt, stored, current)
            if current is not None and want_rv is None:  # validated against this revision: write over it
                meta(stored)["resourceVersion"] = meta(current)["resourceVersion"]
            try:
                with _as(rt, st):
                    result = await self.core.update(st, namespace, name, stored, _inner(opts))
            except Conflict:
                if want_rv is not None:
                    raise
                continue  # written in between: validate against the new revision
            return WriteResult(self.out(rt, result.obj), warnings + result.warnings, created=result.created)
        raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, content_type: str,
                    body: bytes, opts: WriteOptions | None = None, *, subresource: str = "") -> WriteResult:
        if subresource:
            raise MethodNotAllowed(f"patch is not supported on {rt.plural}/{subresource}")
        ptype = _PATCHES.get(content_type.split(";")[0].strip().lower())
        if ptype is None:
            raise UnsupportedMediaType("the body of the request was in an unknown format - accepted media "
                                       f"types include: {', '.join(_PATCHES)}")
        opts = opts or WriteOptions()
        doc = self.core._parse_json(body, find_duplicates=False).value
        pinned = _pins_resource_version(doc)
        for _ in range(MAX_RETRIES):
            current = self.get(rt, namespace, name)
            patched = self.core._patched(rt, current, ptype, doc)
            warnings = self.core._patch_check(rt, patched, opts, lambda p=patched: orjson.dumps(p).decode())
            if pinned and meta(patched).get("resourceVersion") != meta(current).get("resourceVersion"):
                raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)
            meta(patched)["name"] = name
            meta(patched)["resourceVersion"] = meta(current)["resourceVersion"]
            try:
                result = await self.update(rt, namespace, name, patched, _inner(opts))
            except Conflict:
                if pinned:
                    raise
                continue  # someone wrote in between: re-read and re-apply the patch
            result.warnings = warnings
            return result
        raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)

    async def delete(self, rt: ResourceType, namespace: str | None, name: str,
                     opts: DeleteOptions | None = None) -> tuple[Obj, bool]:
        with _as(rt, self.storage(rt)):
            obj, gone = await self.core.delete(self.storage(rt), namespace, name, opts)
        return self.out(rt, obj), gone

    def _validate(self, rt: ResourceType, stored: Obj, old: Obj | None) -> None:
        """The version's own rules on the stored form (kube validates the internal object)."""
        causes = validation.validate(rt.kind, stored, old, version=rt.api_version)
        if causes:
            raise invalid(rt.kind, str(meta(stored).get("name") or ""), causes, group=rt.group)


def _inner(opts: WriteOptions) -> WriteOptions:
    """The stored kind's write: the version's body was checked already (no second warning)."""
    return attrs.evolve(opts, field_validation="Ignore", decode_findings=())


def _pins_resource_version(doc: Any) -> bool:
    """Whether a patch sets metadata.resourceVersion (a precondition: no retry on a conflict)."""
    if isinstance(doc, dict):
        return "resourceVersion" in (doc.get("metadata") or {})
    return isinstance(doc, list) and any(
        isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in doc)


@contextlib.contextmanager
def _as(rt: ResourceType, stored: ResourceType) -> Iterator[None]:
    """Errors of the stored kind's verbs name the version asked for, as kube's would:
    `events.events.k8s.io "x" not found`, `Event.events.k8s.io "x" is invalid`."""
    try:
        yield
    except ApiError as err:
        if err.group == stored.group:
            for old, new in ((f'{stored.group_resource} "', f'{rt.group_resource} "'),
                             (f'{stored.kind} "', f'{rt.kind}.{rt.group} "')):
                if old in err.message:
                    err.message = err.message.replace(old, new, 1)
                    err.args = (err.message,)
                    err.group = rt.group
                    break
        raise
