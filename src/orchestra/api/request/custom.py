"""Custom resources in the API core: decoding, the write rules, and versions on the way in and out.

Owns (for a `ResourceType` with `custom`, mixed into ApiCore):
* `_custom_decode(rt, obj, opts)` — what kube's decoder does to a custom resource body: metadata
  decoded against ObjectMeta (a wrong type is 400), unknown fields pruned by the version's schema
  with fieldValidation applied (Strict: 400 `strict decoding error: unknown field "spec.x"`, Warn:
  warnings, Ignore: silence), disallowed nulls dropped, then the schema's defaults;
* `_custom_create` / `_custom_update` — kube's customResourceStrategy: status reset, generation,
  validation (422 naming the field and the rule); a create while the CRD is terminating is 405;
* `field_selector(rt, text)`: metadata.name, metadata.namespace and the CRD's selectableFields;
* `_stored(rt, obj)` / `_presented(rt, obj)` — conversion strategy None: the stored object is the
  storage version (apiVersion rewritten, pruned by that version's schema) and every read answers
  in the version asked for, defaulted (defaults added to a schema apply to older objects too);
  `_presented` and `reader(rt)` serve built-in kinds too (api/conversion: autoscaling/v1 HPAs), so
  every read of any kind goes through them.
Must not import: api/tables, the apiserver or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestra.api import conversion
from orchestra.api.errors import BadRequest, Cause, MethodNotAllowed, invalid
from orchestra.api.machinery.selectors import FieldSelector, parse_field_selector
from orchestra.api.policy.crd import resource
from orchestra.api.policy.crd.model import Compiled, compiled
from orchestra.api.registry import Registry, ResourceType
from orchestra.api.request.types import WriteOptions
from orchestra.objects import Obj, deep_copy

if TYPE_CHECKING:
    from orchestra.api.request.schema import Schema

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class CustomMixin:
    registry: Registry
    schema: Schema

    if TYPE_CHECKING:
        @staticmethod
        def _field_validation(opts: WriteOptions) -> None: ...

    def _custom_decode(
        self, rt: ResourceType, obj: Obj, opts: WriteOptions, *, partial: bool = False
    ) -> list[str]:
        """Decode a written custom resource in place; returns the Warn warnings."""
        self._field_validation(opts)
        c = self._compiled(rt)
        prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
        found = list(opts.decode_findings)
        m = obj.get("metadata")
        if isinstance(m, dict):
            res = self.schema.validate(m, OBJECT_META)
            if res.type_errors:
                first = res.type_errors[0]
                causes = [Cause(x.reason, x.message, f"metadata.{x.field}") for x in res.type_errors]
                raise BadRequest(prefix + first.message, kind=rt.kind, causes=causes)
            found += [(f'unknown field "metadata.{u}"', f"metadata.{u}") for u in res.unknown_fields]
            for u in res.unknown_fields:
                _drop(m, u)
        found += [(f'unknown field "{u}"', u) for u in resource.coerce(obj, c)]
        if found and opts.field_validation == "Strict":
            raise BadRequest(prefix + "strict decoding error: " + ", ".join(msg for msg, _ in found),
                             kind=rt.kind, causes=[Cause("FieldValueInvalid", msg, p) for msg, p in found])
        if not partial:
            resource.default(obj, c)
        return [msg for msg, _ in found] if opts.field_validation == "Warn" else []

    def _compiled(self, rt: ResourceType) -> Compiled:
        assert rt.custom is not None
        return compiled(rt.custom)

    def _custom_create(self, rt: ResourceType, obj: Obj) -> None:
        assert rt.custom is not None
        if rt.custom.terminating:
            raise MethodNotAllowed("create not allowed while custom resource definition is terminating",
                                   group=rt.group, kind=rt.plural)
        c = self._compiled(rt)
        resource.prepare_create(obj, c)
        self._custom_check(rt, resource.validate(obj, None, c, namespaced=rt.namespaced), obj)

    def _custom_update(self, rt: ResourceType, new: Obj, old: Obj, subresource: str) -> Obj:
        """The object to write over `old` (already in `rt`'s version), validated."""
        c = self._compiled(rt)
        if subresource == "status":
            new = resource.prepare_status(new, old)
            self._custom_check(rt, resource.validate_status(new, old, c), new)
            return new
        resource.prepare_update(new, old, c)
        self._custom_check(rt, resource.validate(new, old, c, namespaced=rt.namespaced), new)
        return new

    @staticmethod
    def _custom_check(rt: ResourceType, causes: list[Cause], obj: Obj) -> None:
        if causes:
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise invalid(rt.kind, name, causes, group=rt.group)

    # --- versions -------------------------------------------------------------------------------

    def _stored(self, rt: ResourceType, obj: Obj) -> Obj:
        """`obj` (in `rt`'s version) as stored: the storage version."""
        custom = rt.custom
        if custom is None or custom.storage_version == rt.version:
            return obj
        storage = self.registry.by_path(rt.group, custom.storage_version, rt.plural)
        obj = deep_copy(obj)
        obj["apiVersion"] = f"{rt.group}/{custom.storage_version}"
        if storage is not None and storage.custom is not None:
            resource.coerce(obj, compiled(storage.custom))
        return obj

    def _presented(self, rt: ResourceType, obj: Obj) -> Obj:
        """A stored object as `rt`'s version answers it (a built-in kind's through api/conversion)."""
        if rt.custom is None:
            return conversion.served(rt, obj)
        if obj.get("apiVersion") != rt.api_version:
            obj["apiVersion"] = rt.api_version
            resource.coerce(obj, self._compiled(rt))
        resource.default(obj, self._compiled(rt))
        return obj

    def reader(self, rt: ResourceType) -> Callable[[Obj], Obj] | None:
        """The transform reads of `rt` need (None for most built-ins: they are returned as stored)."""
        if rt.custom is None and not conversion.converts(rt):
            return None
        return lambda obj: self._presented(rt, obj)


def _drop(m: dict[str, Any], dotted: str) -> None:
    """Remove an unknown metadata field (`labels.x` paths never occur: labels is a map)."""
    head, _, rest = dotted.partition(".")
    if not rest:
        m.pop(head, None)
    elif isinstance(m.get(head), dict):
        _drop(m[head], rest)


def field_selector(rt: ResourceType, text: str | None) -> FieldSelector:
    """A LIST/WATCH field selector for `rt`: a custom resource's selectableFields, else the kind's."""
    if rt.custom is None:
        return parse_field_selector(text, rt.kind, rt.group)
    return parse_field_selector(text, rt.kind, rt.group, fields=compiled(rt.custom).selectable)
