"""Event between events.k8s.io/v1 (served) and core/v1 (the stored type): kube stores one Event and
serves it in both groups.

Owns: events.k8s.io/v1 Event <-> core/v1 Event (pkg/apis/events/v1/conversion.go: regarding is
involvedObject, note is message, reportingController is reportingComponent, deprecatedSource /
deprecatedFirstTimestamp / deprecatedLastTimestamp / deprecatedCount are source / firstTimestamp /
lastTimestamp / count; the other fields keep their names).
A converted object is written as Go writes the type: a struct field without a pointer is always
there (`regarding: {}`, `deprecatedSource: {}`), a zero time is `null`, empty strings and counts
are left out.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from orchestra.objects import Obj, as_dict

# (core/v1 name, events.k8s.io/v1 name) of the fields whose names differ
_RENAMED = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)
_SAME = ("reason", "type", "eventTime", "series", "action", "related", "reportingInstance")


def event_from_core(event: Obj) -> Obj:
    """A stored core/v1 Event as events.k8s.io/v1 serves it."""
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": event.get("metadata") or {}}
    for core_name, v1_name in _RENAMED:
        if _set(event.get(core_name)):
            out[v1_name] = event[core_name]
    for name in _SAME:
        if _set(event.get(name)):
            out[name] = event[name]
    out.setdefault("eventTime", None)  # required in events.k8s.io/v1; Go writes a zero MicroTime as null
    out.setdefault("regarding", {})
    out.setdefault("deprecatedSource", {})
    out.setdefault("deprecatedFirstTimestamp", None)
    out.setdefault("deprecatedLastTimestamp", None)
    return out


def event_to_core(event: Obj) -> Obj:
    """An events.k8s.io/v1 Event as it is stored (core/v1)."""
    out: Obj = {"kind": "Event", "apiVersion": "v1", "metadata": event.get("metadata") or {}}
    for core_name, v1_name in _RENAMED:
        if _set(event.get(v1_name)):
            out[core_name] = event[v1_name]
    for name in _SAME:
        if _set(event.get(name)):
            out[name] = event[name]
    out.setdefault("involvedObject", as_dict(event.get("regarding")))
    out.setdefault("reportingComponent", "")  # core/v1 writes both without omitempty
    out.setdefault("reportingInstance", "")
    return out


def _set(value: object) -> bool:
    """Go's omitempty: null, "", 0 and {} are left out."""
    return value not in (None, "", 0, {})
