"""The LimitRanger admission plugin (plugin/pkg/admission/limitranger, kube 1.32).

Owns, for the LimitRanges of the object's namespace (each in turn, by name):
  * pod create, mutating: each container and init container gets the `Container` item's
    `default` as limits and `defaultRequest` as requests for every resource it does not state
    (the LimitRange defaults already filled defaultRequest from default, default from max and
    defaultRequest from min); what was set is recorded in the `kubernetes.io/limit-ranger`
    annotation (`LimitRanger plugin set: cpu, memory request for container c; cpu limit for
    container c`), and the pod's QoS class is worked out again from its new resources;
  * pod create, validating: `Container` min / max / maxLimitRequestRatio for every container and
    init container, `Pod` ones for the pod's summed requests and limits;
  * PersistentVolumeClaim create and update (not of a claim being deleted), validating:
    `PersistentVolumeClaim` min / max of spec.resources.requests.
Messages are kube's (`maximum cpu usage per Container is 1, but limit is 2`); several problems are
reported together as Go's aggregate error (`[first, second]`). The caller turns a message into
the 403 (`pods "p" is forbidden: ...`). Resources are checked in name order (kube walks a map).
Must not import: anything above the api layer (part of api/policy).
"""

from __future__ import annotations

from collections.abc import Callable

from orchestra.api.policy.defaults import qos_class
from orchestra.api.policy.quota import resources as rl
from orchestra.objects import Obj, as_dict, is_terminating, only_dicts
from orchestra.objects.quantity import INT64_MAX, Quantity, parse_or_none

ANNOTATION = "kubernetes.io/limit-ranger"
CONTAINER, POD, CLAIM = "Container", "Pod", "PersistentVolumeClaim"
MAX_MILLI_VALUE = INT64_MAX // 1000
_ZERO = rl.ZERO
Check = Callable[[str, str, Quantity, rl.ResourceList, rl.ResourceList], str | None]


def _items(limit_range: Obj, kind: str) -> list[Obj]:
    return [i for i in only_dicts(as_dict(limit_range.get("spec")).get("limits")) if i.get("type") == kind]


# --- defaults (mutating) -------------------------------------------------------------------------------


def _defaults(limit_range: Obj) -> tuple[rl.ResourceList, rl.ResourceList]:
    """defaultContainerResourceRequirements: (requests, limits) of the Container items."""
    requests: rl.ResourceList = {}
    limits: rl.ResourceList = {}
    for item in _items(limit_range, CONTAINER):
        requests.update(rl.parse_list(item.get("defaultRequest")))
        limits.update(rl.parse_list(item.get("default")))
    return requests, limits


def _merge_container(c: Obj, requests: rl.ResourceList, limits: rl.ResourceList, prefix: str) -> list[str]:
    res = c.get("resources")
    if not isinstance(res, dict):  # absent, or null (which kube decodes as absent)
        res = c["resources"] = {}
    notes = []
    for which, defaults, word in (("requests", requests, "request"), ("limits", limits, "limit")):
        current = as_dict(res.get(which))
        added = sorted(name for name in defaults if name not in current)
        if added:
            res[which] = {**current, **{name: str(defaults[name]) for name in added}}
            notes.append(f"{', '.join(added)} {word} for {prefix} {c.get('name', '')}")
    # kube notes the requests first, then the limits, per container
    return notes


def mutate_pod(pod: Obj, limit_ranges: list[Obj]) -> None:
    """PodMutateLimitFunc for each LimitRange."""
    spec = as_dict(pod.get("spec"))
    changed = False
    for limit_range in limit_ranges:
        requests, limits = _defaults(limit_range)
        if not requests and not limits:
            continue
        notes: list[str] = []
        for c in only_dicts(spec.get("containers")):
            notes += _merge_container(c, requests, limits, "container")
        for c in only_dicts(spec.get("initContainers")):
            notes += _merge_container(c, requests, limits, "init container")
        if notes:
            annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
            changed = True
    if changed and isinstance(pod.get("status"), dict):
        pod["status"]["qosClass"] = qos_class(spec)  # the strategy computed it before the defaults


# --- constraints (validating) ----------------------------------------------------------------------------


def _values(req: Quantity, lim: Quantity, enforced: Quantity) -> tuple[int, int, int]:
    """requestLimitEnforcedValues: milli-values when none overflows, else values."""
    values = (req.int_value(), lim.int_value(), enforced.int_value())
    if all(v <= MAX_MILLI_VALUE for v in values):
        return req.milli_value(), lim.milli_value(), enforced.milli_value()
    return values


def min_constraint(kind: str, name: str, enforced: Quantity, request: rl.ResourceList,
                   limit: rl.ResourceList) -> str | None:
    req, lim = request.get(name), limit.get(name)
    observed_req, observed_lim, value = _values(req or _ZERO, lim or _ZERO, enforced)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if observed_req < value:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}"
    if lim is not None and observed_lim < value:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
    return None


def max_constraint(kind: str, name: str, enforced: Quantity, request: rl.ResourceList,
                   limit: rl.ResourceList) -> str | None:
    req, lim = request.get(name), limit.get(name)
    observed_req, observed_lim, value = _values(req or _ZERO, lim or _ZERO, enforced)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if observed_lim > value:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
    if req is not None and observed_req > value:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def max_request_constraint(kind: str, name: str, enforced: Quantity, request: rl.ResourceList,
                           _limit: rl.ResourceList) -> str | None:
    """maxRequestConstraint: for claims, whose limits are not user input."""
    req = request.get(name)
    observed_req, _, value = _values(req or _ZERO, _ZERO, enforced)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if observed_req > value:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def ratio_constraint(kind: str, name: str, enforced: Quantity, request: rl.ResourceList,
                     limit: rl.ResourceList) -> str | None:
    req, lim = request.get(name), limit.get(name)
    observed_req, observed_lim, _ = _values(req or _ZERO, lim or _ZERO, enforced)
    if req is None or observed_req == 0:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                "but no request is specified or request is 0")
    if lim is None or observed_lim == 0:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                "but no limit is specified or limit is 0")
    ratio = observed_lim / observed_req
    shown, most = ratio, float(enforced.int_value())
    if enforced.int_value() <= MAX_MILLI_VALUE:
        ratio, most = ratio * 1000, float(enforced.milli_value())
    if ratio > most:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {shown:f}"
    return None


def _check(item: Obj, kind: str, request: rl.ResourceList, limit: rl.ResourceList,
           checks: tuple[tuple[str, Check], ...]) -> list[str]:
    errs = []
    for field, check in checks:
        bounds = as_dict(item.get(field))
        for name in sorted(bounds):
            enforced = parse_or_none(bounds[name])
            if enforced is not None:
                err = check(kind, name, enforced, request, limit)
                if err:
                    errs.append(err)
    return errs


_POD_CHECKS: tuple[tuple[str, Check], ...] = (
    ("min", min_constraint), ("max", max_constraint), ("maxLimitRequestRatio", ratio_constraint))
_CLAIM_CHECKS: tuple[tuple[str, Check], ...] = (("min", min_constraint), ("max", max_request_constraint))


def _pod_errors(limit_range: Obj, pod: Obj) -> list[str]:
    spec = as_dict(pod.get("spec"))
    errs: list[str] = []
    for item in only_dicts(as_dict(limit_range.get("spec")).get("limits")):
        if item.get("type") == CONTAINER:
            for c in [*only_dicts(spec.get("containers")), *only_dicts(spec.get("initContainers"))]:
                res = as_dict(c.get("resources"))
                errs += _check(item, CONTAINER, rl.parse_list(res.get("requests")),
                               rl.parse_list(res.get("limits")), _POD_CHECKS)
        elif item.get("type") == POD:
            errs += _check(item, POD, rl.aggregate(spec, "requests"), rl.aggregate(spec, "limits"),
                           _POD_CHECKS)
    return errs


def _claim_errors(limit_range: Obj, pvc: Obj) -> list[str]:
    requests = rl.parse_list(as_dict(as_dict(as_dict(pvc.get("spec")).get("resources")).get("requests")))
    errs: list[str] = []
    for item in _items(limit_range, CLAIM):
        errs += _check(item, CLAIM, requests, {}, _CLAIM_CHECKS)
    return errs


def aggregate_message(errs: list[str]) -> str:
    """utilerrors.NewAggregate(errs).Error(): one message, or `[a, b]` without repeats."""
    unique = list(dict.fromkeys(errs))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def validate(kind: str, obj: Obj, old: Obj | None, limit_ranges: list[Obj]) -> str | None:
    """The first LimitRange's complaint about a pod (create) or claim (create/update), or None."""
    if (kind == "Pod" and old is not None) or kind not in ("Pod", "PersistentVolumeClaim"):
        return None
    if old is not None and is_terminating(old):
        return None
    for limit_range in limit_ranges:
        errs = _pod_errors(limit_range, obj) if kind == "Pod" else _claim_errors(limit_range, obj)
        if errs:
            return aggregate_message(errs)
    return None
