"""Decoding written objects in the API core: kube's strict decoder and fieldValidation.

Owns: `_schema_check` (create/update/apply bodies: a wrong JSON type and, under Strict, an unknown
or duplicate field are 400 as the decoder answers; missing required fields are 422), `_patch_check`
(the same for a patch's result, which kube reports as 422 on the field `patch`), the fieldValidation
values, and `_encode` (the stored bytes, with the limits of stored objects, through the core's
Codec). Custom resources are
decoded by their CRD's schema instead (custom.py). Mixed into ApiCore.
Must not import: api/tables, the apiserver or anything above the api layer.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from orchestra.api.errors import BadRequest, Cause, RequestEntityTooLarge, invalid
from orchestra.api.registry import ResourceType
from orchestra.api.request import bodies, typemeta
from orchestra.api.request.stored import meta
from orchestra.api.request.types import WriteOptions
from orchestra.objects import Obj

if TYPE_CHECKING:
    from orchestra.api.request.schema import Schema
    from orchestra.api.request.stored import Codec

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


class DecodingMixin:
    schema: Schema
    codec: Codec

    if TYPE_CHECKING:
        def _custom_decode(self, rt: ResourceType, obj: Obj, opts: WriteOptions, *,
                           partial: bool = False) -> builtins.list[str]: ...

    def _schema_check(
        self, rt: ResourceType, obj: Obj, opts: WriteOptions, *, partial: bool = False
    ) -> builtins.list[str]:
        """Schema errors: wrong types and (Strict) unknown fields are 400; missing required fields 422.

        `partial` is for apply configurations, which may leave out required fields the live object has.
        """
        if rt.custom is not None:
            return self._custom_decode(rt, obj, opts, partial=partial)
        self._field_validation(opts)
        res = self.schema.validate(obj, rt.definition)
        prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
        if res.type_errors:
            raise BadRequest(prefix + res.type_errors[0].message, kind=rt.kind, causes=res.type_errors)
        found = [*opts.decode_findings, *((f'unknown field "{u}"', u) for u in res.unknown_fields)]
        if found and opts.field_validation == "Strict":
            raise BadRequest(prefix + "strict decoding error: " + ", ".join(m for m, _ in found),
                             kind=rt.kind, causes=[Cause("FieldValueInvalid", m, p) for m, p in found])
        if res.missing_required and not partial:
            name = str(meta(obj).get("name") or "")
            raise invalid(rt.kind, name, list(res.missing_required), group=rt.group)
        return [m for m, _ in found] if opts.field_validation == "Warn" else []

    def _patch_check(self, rt: ResourceType, patched: Obj, opts: WriteOptions,
                     shown: Callable[[], str]) -> builtins.list[str]:
        """A patch's result decodes as kube decodes it: a wrong JSON type, or (Strict) an unknown or
        duplicate field, is 422 Invalid on the field `patch` showing `shown()`; missing required
        fields are 422 as for any write. Returns the Warn warnings."""
        if rt.custom is not None:
            try:
                return self._custom_decode(rt, patched, opts)
            except BadRequest as exc:  # kube decodes a patch's result and reports it on the field `patch`
                raise typemeta.invalid_patch(shown(), exc.message.partition(": ")[2]) from None
        self._field_validation(opts)
        res = self.schema.validate(patched, rt.definition)
        if res.type_errors:
            raise typemeta.invalid_patch(shown(), res.type_errors[0].message)
        found = [*opts.decode_findings, *((f'unknown field "{u}"', u) for u in res.unknown_fields)]
        if found and opts.field_validation == "Strict":
            raise typemeta.invalid_patch(shown(), "strict decoding error: " + ", ".join(m for m, _ in found))
        if res.missing_required:
            name = str(meta(patched).get("name") or "")
            raise invalid(rt.kind, name, list(res.missing_required), group=rt.group)
        return [m for m, _ in found] if opts.field_validation == "Warn" else []

    @staticmethod
    def _field_validation(opts: WriteOptions) -> None:
        if opts.field_validation not in FIELD_VALIDATION:
            raise BadRequest(
                f"fieldValidation must be one of Strict, Warn, Ignore, got {opts.field_validation!r}"
            )

    def _encode(self, obj: Obj, key: str) -> bytes:
        """The stored bytes of `obj` under `key`: 413 past 3 MiB, 400 past STORED_DEPTH levels (a patch can
        grow an object past any body it came in); then the key's transformer (encryption)."""
        try:
            return self.codec.to_storage(key, bodies.stored_bytes(obj))
        except bodies.ObjectLimitError as exc:
            if exc.too_large:
                raise RequestEntityTooLarge(exc.message) from None
            raise BadRequest(exc.message) from None



def _shown(ptype: str, patch_doc: Any, patched: Obj) -> str:
    """What kube shows as the invalid value of `patch`: the patched object, or for a strategic
    merge patch the patch itself, as Go prints a map."""
    return _go_map(patch_doc) if ptype == "strategic" else orjson.dumps(patched).decode()


def _go_map(value: Any) -> str:
    """Go's `%+v` of a decoded JSON value (kube shows a strategic merge patch this way in its errors)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_map(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_map(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
