"""Validation of ResourceQuota and LimitRange (core/v1), as pkg/apis/core/validation words it.

Owns: ValidateResourceQuota / ValidateResourceQuotaUpdate (resource names fit for quota,
non-negative and, for countable resources, whole quantities; scopes and scope selectors valid for
the hard resources, not conflicting; spec.scopes immutable) and ValidateLimitRange (type names,
one item per type, resource names, no defaults for Pod items, a claim item with min or max storage,
min <= defaultRequest <= default <= max, maxLimitRequestRatio >= 1 and <= max/min, default ==
defaultRequest for resources that cannot be overcommitted). Go prints a Quantity or a slice given as
a field's bad value with %#v, so does this module (`go_quantity`).
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import re
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import GoRepr, duplicate, forbidden, go_quote, invalid, required
from orchestra.api.machinery.names import is_dns1123_subdomain, is_qualified_name
from orchestra.api.policy.quota.evaluators import is_extended, is_native
from orchestra.api.policy.quota.scopes import (
    BEST_EFFORT,
    CROSS_NAMESPACE_AFFINITY,
    NOT_BEST_EFFORT,
    NOT_TERMINATING,
    PRIORITY_CLASS,
    STANDARD_SCOPES,
    TERMINATING,
)
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, as_dict, only_dicts
from orchestra.objects.quantity import INT64_MAX, Quantity, parse_or_none

_QUOTA_RESOURCES = frozenset(
    {
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "persistentvolumeclaims",
        "configmaps",
        "services.nodeports",
        "services.loadbalancers",
    }
)
_STANDARD_RESOURCES = _QUOTA_RESOURCES | {"storage"}
_INTEGER_RESOURCES = frozenset(
    {
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
_POD_COUNT = frozenset({"pods"})
_POD_COMPUTE = frozenset({"cpu", "limits.cpu", "limits.memory", "memory", "requests.cpu", "requests.memory"})
_CONFLICTING = ({BEST_EFFORT, NOT_BEST_EFFORT}, {TERMINATING, NOT_TERMINATING})
_EXISTS_ONLY = (BEST_EFFORT, NOT_BEST_EFFORT, TERMINATING, NOT_TERMINATING, CROSS_NAMESPACE_AFFINITY)
_EXISTS_MSG = (
    "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
    "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
    "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"
)
_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
MAX_MILLI_VALUE = INT64_MAX // 1000
_DECIMAL_RE = re.compile(r"^([+-]?)([0-9]*)\.?([0-9]*)(.*)$")
_SUFFIX_EXP = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_EXP = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


def go_quantity(raw: Any) -> GoRepr:
    """%#v of a resource.Quantity as ParseQuantity built it (its cached string being the canonical
    one, as String() leaves it)."""
    q = Quantity.parse(raw)
    m = _DECIMAL_RE.match(str(raw).strip())
    sign, whole, frac, suffix = m.groups() if m else ("", "0", "", "")
    digits = int((whole + frac) or "0") * (-1 if sign == "-" else 1)
    if suffix in _BINARY_EXP and not frac:
        value, scale = digits << _BINARY_EXP[suffix], 0
    elif suffix in _SUFFIX_EXP:
        value, scale = digits, _SUFFIX_EXP[suffix] - len(frac)
    else:  # exponent forms: kube keeps them as an inf.Dec; show the value in the int form
        value, scale = q.milli_value(), -3
    head = f"resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, "
    return GoRepr(head + f"d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{go_quote(str(q))}, "
                  f"Format:{go_quote(q.format)}}}")


def _go_strings(type_name: str, values: list[Any]) -> GoRepr:
    if not values:
        return GoRepr(f"[]{type_name}(nil)")
    return GoRepr(f"[]{type_name}{{" + ", ".join(go_quote(str(v)) for v in values) + "}")


def _go_scope_selector(selector: Obj) -> GoRepr:
    reqs = []
    for e in only_dicts(selector.get("matchExpressions")):
        reqs.append(
            f"core.ScopedResourceSelectorRequirement{{ScopeName:{go_quote(str(e.get('scopeName', '')))}, "
            f"Operator:{go_quote(str(e.get('operator', '')))}, "
            f"Values:{_go_strings('string', list(e.get('values') or [])).text}}}"
        )
    inner = (
        "[]core.ScopedResourceSelectorRequirement{" + ", ".join(reqs) + "}"
        if reqs
        else "[]core.ScopedResourceSelectorRequirement(nil)"
    )
    return GoRepr(f"core.ScopeSelector{{MatchExpressions:{inner}}}")


# --- resource names -------------------------------------------------------------------------------------


def _resource_name(name: str, path: str) -> list[Cause]:
    """validateResourceName: a qualified name; unprefixed ones must be standard."""
    errs = [invalid(path, name, msg) for msg in is_qualified_name(name)]
    if not errs and "/" not in name and name not in _STANDARD_RESOURCES and not _is_hugepages(name):
        errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
    return errs


def _is_hugepages(name: str) -> bool:
    return name.startswith(("hugepages-", "requests.hugepages-"))


def _quota_resource_name(name: str, path: str) -> list[Cause]:
    errs = _resource_name(name, path)
    if "/" not in name and name not in _QUOTA_RESOURCES and not _is_hugepages(name):
        errs.append(invalid(path, name, "must be a standard resource for quota"))
    return errs


def _container_resource_name(name: str, path: str) -> list[Cause]:
    errs = _resource_name(name, path)
    if "/" not in name:
        if name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not is_native(name) and not is_extended(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def _quantity_value(name: str, raw: Any, path: str) -> list[Cause]:
    """ValidateResourceQuantityValue: not negative; whole for the countable resources."""
    q = parse_or_none(raw)
    if q is None:
        return []  # the schema check refused it
    errs = []
    if q.value < 0:
        errs.append(invalid(path, str(q), "must be greater than or equal to 0"))
    if (name in _INTEGER_RESOURCES or is_extended(name)) and q.milli_value() % 1000:
        errs.append(invalid(path, go_quantity(raw), "must be an integer"))
    return errs


def _resource_list(raw: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for name, value in sorted(as_dict(raw).items()):
        errs += _quota_resource_name(name, f"{path}[{name}]") + _quantity_value(
            name, value, f"{path}[{name}]"
        )
    return errs


# --- ResourceQuota ----------------------------------------------------------------------------------------


def _scope_valid_for(scope: str, resource: str) -> bool:
    if scope in (TERMINATING, NOT_TERMINATING, NOT_BEST_EFFORT, PRIORITY_CLASS, CROSS_NAMESPACE_AFFINITY):
        return resource in _POD_COUNT or resource in _POD_COMPUTE
    if scope == BEST_EFFORT:
        return resource in _POD_COUNT
    return True


def _standard_hard(spec: Obj) -> list[str]:
    return sorted(k for k in as_dict(spec.get("hard")) if k in _QUOTA_RESOURCES or _is_hugepages(k))


def _scopes(spec: Obj) -> list[Cause]:
    scopes = [str(s) for s in spec.get("scopes") or []]
    if not scopes:
        return []
    shown = _go_strings("core.ResourceQuotaScope", scopes)
    errs = []
    for scope in scopes:
        if scope not in STANDARD_SCOPES:
            errs.append(invalid("spec.scopes", shown, "unsupported scope"))
        errs += [
            invalid("spec.scopes", shown, "unsupported scope applied to resource")
            for k in _standard_hard(spec)
            if not _scope_valid_for(scope, k)
        ]
    errs += [
        invalid("spec.scopes", shown, "conflicting scopes") for pair in _CONFLICTING if pair <= set(scopes)
    ]
    return errs


def _scope_selector(spec: Obj) -> list[Cause]:
    if spec.get("scopeSelector") is None:
        return []
    selector = as_dict(spec.get("scopeSelector"))
    path = "spec.scopeSelector.matchExpressions"
    errs: list[Cause] = []
    names: set[str] = set()
    for req in only_dicts(selector.get("matchExpressions")):
        name, op, values = (
            str(req.get("scopeName") or ""),
            str(req.get("operator") or ""),
            req.get("values") or [],
        )
        if name not in STANDARD_SCOPES:
            errs.append(invalid(f"{path}.scopeName", name, "unsupported scope"))
        errs += [
            invalid(path, _go_scope_selector(selector), "unsupported scope applied to resource")
            for k in _standard_hard(spec)
            if not _scope_valid_for(name, k)
        ]
        if name in _EXISTS_ONLY and op != "Exists":
            errs.append(invalid(f"{path}.operator", op, _EXISTS_MSG))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(
                        f"{path}.values",
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    )
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    invalid(
                        f"{path}.values",
                        _go_strings("string", list(values)),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    )
                )
        else:
            errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
        names.add(name)
    shown = _go_strings("core.ResourceQuotaScope", list(spec.get("scopes") or []))
    errs += [invalid(path, shown, "conflicting scopes") for pair in _CONFLICTING if pair <= names]
    return errs


def validate_resource_quota(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateResourceQuota (create) / ValidateResourceQuotaUpdate (update, status included)."""
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _resource_list(spec.get("hard"), "spec.hard") + _scopes(spec) + _scope_selector(spec)
    errs += _resource_list(status.get("hard"), "status.hard") + _resource_list(
        status.get("used"), "status.used"
    )
    if old is not None:
        old_scopes = {str(s) for s in as_dict(old.get("spec")).get("scopes") or []}
        if old_scopes != {str(s) for s in spec.get("scopes") or []}:
            errs.append(
                invalid(
                    "spec.scopes",
                    _go_strings("core.ResourceQuotaScope", list(spec.get("scopes") or [])),
                    "field is immutable",
                )
            )
    return errs


# --- LimitRange -------------------------------------------------------------------------------------------


def _limit_type(value: str, path: str) -> list[Cause]:
    errs = [invalid(path, value, msg) for msg in is_qualified_name(value)]
    if not errs and "/" not in value and value not in _LIMIT_TYPES:
        errs.append(invalid(path, value, "must be a standard limit type or fully qualified"))
    return errs


def _limit_resource_name(kind: str, name: str, path: str) -> list[Cause]:
    return (
        _container_resource_name(name, path) if kind in ("Pod", "Container") else _resource_name(name, path)
    )


def _overcommit_allowed(name: str) -> bool:
    return is_native(name) and not name.startswith("hugepages-")


# (a, b, path field, shown field, message): a value of `a` above `b` is refused, as kube words it
_ORDER = (
    ("min", "max", "min", "min", "min value {a} is greater than max value {b}"),
    (
        "min",
        "defaultRequest",
        "defaultRequest",
        "defaultRequest",
        "min value {a} is greater than default request value {b}",
    ),
    (
        "defaultRequest",
        "max",
        "defaultRequest",
        "defaultRequest",
        "default request value {a} is greater than max value {b}",
    ),
    (
        "defaultRequest",
        "default",
        "defaultRequest",
        "defaultRequest",
        "default request value {a} is greater than default limit value {b}",
    ),
    ("min", "default", "default", "min", "min value {a} is greater than default value {b}"),
    ("default", "max", "default", "max", "default value {a} is greater than max value {b}"),
)


def _consistency(item: Obj, key: str, path: str) -> list[Cause]:
    """The min <= defaultRequest <= default <= max and ratio rules for one resource of one item."""
    fields: tuple[str, ...] = ("min", "max", "maxLimitRequestRatio")
    if item.get("type") != "Pod":  # Pod items have no defaults (reported by the caller)
        fields += ("default", "defaultRequest")
    raw = {f: as_dict(item.get(f))[key] for f in fields if key in as_dict(item.get(f))}
    got = {f: q for f, v in raw.items() if (q := parse_or_none(v)) is not None}
    errs = []
    for a, b, at, shown, message in _ORDER:
        if a in got and b in got and got[a].value > got[b].value:
            errs.append(
                invalid(f"{path}.{at}[{key}]", go_quantity(raw[shown]), message.format(a=got[a], b=got[b]))
            )
    ratio = got.get("maxLimitRequestRatio")
    ratio_path = f"{path}.maxLimitRequestRatio[{key}]"
    if ratio is not None and ratio.value < 1:
        errs.append(
            invalid(ratio_path, go_quantity(raw["maxLimitRequestRatio"]), f"ratio {ratio} is less than 1")
        )
    if ratio is not None and "min" in got and "max" in got:
        errs += _ratio_within(
            ratio, got["min"], got["max"], go_quantity(raw["maxLimitRequestRatio"]), ratio_path
        )
    if (
        not _overcommit_allowed(key)
        and "default" in got
        and "defaultRequest" in got
        and got["default"].value != got["defaultRequest"].value
    ):
        errs.append(
            invalid(
                f"{path}.defaultRequest[{key}]",
                go_quantity(raw["defaultRequest"]),
                f"default value {got['default']} must equal to defaultRequest value "
                f"{got['defaultRequest']} in {key}",
            )
        )
    return errs


def _ratio_within(ratio: Quantity, lo: Quantity, hi: Quantity, shown: GoRepr, path: str) -> list[Cause]:
    ratio_value, lo_value, hi_value = float(ratio.int_value()), lo.int_value(), hi.int_value()
    if ratio.int_value() < MAX_MILLI_VALUE and lo_value < MAX_MILLI_VALUE and hi_value < MAX_MILLI_VALUE:
        ratio_value, lo_value, hi_value = ratio.milli_value() / 1000, lo.milli_value(), hi.milli_value()
    if lo_value == 0:
        return []  # Go's float division gives +Inf, which no ratio exceeds
    most = hi_value / lo_value
    if ratio_value > most:
        return [invalid(path, shown, f"ratio {ratio} is greater than max/min = {most:f}")]
    return []


def _limit_item(item: Obj, path: str) -> list[Cause]:
    kind = str(item.get("type") or "")
    errs: list[Cause] = []
    fields = ("max", "min") if kind == "Pod" else ("max", "min", "default", "defaultRequest")
    for field in fields:
        errs += [
            c
            for name in sorted(as_dict(item.get(field)))
            for c in _limit_resource_name(kind, name, f"{path}.{field}[{name}]")
        ]
    if kind == "Pod":
        if as_dict(item.get("default")):
            errs.append(forbidden(f"{path}.default", "may not be specified when `type` is 'Pod'"))
        if as_dict(item.get("defaultRequest")):
            errs.append(forbidden(f"{path}.defaultRequest", "may not be specified when `type` is 'Pod'"))
    if (
        kind == "PersistentVolumeClaim"
        and "storage" not in as_dict(item.get("min"))
        and "storage" not in as_dict(item.get("max"))
    ):
        errs.append(
            required(
                f"{path}.limits",
                "either minimum or maximum storage value is required, but neither was provided",
            )
        )
    errs += [
        c
        for name in sorted(as_dict(item.get("maxLimitRequestRatio")))
        for c in _limit_resource_name(kind, name, f"{path}.maxLimitRequestRatio[{name}]")
    ]
    keys = sorted({k for f in (*fields, "maxLimitRequestRatio") for k in as_dict(item.get(f))})
    for key in keys:
        errs += _consistency(item, key, path)
    return errs


def validate_limit_range(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateLimitRange (the same on update)."""
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    seen: set[str] = set()
    for i, item in enumerate(only_dicts(as_dict(obj.get("spec")).get("limits"))):
        path = f"spec.limits[{i}]"
        kind = str(item.get("type") or "")
        errs += _limit_type(kind, f"{path}.type")
        if kind in seen:
            errs.append(duplicate(f"{path}.type", kind))
        seen.add(kind)
        errs += _limit_item(item, path)
    return errs
