"""policy/v1 PodDisruptionBudget: kube's ValidatePodDisruptionBudget (the spec's int-or-percent
fields, their mutual exclusion, the selector, unhealthyPodEvictionPolicy), the status rules of
ValidatePodDisruptionBudgetStatusUpdate (non-negative counts, metav1.Conditions), and the object
meta check the generic registry runs after them (names are path segments, not DNS names).

Owns: the PodDisruptionBudget validator and metav1.Condition validation.
Must not import: the pod, workload, service or config validators, or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    NEGATIVE,
    GoRepr,
    duplicate,
    go_quote,
    invalid,
    is_int,
    non_negative,
    not_supported,
    required,
    too_long,
)
from orchestra.api.machinery.names import (
    PERCENT_FMT,
    PERCENT_RE,
    anchored,
    is_path_segment_name,
    is_qualified_name,
    regex_error,
)
from orchestra.api.policy.validation.meta import validate_label_selector, validate_object_meta
from orchestra.objects import Obj, as_dict, as_dicts

UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")  # sorted, as sets.List prints them
CONDITION_STATUSES = ("False", "True", "Unknown")
CONDITION_REASON_FMT = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?"
CONDITION_REASON_MSG = regex_error(
    "a condition reason must start with alphabetic character, optionally followed by a string of "
    "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
    CONDITION_REASON_FMT,
    "my_name",
    "MY_NAME",
    "MyName",
    "ReasonA,ReasonB",
    "ReasonA:ReasonB",
)
_CONDITION_REASON_RE = anchored(CONDITION_REASON_FMT)
PERCENT_MSG = regex_error(
    "a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, "1%", "93%"
)
_POINTER = "0xc000000000"  # a Go pointer as %#v prints it (the address itself is meaningless)


def go_intstr(value: Any) -> GoRepr:
    """An intstr.IntOrString as field.Error prints it (%#v: the value type is not a Stringer)."""
    if isinstance(value, str):
        return GoRepr(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}")
    return GoRepr(f'intstr.IntOrString{{Type:0, IntVal:{int(value or 0)}, StrVal:""}}')


def _go_spec(spec: Obj) -> GoRepr:
    """The internal policy.PodDisruptionBudgetSpec as %#v prints it: pointers by address."""

    def ptr(go_type: str, key: str) -> str:
        return f"(*{go_type})({_POINTER if spec.get(key) is not None else 'nil'})"

    return GoRepr(
        "policy.PodDisruptionBudgetSpec{"
        f"MinAvailable:{ptr('intstr.IntOrString', 'minAvailable')}, "
        f"Selector:{ptr('v1.LabelSelector', 'selector')}, "
        f"MaxUnavailable:{ptr('intstr.IntOrString', 'maxUnavailable')}, "
        "UnhealthyPodEvictionPolicy:"
        f"{ptr('policy.UnhealthyPodEvictionPolicyType', 'unhealthyPodEvictionPolicy')}}}"
    )


def _int_or_percent(value: Any, path: str) -> list[Cause]:
    """ValidatePositiveIntOrPercent, then IsNotMoreThan100Percent."""
    if isinstance(value, str):
        if not PERCENT_RE.match(value):
            return [invalid(path, go_intstr(value), PERCENT_MSG)]
        if int(value[:-1]) > 100:
            return [invalid(path, go_intstr(value), "must not be greater than 100%")]
        return []
    return non_negative(value, path)


def validate_pdb_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    errs: list[Cause] = []
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(invalid(path, _go_spec(spec), "minAvailable and maxUnavailable cannot be both set"))
    if min_available is not None:
        errs += _int_or_percent(min_available, f"{path}.minAvailable")
    if max_unavailable is not None:
        errs += _int_or_percent(max_unavailable, f"{path}.maxUnavailable")
    errs += validate_label_selector(spec.get("selector"), f"{path}.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errs.append(
            not_supported(f"{path}.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES)
        )
    return errs


def validate_conditions(conditions: Any, path: str) -> list[Cause]:
    """metav1validation.ValidateConditions."""
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, cond in enumerate(as_dicts(conditions)):
        p = f"{path}[{i}]"
        ctype = str(cond.get("type") or "")
        if ctype in seen:
            errs.append(duplicate(f"{p}.type", ctype))
        seen.add(ctype)
        errs += [invalid(f"{p}.type", ctype, m) for m in is_qualified_name(ctype)]
        if cond.get("status") not in CONDITION_STATUSES:
            errs.append(not_supported(f"{p}.status", str(cond.get("status") or ""), CONDITION_STATUSES))
        generation = cond.get("observedGeneration")
        if is_int(generation) and generation < 0:
            errs.append(
                invalid(f"{p}.observedGeneration", generation, "must be greater than or equal to zero")
            )
        if not cond.get("lastTransitionTime"):
            errs.append(required(f"{p}.lastTransitionTime", "must be set"))
        reason = str(cond.get("reason") or "")
        if not reason:
            errs.append(required(f"{p}.reason", "must be set"))
        else:
            if not _CONDITION_REASON_RE.match(reason):
                errs.append(invalid(f"{p}.reason", reason, CONDITION_REASON_MSG))
            if len(reason) > 1024:
                errs.append(too_long(f"{p}.reason", 1024))
        if len(str(cond.get("message") or "")) > 32 * 1024:
            errs.append(too_long(f"{p}.message", 32 * 1024))
    return errs


def _validate_status(status: Obj) -> list[Cause]:
    errs = validate_conditions(status.get("conditions"), "status.conditions")
    for field in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        value = status.get(field)
        if is_int(value) and value < 0:
            errs.append(invalid(f"status.{field}", value, NEGATIVE))
    return errs


def validate_pdb(obj: Obj, old: Obj | None) -> list[Cause]:
    """The strategy's Validate (spec, status), and only when that passes, the object meta (kube
    returns the two as separate 422s, spec first)."""
    errs = validate_pdb_spec(as_dict(obj.get("spec")))
    errs += _validate_status(as_dict(obj.get("status")))
    return errs or validate_object_meta(obj.get("metadata"), is_path_segment_name)
