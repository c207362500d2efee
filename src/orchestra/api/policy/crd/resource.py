"""The rules of custom resources on every write: kube's customResourceStrategy and its validator.

Owns: `coerce(obj, c) -> unknown paths` (pruning, dropped nulls: what decoding does to a body),
`default(obj, c)` (on writes and reads), `prepare_create` / `prepare_update` / `prepare_status`
(status reset by the status subresource; generation bumped on any change but metadata),
`validate(obj, old, c, namespaced)` and `validate_status(obj, old, c)` (object meta, the schema,
scale paths, embedded resources, list-type uniqueness, then CEL unless a blocking error came
first), and the scale subresource's reads and writes through the CRD's paths.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import INVALID, NOT_SUPPORTED, REQUIRED, invalid, required
from orchestra.api.machinery.names import is_dns1035_label, is_dns1123_subdomain
from orchestra.api.policy.crd import defaulting, pruning, values
from orchestra.api.policy.crd.listtype import list_errors
from orchestra.api.policy.crd.model import Compiled
from orchestra.api.policy.crd.structural import Structural
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, as_dict, deep_copy

BLOCKING = frozenset(
    {NOT_SUPPORTED, REQUIRED, "FieldValueTooLong", "FieldValueTooMany", "FieldValueTypeInvalid"}
)
NOT_CHECKED = (
    'Invalid value: "null": some validation rules were not checked because the object was invalid; '
    "correct the existing errors to complete validation"
)
MAX_INT32 = 2**31 - 1


def coerce(obj: Obj, c: Compiled) -> list[str]:
    """Prune unknown fields (their paths returned) and drop nulls the schema does not allow."""
    if c.preserve_unknown or c.schema is None:
        return []
    unknown = pruning.prune(obj, c.schema)
    pruning.prune_nulls(obj, c.schema)
    return unknown


def default(obj: Obj, c: Compiled) -> None:
    if c.has_defaults:
        defaulting.default(obj, c.schema)


def prepare_create(obj: Obj, c: Compiled) -> None:
    if c.status:
        obj.pop("status", None)
    obj.setdefault("metadata", {})["generation"] = 1


def prepare_update(new: Obj, old: Obj, c: Compiled) -> None:
    if c.status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if _content(new) != _content(old):
        new["metadata"]["generation"] = int(as_dict(old.get("metadata")).get("generation") or 0) + 1


def prepare_status(new: Obj, old: Obj) -> Obj:
    """The status subresource: everything but status (and managedFields) comes from the stored object."""
    merged = deep_copy(old)
    fields = as_dict(new.get("metadata")).get("managedFields")
    if fields is not None:
        merged["metadata"]["managedFields"] = fields
    if "status" in new:
        merged["status"] = new["status"]
    else:
        merged.pop("status", None)
    return merged


def _content(obj: Obj) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "metadata"}


def validate(obj: Obj, old: Obj | None, c: Compiled, *, namespaced: bool) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    if not namespaced and as_dict(obj.get("metadata")).get("namespace"):
        errs.append(Cause("FieldValueForbidden", "Forbidden: not allowed on this type", "metadata.namespace"))
    errs += values.validate(obj, c.schema)
    errs += _scale_spec(obj, c) + _scale_status(obj, c)
    return _deep(obj, old, c, errs)


def validate_status(obj: Obj, old: Obj, c: Compiled) -> list[Cause]:
    errs: list[Cause] = []
    if "status" in obj:
        errs += values.validate(obj["status"], c.status_schema, field="status")
    errs += _scale_status(obj, c)
    return _deep(obj, old, c, errs)


def _deep(obj: Obj, old: Obj | None, c: Compiled, errs: list[Cause]) -> list[Cause]:
    """Embedded resources, list types, then CEL — skipped (with kube's note) after a blocking error."""
    if c.schema is None:
        return errs
    errs = errs + embedded_errors(obj, c.schema)
    if old is None or not list_errors(old, c.schema):  # an old object with duplicates may keep them
        errs += list_errors(obj, c.schema)
    if c.rules:
        if any(e.reason in BLOCKING for e in errs):
            errs.append(Cause(INVALID, NOT_CHECKED, "<nil>"))
        else:
            errs += c.rules.evaluate(obj, old, c.schema)
    return errs


def embedded_errors(x: Any, s: Structural | None, path: str = "") -> list[Cause]:
    """x-kubernetes-embedded-resource objects need an apiVersion, a kind and sound metadata."""
    if s is None:
        return []
    errs: list[Cause] = []
    if isinstance(x, dict):
        if s.embedded:
            errs += _embedded(x, path)
        for k in sorted(x):
            prop = s.properties.get(k)
            if prop is not None:
                errs += embedded_errors(x[k], prop, f"{path}.{k}" if path else k)
            elif s.additional is not None:
                errs += embedded_errors(x[k], s.additional, f"{path}[{k}]")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            errs += embedded_errors(v, s.items, f"{path}[{i}]")
    return errs


def _embedded(x: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("apiVersion", "kind"):
        if key not in x:
            errs.append(required(f"{path}.{key}", "must not be empty"))
        elif not isinstance(x[key], str):
            errs.append(invalid(f"{path}.{key}", x[key], "must be a string"))
        elif not x[key]:
            errs.append(invalid(f"{path}.{key}", "", "must not be empty"))
    kind = x.get("kind")
    if isinstance(kind, str) and kind and (msgs := is_dns1035_label(kind.lower())):
        errs.append(
            invalid(
                f"{path}.kind", kind, "may have mixed case, but should otherwise match: " + ",".join(msgs)
            )
        )
    meta = x.get("metadata")
    if isinstance(meta, dict):
        meta = {**meta, "name": meta.get("name") or "fakename"}
        errs += validate_object_meta(meta, _path_segment, f"{path}.metadata")
    return errs


def _path_segment(name: str) -> list[str]:
    """path.ValidatePathSegmentName: what an embedded object's name may not be."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# --- scale --------------------------------------------------------------------------------------------


def get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def _replicas(obj: Obj, path: str) -> list[Cause]:
    value = get_path(obj, path)
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, 0, f"{path.lstrip('.')} accessor error: {value} is of the type "
                                 f"{values.json_type(value)}, expected int64")]
    if value < 0:
        return [invalid(path, value, "should be a non-negative integer")]
    if value > MAX_INT32:
        return [invalid(path, value, f"should be less than or equal to {MAX_INT32}")]
    return []


def _scale_spec(obj: Obj, c: Compiled) -> list[Cause]:
    return _replicas(obj, c.scale.spec_replicas) if c.scale is not None else []


def _scale_status(obj: Obj, c: Compiled) -> list[Cause]:
    if c.scale is None:
        return []
    errs = _replicas(obj, c.scale.status_replicas)
    if c.scale.label_selector:
        selector = get_path(obj, c.scale.label_selector)
        if selector is not None and not isinstance(selector, str):
            errs.append(
                invalid(
                    c.scale.label_selector,
                    "",
                    f"{c.scale.label_selector.lstrip('.')} accessor error: "
                    f"{selector} is of the type {values.json_type(selector)}, "
                    "expected string",
                )
            )
    return errs
