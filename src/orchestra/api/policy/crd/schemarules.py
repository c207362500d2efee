"""What a CRD's openAPIV3Schema may say: kube's structural-schema rules and its per-node checks.

Owns: `structural_errors(s, path)` (schema.ValidateStructural: every node typed unless
x-kubernetes-int-or-string / preserve-unknown-fields, nested value validations without types or
extensions, metadata restricted to name/generateName, no additionalProperties at the root, embedded
resources typed object, completeness of value validations) and `node_errors(s, path, ...)`
(ValidateCustomResourceDefinitionOpenAPISchema: valid types, no uniqueItems, additionalProperties
and properties exclusive, list and map types, list-map keys, x-kubernetes-validations' static
rules, defaults only where allowed). Messages and paths are kube-apiserver 1.32's.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import re

import attrs

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import forbidden, invalid, not_supported, required
from orchestra.api.policy.crd.fieldpath import valid_field_path
from orchestra.api.policy.crd.structural import MISSING, Structural

TYPES = ("array", "boolean", "integer", "number", "object", "string")
REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")
META_FIELDS = ("apiVersion", "kind", "metadata")
ROOT_ALLOWED_WITH_STATUS = frozenset({
    "description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "required",
    "items", "properties", "externalDocs", "example", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
})
_NEWLINE = re.compile(r"[\n\r]+")


# --- structurality (apiextensions-apiserver/pkg/apiserver/schema/validation.go) -------------------


def structural_errors(s: Structural, path: str) -> list[Cause]:
    """schema.ValidateStructural, sorted as kube sorts them (by their rendered text)."""
    errs = _invariants(s, "root", path) + _completeness(s, s, path, path)
    return sorted(errs, key=lambda c: f"{c.field}: {c.message}")


def _key(path: str, name: str) -> str:
    return f"{path}.properties[{name}]"


def _invariants(s: Structural, level: str, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if s.type == "array" and s.items is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if s.items is not None:
        errs += _invariants(s.items, "item", f"{path}.items")
    for k in sorted(s.properties):
        errs += _invariants(s.properties[k], "field", _key(path, k))
    if s.additional is not None or s.additional_allows is not None:
        if level == "root":
            errs.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if s.additional is not None:
            errs += _invariants(s.additional, "field", f"{path}.additionalProperties")
    if s.int_or_string and s.preserve_unknown:
        errs.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                            "must be false if x-kubernetes-int-or-string is true"))
    if s.int_or_string and s.embedded:
        errs.append(invalid(f"{path}.x-kubernetes-embedded-resource", True,
                            "must be false if x-kubernetes-int-or-string is true"))
    errs += _value_validation(s, _int_or_string_any_of(s), _int_or_string_all_of(s), path)
    errs += _typing(s, level, path)
    if s.embedded and (s.additional is not None or s.additional_allows is not None):
        errs.append(forbidden(f"{path}.additionalProperties",
                              "must not be used if x-kubernetes-embedded-resource is set"))
    check_meta = level == "root" or s.embedded
    for name in ("kind", "apiVersion"):
        sub = s.properties.get(name)
        if sub is not None and check_meta and sub.type != "string":
            errs.append(invalid(f"{_key(path, name)}.type", sub.type, "must be string"))
    metadata = s.properties.get("metadata")
    if metadata is not None:
        errs += _metadata(metadata, check_meta, level, _key(path, "metadata"))
    if s.embedded and not s.preserve_unknown and not s.properties:
        errs.append(
            required(
                f"{path}.properties",
                "must not be empty if x-kubernetes-embedded-resource is true "
                "without x-kubernetes-preserve-unknown-fields",
            )
        )
    return errs


def _typing(s: Structural, level: str, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if s.embedded and s.type != "object":
        if not s.type:
            errs.append(required(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(
                invalid(f"{path}.type", s.type, "must be object if x-kubernetes-embedded-resource is true")
            )
    elif not s.type and not s.int_or_string and not s.preserve_unknown:
        where = {
            "root": "at the root",
            "item": "for specified array items",
            "field": "for specified object fields",
        }
        errs.append(required(f"{path}.type", f"must not be empty {where[level]}"))
    if level == "root" and s.type and s.type != "object":
        errs.append(invalid(f"{path}.type", s.type, "must be object at the root"))
    return errs


def _metadata(m: Structural, check_meta: bool, level: str, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if check_meta and m.type != "object":
        errs.append(invalid(f"{path}.type", m.type, "must be object"))
    if level == "root":
        rest = {k: v for k, v in m.raw.items() if k not in ("type", "default", "properties")}
        props = set(m.properties)
        if rest or (props and not props <= {"name", "generateName"}):
            errs.append(forbidden(path, "must not specify anything other than name and generateName, but "
                                        "metadata is implicitly specified"))
    return errs


def _int_or_string_any_of(s: Structural) -> bool:
    return len(s.any_of) == 2 and [n.raw for n in s.any_of] == [{"type": "integer"}, {"type": "string"}]


def _int_or_string_all_of(s: Structural) -> bool:
    return bool(s.all_of) and _int_or_string_any_of(s.all_of[0])


def _value_validation(s: Structural, skip_any_of: bool, skip_first_all_of_any_of: bool,
                      path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not skip_any_of:
        for i, n in enumerate(s.any_of):
            errs += _nested(n, False, f"{path}.anyOf[{i}]", allow_rules=False)
    for i, n in enumerate(s.all_of):
        errs += _nested(n, skip_first_all_of_any_of and i == 0, f"{path}.allOf[{i}]", allow_rules=False)
    for i, n in enumerate(s.one_of):
        errs += _nested(n, False, f"{path}.oneOf[{i}]", allow_rules=False)
    if s.not_ is not None:
        errs += _nested(s.not_, False, f"{path}.not", allow_rules=False)
    if s.pattern:
        try:
            re.compile(s.pattern)
        except re.error as exc:
            errs.append(invalid(f"{path}.pattern", s.pattern,
                                f"must be a valid regular expression, but isn't: {exc}"))
    return errs


def _nested(v: Structural, skip_any_of: bool, path: str, *, allow_rules: bool) -> list[Cause]:
    errs = _value_validation(v, skip_any_of, False, path)
    if v.items is not None:
        errs += _nested(v.items, False, f"{path}.items", allow_rules=allow_rules)
    for k in sorted(v.properties):
        errs += _nested(v.properties[k], False, _key(path, k), allow_rules=allow_rules)
    checks = [
        (bool(v.type), "type", "must be empty to be structural"),
        (
            v.additional is not None or v.additional_allows is not None,
            "additionalProperties",
            "must be undefined to be structural",
        ),
        (v.default is not MISSING, "default", "must be undefined to be structural"),
        (bool(v.title), "title", "must be empty to be structural"),
        (bool(v.description), "description", "must be empty to be structural"),
        (v.nullable, "nullable", "must be false to be structural"),
        (v.preserve_unknown, "x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        (v.embedded, "x-kubernetes-embedded-resource", "must be false to be structural"),
        (v.int_or_string, "x-kubernetes-int-or-string", "must be false to be structural"),
        (bool(v.list_map_keys), "x-kubernetes-list-map-keys", "must be empty to be structural"),
        (v.list_type is not None, "x-kubernetes-list-type", "must be undefined to be structural"),
        (v.map_type is not None, "x-kubernetes-map-type", "must be undefined to be structural"),
        (
            bool(v.validations) and not allow_rules,
            "x-kubernetes-validations",
            "must be empty to be structural",
        ),
    ]
    errs += [forbidden(f"{path}.{name}", detail) for bad, name, detail in checks if bad]
    if "metadata" in v.properties:
        errs.append(forbidden(_key(path, "metadata"), "must not be specified in a nested context"))
    return errs


def _completeness(root: Structural, s: Structural | None, s_path: str, v_path: str) -> list[Cause]:
    """Every property or items a value validation names must exist structurally."""
    errs: list[Cause] = []
    assert s is not None
    for name, nodes in (("allOf", root.all_of), ("anyOf", root.any_of), ("oneOf", root.one_of)):
        for i, n in enumerate(nodes):
            errs += _nested_complete(n, s, s_path, f"{v_path}.{name}[{i}]")
    if root.not_ is not None:
        errs += _nested_complete(root.not_, s, s_path, f"{v_path}.not")
    for k in sorted(s.properties):
        sub = s.properties[k]
        if sub.has_value_validation:
            errs += _completeness(sub, sub, _key(s_path, k), _key(s_path, k))
    if s.items is not None and s.items.has_value_validation:
        errs += _completeness(s.items, s.items, f"{s_path}.items", f"{s_path}.items")
    return errs


def _nested_complete(v: Structural, s: Structural | None, s_path: str, v_path: str) -> list[Cause]:
    if s is None:
        return [required(s_path, f"because it is defined in {v_path}")]
    errs: list[Cause] = []
    for name, nodes in (("allOf", v.all_of), ("anyOf", v.any_of), ("oneOf", v.one_of)):
        for i, n in enumerate(nodes):
            errs += _nested_complete(n, s, s_path, f"{v_path}.{name}[{i}]")
    if v.not_ is not None:
        errs += _nested_complete(v.not_, s, s_path, f"{v_path}.not")
    if v.items is not None:
        errs += _nested_complete(v.items, s.items, f"{s_path}.items", f"{v_path}.items")
    for k in sorted(v.properties):
        if k not in s.properties:
            errs.append(required(_key(s_path, k), f"because it is defined in {_key(v_path, k)}"))
        else:
            errs += _nested_complete(v.properties[k], s.properties[k], _key(s_path, k), _key(v_path, k))
    return errs


# --- per node (ValidateCustomResourceDefinitionOpenAPISchema) ----------------------------------------


@attrs.frozen
class NodeContext:
    """specStandardValidatorV3's state while walking down: where defaults are allowed, inside meta."""

    allow_defaults: bool = True
    no_defaults_reason: str = ""
    inside_meta: bool = False


def node_errors(
    s: Structural, path: str, ctx: NodeContext = NodeContext(), *, root: bool = True
) -> list[Cause]:
    errs = _standard(s, path, ctx)
    if s.unique_items:
        errs.append(
            forbidden(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if s.additional_allows is not None:
        if s.properties and (s.additional_allows is False or s.additional is not None):
            errs.append(forbidden(f"{path}.additionalProperties",
                                  "additionalProperties and properties are mutual exclusive"))
        if s.additional is not None:
            sub = ctx
            if ctx.inside_meta:
                sub = attrs.evolve(
                    ctx,
                    allow_defaults=False,
                    no_defaults_reason="inside additionalProperties applying to object metadata",
                )
            errs += node_errors(s.additional, f"{path}.additionalProperties", sub, root=False)
    for k in sorted(s.properties):
        sub = ctx
        if (root or s.embedded) and k in META_FIELDS:
            sub = attrs.evolve(sub, inside_meta=True)
            if root:
                sub = attrs.evolve(sub, allow_defaults=False, no_defaults_reason=f"in top-level {k}")
        errs += node_errors(s.properties[k], _key(path, k), sub, root=False)
    for name, nodes in (("allOf", s.all_of), ("oneOf", s.one_of), ("anyOf", s.any_of)):
        for i, n in enumerate(nodes):
            errs += node_errors(n, f"{path}.{name}[{i}]", ctx, root=False)
    if s.not_ is not None:
        errs += node_errors(s.not_, f"{path}.not", ctx, root=False)
    if s.items is not None:
        errs += node_errors(s.items, f"{path}.items", ctx, root=False)
    errs += _extensions(s, path)
    errs += _rules_static(s, path)
    return errs


def _standard(s: Structural, path: str, ctx: NodeContext) -> list[Cause]:
    raw = s.raw
    errs: list[Cause] = []
    if s.type and s.type not in TYPES:
        errs.append(not_supported(f"{path}.type", s.type, TYPES))
    if s.default is not MISSING and not ctx.allow_defaults:
        detail = "must not be set" + (f" {ctx.no_defaults_reason}" if ctx.no_defaults_reason else "")
        errs.append(forbidden(f"{path}.default", detail))
    unsupported = [("id", "id is not supported"), ("additionalItems", "additionalItems is not supported"),
                   ("patternProperties", "patternProperties is not supported"),
                   ("definitions", "definitions is not supported"),
                   ("dependencies", "dependencies is not supported"), ("$ref", "$ref is not supported")]
    errs += [forbidden(f"{path}.{k}", msg) for k, msg in unsupported if raw.get(k) not in (None, "", {}, [])]
    if s.type == "null":
        errs.append(forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    if isinstance(raw.get("items"), list):
        errs.append(forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if ctx.inside_meta and s.embedded:
        errs.append(
            forbidden(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta")
        )
    return errs


def _extensions(s: Structural, path: str) -> list[Cause]:
    raw = s.raw
    errs: list[Cause] = []
    if raw.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append(
            invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined")
        )
    if s.map_type is not None:
        if s.type != "object":
            msg = "must be object if x-kubernetes-map-type is specified"
            errs.append(required(f"{path}.type", msg) if not s.type else invalid(f"{path}.type", s.type, msg))
        if s.map_type not in ("atomic", "granular"):
            errs.append(not_supported(f"{path}.x-kubernetes-map-type", s.map_type, ("atomic", "granular")))
    if s.list_type is not None and s.type != "array":
        msg = "must be array if x-kubernetes-list-type is specified"
        errs.append(required(f"{path}.type", msg) if not s.type else invalid(f"{path}.type", s.type, msg))
    elif s.list_type == "set" and s.items is not None:
        errs += _atomic_set_items(s.items, path)
    if s.list_type is not None and s.list_type not in ("atomic", "set", "map"):
        errs.append(not_supported(f"{path}.x-kubernetes-list-type", s.list_type, ("atomic", "set", "map")))
    if s.list_map_keys and s.list_type != "map":
        msg = "must be map if x-kubernetes-list-map-keys is non-empty"
        errs.append(required(f"{path}.x-kubernetes-list-type", msg) if s.list_type is None
                    else invalid(f"{path}.x-kubernetes-list-type", s.list_type, msg))
    if s.list_type == "map":
        errs += _list_map(s, path)
    if s.list_type in ("set", "map") and s.items is not None:
        errs += _map_set_keys(s, path)
    return errs


def _atomic_set_items(items: Structural, path: str) -> list[Cause]:
    msg = "must be atomic as item of a list with x-kubernetes-list-type=set"
    if items.type == "array" and items.list_type not in (None, "atomic"):
        return [invalid(f"{path}.items.x-kubernetes-list-type", items.list_type, msg)]
    if items.type == "object" and items.map_type != "atomic":
        return [invalid(f"{path}.items.x-kubernetes-map-type", items.list_type, msg)]
    return []


def _list_map(s: Structural, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not s.list_map_keys:
        errs.append(
            required(
                f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"
            )
        )
    if s.items is None:
        errs.append(required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
        return errs
    if s.items.type != "object":
        errs.append(invalid(f"{path}.items.type", s.items.type,
                            "must be object if parent array's x-kubernetes-list-type is map"))
        return errs
    seen: set[str] = set()
    for k in s.list_map_keys:
        prop = s.items.properties.get(k)
        if prop is None:
            errs.append(invalid(f"{path}.x-kubernetes-list-map-keys", list(s.list_map_keys),
                                "entries must all be names of item properties"))
        elif prop.type in ("array", "object"):
            errs.append(invalid(f"{_key(path + '.items', k)}.type", s.items.type,
                                "must be a scalar type if parent array's x-kubernetes-list-type is map"))
        if k in seen:
            errs.append(invalid(f"{path}.x-kubernetes-list-map-keys", list(s.list_map_keys),
                                "must not contain duplicate entries"))
        seen.add(k)
    return errs


def _map_set_keys(s: Structural, path: str) -> list[Cause]:
    assert s.items is not None
    errs: list[Cause] = []
    if s.items.nullable:
        errs.append(
            forbidden(
                f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {s.list_type}"
            )
        )
    if s.list_type != "map":
        return errs
    for k in s.list_map_keys:
        prop = s.items.properties.get(k)
        if prop is None:
            continue
        if k not in s.items.required and prop.default is MISSING:
            errs.append(
                required(
                    f"{_key(path + '.items', k)}.default",
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be "
                    "a required property",
                )
            )
        if prop.nullable:
            errs.append(forbidden(f"{_key(path + '.items', k)}.nullable",
                                  "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
    return errs


def _rules_static(s: Structural, path: str) -> list[Cause]:
    """The checks of x-kubernetes-validations that need no CEL (the compile is cel.py's)."""
    errs: list[Cause] = []
    for i, rule in enumerate(s.validations):
        at = f"{path}.x-kubernetes-validations[{i}]"
        text, msg = str(rule.get("rule") or ""), str(rule.get("message") or "")
        if not text.strip():
            errs.append(required(f"{at}.rule", "rule is not specified"))
        elif msg and not msg.strip():
            errs.append(invalid(f"{at}.message", msg, "message must be non-empty if specified"))
        elif _NEWLINE.search(msg.strip()):
            errs.append(invalid(f"{at}.message", msg, "message must not contain line breaks"))
        elif _NEWLINE.search(text.strip()) and not msg.strip():
            errs.append(required(f"{at}.message", "message must be specified if rule contains line breaks"))
        expr = rule.get("messageExpression")
        if isinstance(expr, str) and expr and not expr.strip():
            errs.append(
                required(f"{at}.messageExpression", "messageExpression must be non-empty if specified")
            )
        reason = rule.get("reason")
        if reason is not None and reason not in REASONS:
            errs.append(not_supported(f"{at}.reason", reason, REASONS))
        fp = rule.get("fieldPath")
        if isinstance(fp, str) and fp:
            if not fp.strip():
                errs.append(invalid(f"{at}.fieldPath", fp, "fieldPath must be non-empty if specified"))
            if _NEWLINE.search(fp):
                errs.append(invalid(f"{at}.fieldPath", fp, "fieldPath must not contain line breaks"))
            if valid_field_path(fp, s) is None:
                errs.append(invalid(f"{at}.fieldPath", fp, "fieldPath must be a valid path"))
    return errs
