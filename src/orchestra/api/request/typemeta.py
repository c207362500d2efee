"""apiVersion and kind of written objects: which writes may name another type, and kube's answers.

Owns: the checks of a body's `apiVersion`/`kind` against the resource it is written to, for every
write path, with kube-apiserver's messages:
* create and update (POST, PUT): missing fields default to the resource's; another version of the
  same kind is 400 "the API version in the data (X) does not match the expected API version (Y)";
  anything else is 400 "<Kind> in version "<v>" cannot be handled as a <Kind>: <why>" (the
  decoder's transformDecodeError);
* JSON and merge patches: the patched document is decoded again, so naming another type is 422
  Invalid on the field `patch` with that decoder error;
* strategic merge patches: the patched map goes into the typed object, whose type never changes;
  kube keeps the resource's apiVersion/kind whatever the patch says, and so does orchestra;
* server-side apply: 400 "Incorrect version specified in apply patch. ..." (structuredmerge.go);
and the JSON types of subresource bodies (`check_body_types`), a 400 naming the field.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

import orjson

from orchestra.api.errors import BadRequest, Cause, invalid
from orchestra.api.registry import Registry, ResourceType
from orchestra.api.request.schema import Schema

__all__ = ["check_apply_version", "check_body_types", "check_written_type", "decode_error", "invalid_patch",
           "keep_type", "patched_type_error"]

SCHEME = "pkg/api/legacyscheme/scheme.go:30"  # the name kube-apiserver's scheme has in its errors


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "string"


def _given(obj: dict[str, Any], rt: ResourceType) -> tuple[str, str] | str:
    """(apiVersion, kind) as the decoder reads them, missing ones defaulted; or why they cannot be read."""
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if value is not None and not isinstance(value, str):
            return (f"couldn't get version/kind; json parse error: json: cannot unmarshal {_go_type(value)} "
                    f"into Go struct field .{field} of type string")
    api_version = obj.get("apiVersion") or rt.api_version
    kind = obj.get("kind") or rt.kind
    return api_version, kind


def decode_error(registry: Registry, rt: ResourceType, api_version: str, kind: str) -> str | None:
    """What kube's decoder answers for a body of (api_version, kind) written to `rt`; None if it fits."""
    if (api_version, kind) == (rt.api_version, rt.kind):
        return None
    version = api_version.rpartition("/")[2]
    other = registry.by_api_version_kind(api_version, kind)
    if other is None:
        return f'no kind "{kind}" is registered for version "{api_version}" in scheme "{SCHEME}"'
    if other.kind == rt.kind:
        return (f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})")
    internal = (rt.group.split(".")[0] if rt.group else "core")
    return f"converting ({version}.{kind}) to ({internal}.{rt.kind}): unknown conversion"


def check_written_type(registry: Registry, rt: ResourceType, obj: dict[str, Any]) -> None:
    """POST/PUT: raise kube's 400 when the body names a type other than `rt`'s; fills in missing ones."""
    given = _given(obj, rt)
    if isinstance(given, str):
        raise BadRequest(given)
    api_version, kind = given
    why = decode_error(registry, rt, api_version, kind)
    if why is not None:
        if why.startswith("the API version in the data"):
            raise BadRequest(why)
        version = api_version.rpartition("/")[2]
        raise BadRequest(f'{kind} in version "{version}" cannot be handled as a {rt.kind}: {why}')
    obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version


def patched_type_error(registry: Registry, rt: ResourceType, patched: Any) -> Exception | None:
    """JSON/merge patch: kube's 422 if the patched document is no longer a `rt` object, else None
    (missing apiVersion/kind are filled in, as the decoder defaults them)."""
    why: str | None
    if not isinstance(patched, dict):
        why = (f"couldn't get version/kind; json parse error: json: cannot unmarshal {_go_type(patched)} "
               'into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
               'Kind string "json:\\"kind,omitempty\\"" }')
    else:
        given = _given(patched, rt)
        why = given if isinstance(given, str) else decode_error(registry, rt, *given)
        if why is None:
            patched["kind"], patched["apiVersion"] = rt.kind, rt.api_version
            return None
    assert why is not None
    return invalid_patch(orjson.dumps(patched).decode(), why)


def invalid_patch(shown: str, why: str) -> Exception:
    """kube's 422 for a patch whose result does not decode: ` "" is invalid: patch: Invalid value:
    "<shown>": <why>` (`shown` is the patched JSON, or the patch for a strategic merge patch)."""
    quoted = orjson.dumps(shown).decode()  # a quoted string, as field.Invalid prints a string value
    return invalid("", "", [Cause("FieldValueInvalid", f"Invalid value: {quoted}: {why}", "patch")])


def keep_type(rt: ResourceType, patched: dict[str, Any]) -> None:
    """Strategic merge patch: the typed object keeps its type (string values are reset; a value of
    another JSON type is left for the schema check to refuse, as kube's converter does)."""
    for field, value in (("kind", rt.kind), ("apiVersion", rt.api_version)):
        if patched.get(field) is None or isinstance(patched.get(field), str):
            patched[field] = value


def check_apply_version(registry: Registry, rt: ResourceType, config: dict[str, Any]) -> None:
    """Server-side apply: the configuration must name the resource's apiVersion, and its kind if any."""
    api_version = config.get("apiVersion")
    if api_version != rt.api_version:
        shown = api_version if isinstance(api_version, str) else ""
        raise BadRequest(f"Incorrect version specified in apply patch. Specified patch version: {shown}, "
                         f"expected: {rt.api_version}")
    kind = config.get("kind")
    if kind is not None and kind != rt.kind:
        if not isinstance(kind, str):
            raise BadRequest("couldn't get version/kind; json parse error: json: cannot unmarshal "
                             f"{_go_type(kind)} into Go struct field .kind of type string")
        why = decode_error(registry, rt, rt.api_version, kind)
        raise BadRequest(f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {why}')


def check_body_types(schema: Schema, body: Any, definition: str, *, kind: str, version: str = "v1") -> None:
    """400 naming the field when `body` (a subresource's body: Binding, Eviction, DeleteOptions, Scale)
    has a value of the wrong JSON type, as kube's decoder answers; unknown fields are not refused."""
    result = schema.validate(body, definition)
    if result.type_errors:
        first = result.type_errors[0]
        raise BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: {first.message}',
                         kind=kind, causes=result.type_errors)
