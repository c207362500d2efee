"""Resource lists (`{"pods": "2", "requests.cpu": "500m"}`) with the arithmetic kube's quota code does.

Owns: `ResourceList` (name -> orchestra.objects.quantity.Quantity), reading one from an object
(lenient: a malformed value was reported by validation and is left out), writing one back in
kube's canonical spelling, and apiserver/pkg/quota/v1's helpers: `add`, `subtract_non_negative`,
`mask`, `remove_zeros`, `is_negative`, `equals`, `less_than_or_equal`, `pretty`; plus a pod's
summed requests and limits (pkg/api/v1/resource's PodRequests / PodLimits: containers, restartable
sidecars, init containers as a maximum, overhead).
Sums keep Go's Quantity.Add format rule: the result is printed in the format of the left operand,
or of the right one when the left is zero (`0 + 512Mi` = `512Mi`, `500m + 500m` = `1`).
Must not import: anything above the api layer (part of api/policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from orchestra.objects import Obj, as_dict, only_dicts
from orchestra.objects.quantity import DECIMAL_SI, Quantity, parse_or_none

ResourceList = dict[str, Quantity]

ZERO = Quantity(Fraction(0), DECIMAL_SI)
ONE = Quantity(Fraction(1), DECIMAL_SI)


def count(n: int) -> Quantity:
    """resource.NewQuantity(n, DecimalSI)."""
    return Quantity(Fraction(n), DECIMAL_SI)


def parse_list(raw: Any) -> ResourceList:
    """The quantities of a JSON resource list; malformed entries are left out."""
    out: ResourceList = {}
    for name, value in as_dict(raw).items():
        q = parse_or_none(value)
        if q is not None:
            out[str(name)] = q
    return out


def to_json(rl: Mapping[str, Quantity]) -> dict[str, str]:
    """The list as kube writes it: canonical quantity strings."""
    return {name: str(rl[name]) for name in sorted(rl)}


def plus(a: Quantity, b: Quantity) -> Quantity:
    """Go's a.Add(b)."""
    return Quantity(a.value + b.value, a.format if a.value != 0 else b.format)


def minus(a: Quantity, b: Quantity) -> Quantity:
    """Go's a.Sub(b)."""
    return Quantity(a.value - b.value, a.format if a.value != 0 else b.format)


def add(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out = {k: plus(v, b[k]) if k in b else v for k, v in a.items()}
    for k, v in b.items():
        out.setdefault(k, v)
    return out


def subtract_non_negative(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    """quota.SubtractWithNonNegativeResult: a - b per resource, never below zero; b-only keys are 0."""
    out: ResourceList = {}
    for k, v in a.items():
        diff = minus(v, b[k]) if k in b else v
        out[k] = diff if diff.value > 0 else ZERO
    for k in b:
        out.setdefault(k, ZERO)
    return out


def mask(rl: Mapping[str, Quantity], names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {k: v for k, v in rl.items() if k in keep}


def remove_zeros(rl: Mapping[str, Quantity]) -> ResourceList:
    return {k: v for k, v in rl.items() if v.value != 0}


def is_negative(rl: Mapping[str, Quantity]) -> list[str]:
    return sorted(k for k, v in rl.items() if v.value < 0)


def equals(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> bool:
    return a.keys() == b.keys() and all(a[k].value == b[k].value for k in a)


def less_than_or_equal(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> tuple[bool, list[str]]:
    """quota.LessThanOrEqual: every resource of `b` that `a` has is within it; the ones that are not."""
    exceeded = [k for k, limit in b.items() if k in a and a[k].value > limit.value]
    return not exceeded, exceeded


def pretty(rl: Mapping[str, Quantity]) -> str:
    """prettyPrint: `name=value` sorted by name, joined by commas."""
    return ",".join(f"{k}={rl[k]}" for k in sorted(rl))


# --- a pod's requests and limits (pkg/api/v1/resource) -------------------------------------------------


def _container_list(c: Obj, which: str) -> ResourceList:
    return parse_list(as_dict(c.get("resources")).get(which))


def _add_into(into: ResourceList, other: Mapping[str, Quantity]) -> None:
    for k, v in other.items():
        into[k] = plus(into[k], v) if k in into else v


def _max_into(into: ResourceList, other: Mapping[str, Quantity]) -> None:
    for k, v in other.items():
        if k not in into or v.value > into[k].value:
            into[k] = v


def aggregate(spec: Obj, which: str) -> ResourceList:
    """The pod's `requests` or `limits` as its containers ask: the sum of the containers and the
    restartable (sidecar) init containers, at least what any other init container needs on top of
    the sidecars started before it. Used by quota and by the LimitRanger's Pod limits."""
    total: ResourceList = {}
    for c in only_dicts(spec.get("containers")):
        _add_into(total, _container_list(c, which))
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for c in only_dicts(spec.get("initContainers")):
        own = _container_list(c, which)
        if c.get("restartPolicy") == "Always":
            _add_into(total, own)
            _add_into(sidecars, own)
            needed = dict(sidecars)
        else:
            needed = dict(own)
            _add_into(needed, sidecars)
        _max_into(init_max, needed)
    _max_into(total, init_max)
    return total


def pod_requests(spec: Obj) -> ResourceList:
    """resourcehelper.PodRequests: the containers' aggregate plus the pod's overhead."""
    reqs = aggregate(spec, "requests")
    _add_into(reqs, parse_list(spec.get("overhead")))
    return reqs


def pod_limits(spec: Obj) -> ResourceList:
    """resourcehelper.PodLimits: the overhead is added only to resources that have a limit."""
    limits = aggregate(spec, "limits")
    for k, v in parse_list(spec.get("overhead")).items():
        if k in limits:
            limits[k] = plus(limits[k], v)
    return limits
