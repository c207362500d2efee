"""A CustomResourceDefinition validated like kube-apiserver 1.32 (apiextensions validation package).

Owns: `validate_crd(obj, old) -> list[Cause]` — metadata.name `<plural>.<group>`, group, scope,
versions (names, exactly one storage version, deprecationWarning), names (plural, singular, kind,
listKind, shortNames, categories), conversion, subresources (scale paths), printer columns,
selectableFields, the openAPIV3Schema (schema.py: structural rules, defaults, CEL compile),
status.acceptedNames and status.storedVersions, the API-approval annotation of *.k8s.io groups, and
on update what may not change (group, plural; scope and kind once Established).
As kube's v1 -> internal conversion does, a schema (subresources, columns, selectableFields) that
every version has alike is checked as the top-level `spec.validation` (`spec.subresources`...), so
error paths read as kube's do.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    IMMUTABLE,
    GoRepr,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)
from orchestra.api.machinery.names import is_dns1035_label, is_dns1123_subdomain
from orchestra.api.policy.crd.fieldpath import FieldPathError, resolve_field_path
from orchestra.api.policy.crd.schema import schema_errors
from orchestra.api.policy.crd.schemarules import ROOT_ALLOWED_WITH_STATUS
from orchestra.api.policy.crd.structural import Structural
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, as_dict, as_dicts, as_list

APPROVAL = "api-approved.kubernetes.io"
COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
PER_VERSION = (
    ("schema", "validation"),
    ("subresources", "subresources"),
    ("additionalPrinterColumns", "additionalPrinterColumns"),
    ("selectableFields", "selectableFields"),
)
MAX_SELECTABLE = 8


def is_established(crd: Obj) -> bool:
    return condition_true(crd, "Established")


def condition_true(crd: Obj, kind: str) -> bool:
    conds = as_dicts(as_dict(crd.get("status")).get("conditions"))
    return any(c.get("type") == kind and c.get("status") == "True" for c in conds)


def validate_crd(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    names = as_dict(spec.get("names"))
    group = str(spec.get("group") or "")
    want = f"{names.get('plural') or ''}.{group}"

    def name_fn(name: str) -> list[str]:
        msgs = is_dns1123_subdomain(name)
        return [*msgs, 'must be spec.names.plural+"."+spec.group'] if name != want else msgs

    errs = validate_object_meta(obj.get("metadata"), name_fn)
    old_spec = as_dict((old or {}).get("spec")) if old is not None else None
    errs += _spec(spec, old_spec)
    status = as_dict(obj.get("status"))
    errs += names_errors(as_dict(status.get("acceptedNames")), "status.acceptedNames")
    errs += stored_version_errors(status.get("storedVersions"), as_dicts(spec.get("versions")))
    errs += _approval(obj, old)
    if (
        spec.get("preserveUnknownFields") is True
        and as_dict(old_spec or {}).get("preserveUnknownFields") is not True
    ):
        errs.append(
            invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set "
                "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
            )
        )
    if old is not None and old_spec is not None:
        errs += _immutable(spec, old_spec, is_established(old))
    return errs


def _immutable(spec: Obj, old: Obj, established: bool) -> list[Cause]:
    pairs = [
        ("spec.group", spec.get("group"), old.get("group")),
        (
            "spec.names.plural",
            as_dict(spec.get("names")).get("plural"),
            as_dict(old.get("names")).get("plural"),
        ),
    ]
    if established:
        pairs += [
            ("spec.scope", spec.get("scope"), old.get("scope")),
            (
                "spec.names.kind",
                as_dict(spec.get("names")).get("kind"),
                as_dict(old.get("names")).get("kind"),
            ),
        ]
    return [invalid(path, new, IMMUTABLE) for path, new, was in pairs if new != was]


def internal_view(spec: Obj) -> dict[str, Any]:
    """kube's v1 -> internal conversion: per-version parts that all versions share move up."""
    versions = as_dicts(spec.get("versions"))
    out: dict[str, Any] = {"versions": [dict(v) for v in versions]}
    for per_version, top in PER_VERSION:
        first = versions[0].get(per_version) if versions else None
        if versions and all(v.get(per_version) == first for v in versions):
            out[top] = first
            for v in out["versions"]:
                v.pop(per_version, None)
    return out


def _spec(spec: Obj, old_spec: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    group = spec.get("group")
    if not group:
        errs.append(required("spec.group"))
    elif msgs := is_dns1123_subdomain(str(group)):
        errs.append(invalid("spec.group", group, ",".join(msgs)))
    elif len(str(group).split(".")) < 2:
        errs.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope")
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    view = internal_view(spec)
    errs += _versions(spec, view, old_spec)
    names = as_dict(spec.get("names"))
    for name in ("plural", "singular", "kind", "listKind"):
        if not names.get(name):
            errs.append(required(f"spec.names.{name}"))
    errs += names_errors(names, "spec.names")
    subresources = [view.get("subresources"), *(v.get("subresources") for v in view["versions"])]
    status_any = any(as_dict(sub).get("status") is not None for sub in subresources)
    errs += _validation(view.get("validation"), "spec.validation", status_any)
    errs += subresource_errors(view.get("subresources"), "spec.subresources")
    errs += _columns(view.get("additionalPrinterColumns"), "spec.additionalPrinterColumns")
    errs += _selectable(view.get("selectableFields"), view.get("validation"), "spec.selectableFields")
    errs += _conversion(spec.get("conversion"))
    return errs


def _versions(spec: Obj, view: dict[str, Any], old_spec: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    versions = view["versions"]
    need_schema = old_spec is None or _all_have_schemas(old_spec)
    if need_schema and not view.get("validation"):
        for i, v in enumerate(versions):
            if not as_dict(v.get("schema")).get("openAPIV3Schema"):
                errs.append(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    storage, seen, unique = 0, set(), True
    for i, v in enumerate(versions):
        at = f"spec.versions[{i}]"
        storage += 1 if v.get("storage") is True else 0
        unique = unique and v.get("name") not in seen
        seen.add(v.get("name"))
        if msgs := is_dns1035_label(str(v.get("name") or "")):
            errs.append(invalid(f"{at}.name", v.get("name") or "", ",".join(msgs)))
        errs += [invalid(f"{at}.deprecationWarning", v.get("deprecationWarning"), m)
                 for m in _deprecation_errors(v)]
        status = as_dict(view.get("subresources") or v.get("subresources")).get("status") is not None
        errs += _validation(v.get("schema"), f"{at}.schema", status)
        errs += subresource_errors(v.get("subresources"), f"{at}.subresources")
        errs += _columns(v.get("additionalPrinterColumns"), f"{at}.additionalPrinterColumns")
        errs += _selectable(v.get("selectableFields"), v.get("schema"), f"{at}.selectableFields")
    if not unique:
        errs.append(invalid("spec.versions", _go_versions(versions), "must contain unique version names"))
    if storage != 1:
        errs.append(invalid("spec.versions", _go_versions(versions),
                            "must have exactly one version marked as storage version"))
    return errs


def _all_have_schemas(spec: Obj) -> bool:
    return all(as_dict(v.get("schema")).get("openAPIV3Schema") for v in as_dicts(spec.get("versions")))


def _go_versions(versions: list[Obj]) -> GoRepr:
    items = ", ".join(
        f"apiextensions.CustomResourceDefinitionVersion{{Name:\"{v.get('name') or ''}\", "
        f"Served:{str(v.get('served') is True).lower()}, Storage:{str(v.get('storage') is True).lower()}, "
        f"Deprecated:{str(v.get('deprecated') is True).lower()}}}" for v in versions)
    return GoRepr(f"[]apiextensions.CustomResourceDefinitionVersion{{{items}}}")


def _deprecation_errors(v: Obj) -> list[str]:
    warning = v.get("deprecationWarning")
    if warning is None:
        return []
    if v.get("deprecated") is not True:
        return ["can only be set for deprecated versions"]
    text = str(warning)
    errs = []
    if len(text.encode()) > 256:
        errs.append("must be <= 256 characters long")
    if not text:
        errs.append("must not be an empty string")
    for i, ch in enumerate(text):
        if unicodedata.category(ch).startswith("C"):
            errs.append(
                "must only contain printable UTF-8 characters; "
                f"{'control' if unicodedata.category(ch) == 'Cc' else 'non-printable'} character found "
                f"at index {i}"
            )
            break
    return errs


def _validation(validation: Any, path: str, status_enabled: bool) -> list[Cause]:
    raw = as_dict(validation).get("openAPIV3Schema")
    if not isinstance(raw, dict):
        return []
    at = f"{path}.openAPIV3Schema"
    errs: list[Cause] = []
    if status_enabled:
        if raw.get("type") not in (None, "", "object"):
            errs.append(
                invalid(
                    f"{at}.type",
                    raw.get("type"),
                    'only "object" is allowed as the type at the root of '
                    "the schema if the status subresource is enabled",
                )
            )
        elif any(k not in ROOT_ALLOWED_WITH_STATUS and raw[k] not in (None, False, "", [], {}) for k in raw):
            errs.append(invalid(at, GoRepr("apiextensions.JSONSchemaProps{...}"),
                                "only [Description Type Format Title Maximum ExclusiveMaximum Minimum "
                                "ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems "
                                "MultipleOf Required Items Properties ExternalDocs Example "
                                "XPreserveUnknownFields XValidations] fields are allowed at the root of the "
                                "schema if the status subresource is enabled"))
    if raw.get("nullable") is True:
        errs.append(forbidden(f"{at}.nullable", "nullable cannot be true at the root"))
    return errs + schema_errors(Structural(raw), at)


def subresource_errors(subresources: Any, path: str) -> list[Cause]:
    scale = as_dict(subresources).get("scale")
    if scale is None:
        return []
    scale = as_dict(scale)
    errs: list[Cause] = []
    for key, prefix, where in (
        ("specReplicasPath", ".spec.", ".spec"),
        ("statusReplicasPath", ".status.", ".status"),
    ):
        value = str(scale.get(key) or "")
        at = f"{path}.scale.{key}"
        if not value:
            errs.append(required(at))
        elif bad := _simple_json_path(value, at):
            errs += bad
        elif not value.startswith(prefix):
            errs.append(invalid(at, value, f"should be a json path under {where}"))
    selector = scale.get("labelSelectorPath")
    if selector:
        at = f"{path}.scale.labelSelectorPath"
        if bad := _simple_json_path(str(selector), at):
            errs += bad
        elif not str(selector).startswith((".spec.", ".status.")):
            errs.append(invalid(at, selector, "should be a json path under either .spec or .status"))
    return errs


def _simple_json_path(value: str, path: str) -> list[Cause]:
    if not value:
        return [invalid(path, value, "must not be empty")]
    if value[0] != ".":
        return [invalid(path, value, "must be a simple json path starting with .")]
    return []


def _columns(columns: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, col in enumerate(as_dicts(columns)):
        at = f"{path}[{i}]"
        if not col.get("name"):
            errs.append(required(f"{at}.name"))
        kind = col.get("type")
        if not kind:
            errs.append(required(f"{at}.type", f"must be one of {','.join(COLUMN_TYPES)}"))
        elif kind not in COLUMN_TYPES:
            errs.append(invalid(f"{at}.type", kind, f"must be one of {','.join(COLUMN_TYPES)}"))
        fmt = col.get("format")
        if fmt and fmt not in COLUMN_FORMATS:
            errs.append(invalid(f"{at}.format", fmt, f"must be one of {','.join(COLUMN_FORMATS)}"))
        json_path = str(col.get("jsonPath") or "")
        if not json_path:
            errs.append(required(f"{at}.JSONPath"))
        else:
            errs += _simple_json_path(json_path, f"{at}.JSONPath")
    return errs


def _selectable(fields: Any, validation: Any, path: str) -> list[Cause]:
    items = as_dicts(fields)
    if not items:
        return []
    raw = as_dict(validation).get("openAPIV3Schema")
    if not isinstance(raw, dict):
        return [
            invalid(
                path,
                "",
                "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
            )
        ]
    schema = Structural(raw)
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        at = f"{path}[{i}].jsonPath"
        text = str(item.get("jsonPath") or "")
        if not text:
            errs.append(required(at))
            continue
        try:
            rendered, node = resolve_field_path(text, schema, allow_array=False)
        except FieldPathError as exc:
            errs.append(invalid(at, text, f"is an invalid path: {exc}"))
            continue
        if rendered.split(".")[0].split("[")[0] == "metadata":
            errs.append(invalid(at, text, "must not point to fields in metadata"))
        if node.type not in ("string", "boolean", "integer"):
            errs.append(
                invalid(
                    at,
                    text,
                    "must point to a field of type string, boolean or integer. Enum string "
                    "fields and strings with formats are allowed.",
                )
            )
        if rendered in seen:
            errs.append(duplicate(at, text))
        seen.add(rendered)
    if len(seen) > MAX_SELECTABLE:
        errs.append(
            Cause(
                "FieldValueTooMany", f"Too many: {len(seen)}: must have at most {MAX_SELECTABLE} items", path
            )
        )
    return errs


def _conversion(conversion: Any) -> list[Cause]:
    if conversion is None:
        return []
    conv = as_dict(conversion)
    strategy = conv.get("strategy")
    errs: list[Cause] = []
    if not strategy:
        errs.append(required("spec.conversion.strategy"))
    elif strategy not in ("None", "Webhook"):
        errs.append(not_supported("spec.conversion.strategy", strategy, ("None", "Webhook")))
    if strategy == "Webhook":
        webhook = as_dict(conv.get("webhook"))
        if not webhook.get("clientConfig"):
            errs.append(
                required("spec.conversion.webhookClientConfig", "required when strategy is set to Webhook")
            )
        if not as_list(webhook.get("conversionReviewVersions")):
            errs.append(required("spec.conversion.conversionReviewVersions"))
    elif conv.get("webhook"):
        errs.append(
            forbidden(
                "spec.conversion.webhookClientConfig", "should not be set when strategy is not set to Webhook"
            )
        )
    return errs


def names_errors(names: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("plural", "singular"):
        value = str(names.get(key) or "")
        if value and (msgs := is_dns1035_label(value)):
            errs.append(invalid(f"{path}.{key}", value, ",".join(msgs)))
    for key in ("kind", "listKind"):
        value = str(names.get(key) or "")
        if value and (msgs := is_dns1035_label(value.lower())):
            errs.append(invalid(f"{path}.{key}", value, "may have mixed case, but should otherwise match: "
                                + ",".join(msgs)))
    for i, short in enumerate(as_list(names.get("shortNames"))):
        if msgs := is_dns1035_label(str(short)):
            errs.append(invalid(f"{path}.shortNames[{i}]", short, ",".join(msgs)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(
            invalid(f"{path}.listKind", names.get("listKind"), "kind and listKind may not be the same")
        )
    for i, cat in enumerate(as_list(names.get("categories"))):
        if msgs := is_dns1035_label(str(cat)):
            errs.append(invalid(f"{path}.categories[{i}]", cat, ",".join(msgs)))
    return errs


def stored_version_errors(stored: Any, versions: list[Obj]) -> list[Cause]:
    path = "status.storedVersions"
    listed = [str(v) for v in as_list(stored)]
    if not listed:
        return [invalid(path, GoRepr("[]string(nil)"), "must have at least one stored version")]
    errs: list[Cause] = []
    names = [v.get("name") for v in versions]
    for v in versions:
        if v.get("storage") is True and v.get("name") not in listed:
            errs.append(invalid(path, listed, f"must have the storage version {v.get('name')}"))
    errs += [invalid(f"{path}[{i}]", name, "must appear in spec.versions")
             for i, name in enumerate(listed) if name not in names]
    return errs


def _approval(obj: Obj, old: Obj | None) -> list[Cause]:
    group = str(as_dict(obj.get("spec")).get("group") or "")
    if not (group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))):
        return []
    state, reason = _approval_state(obj)
    if old is not None and _approval_state(old)[0] == state:
        return []
    at = f"metadata.annotations[{APPROVAL}]"
    value = as_dict(as_dict(obj.get("metadata")).get("annotations")).get(APPROVAL, "")
    if state == "missing":
        return [required(at, reason)]
    if state == "invalid":
        return [invalid(at, value, reason)]
    return []


def _approval_state(obj: Obj) -> tuple[str, str]:
    text = str(as_dict(as_dict(obj.get("metadata")).get("annotations")).get(APPROVAL) or "")
    if not text:
        return "missing", (f'protected groups must have approval annotation "{APPROVAL}", see '
                           "https://github.com/kubernetes/enhancements/pull/1111")
    if text.startswith("unapproved"):
        return "bypassed", ""
    parts = urlsplit(text)
    if parts.scheme and parts.netloc:
        return "approved", ""
    return "invalid", (f'protected groups must have approval annotation "{APPROVAL}" with either a URL or a '
                       'reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111')
