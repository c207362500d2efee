"""Types served over another type's stored objects (`ResourceType.stored_as`): objects are stored as
one type, and requests at another served type — another version of the kind, or the kind in
another group — are converted on the way in and out (kube-apiserver's conversion through the
internal type, done here directly between the two external types).

Owns: `stored(rt, obj)` — an object a request sent at `rt`'s version, as the store keeps it — and
`served(rt, obj)` — a stored object as `rt`'s version shows it — looked up by (group, version,
kind). Kinds without a conversion pass through unchanged (the same object, not a copy). A storage
version may normalize too: autoscaling/v2 HorizontalPodAutoscalers drop the round-trip annotations
autoscaling/v1 uses, as kube's v2 conversion does.
The per-kind conversions live in this package (hpa.py, hpametrics.py: autoscaling/v1 <-> v2;
events.py: events.k8s.io/v1 <-> core/v1 Events).
Used by the verbs (api/request: core, deletion, serverside, watch convert at every call) and by
api/tables (a printer reads an object served at another version as the stored one).
New code here: a kind's conversion in a module of its own, entered in _CONVERSIONS below.
Must not import: api/request, api/policy, api/tables, api/machinery (it sits beside machinery and
metrics, just above the registry; import-linter checks it), the store, the HTTP server, or anything
above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestra.api.conversion import events, hpa
from orchestra.api.registry import ResourceType
from orchestra.objects import Obj

Convert = Callable[[Obj], Obj]

# (group, version, kind) -> (request version -> stored version, stored version -> request version)
_CONVERSIONS: dict[tuple[str, str, str], tuple[Convert, Convert]] = {
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): (hpa.normalize_v2, hpa.normalize_v2),
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): (hpa.to_v2, hpa.to_v1),
    ("events.k8s.io", "v1", "Event"): (events.event_to_core, events.event_from_core),
}


def converts(rt: ResourceType) -> bool:
    """Whether objects of `rt` are converted at all (most kinds: no)."""
    return (rt.group, rt.version, rt.kind) in _CONVERSIONS


def stored(rt: ResourceType, obj: Obj) -> Obj:
    """`obj`, sent at `rt`'s version, in the version the store keeps (a new object when converted)."""
    pair = _CONVERSIONS.get((rt.group, rt.version, rt.kind))
    return pair[0](obj) if pair is not None else obj


def served(rt: ResourceType, obj: Obj) -> Obj:
    """A stored object as `rt`'s version shows it (a new object when converted)."""
    pair = _CONVERSIONS.get((rt.group, rt.version, rt.kind))
    return pair[1](obj) if pair is not None else obj


__all__ = ["converts", "served", "stored"]
