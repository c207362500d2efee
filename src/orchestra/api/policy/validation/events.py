"""Events written through events.k8s.io/v1 (pkg/apis/core/validation/events.go, requestVersion
events.k8s.io/v1): legacyValidateEvent, which every Event passes, plus the strict rules of the new
API — eventTime required, type Normal or Warning, the deprecated core/v1 fields unset, a series of
at least 2 — and, on update, the fields that may not change.

Runs on the stored (core/v1) form, so the field paths are core's (involvedObject, message, source),
exactly as kube reports them. Core/v1 writes keep config.validate_event.
Must not import: the other kinds' validators or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import IMMUTABLE, invalid, required
from orchestra.api.machinery.names import is_dns1123_subdomain, is_qualified_name
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, as_dict

REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024
_IMMUTABLE = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count",
              "reason", "type", "eventTime", "action", "related", "reportingComponent", "reportingInstance")
# where kube reports each field (its Go field name, not the JSON one, for reportingComponent)
_PATHS = {"reportingComponent": "reportingController"}


def _text(obj: Obj, key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _bounded(obj: Obj, key: str, path: str, limit: int) -> list[Cause]:
    value = _text(obj, key)
    if not value:
        return [required(path, "")]
    if len(value) > limit:
        return [invalid(path, "", f"can have at most {limit} characters")]
    return []


def legacy_event(event: Obj) -> list[Cause]:
    """legacyValidateEvent: namespaces agree; a new-style event (eventTime set) names its reporter."""
    namespace = str(as_dict(event.get("metadata")).get("namespace") or "")
    involved = str(as_dict(event.get("involvedObject")).get("namespace") or "")
    mismatch = invalid("involvedObject.namespace", involved, "does not match event.namespace")
    errs: list[Cause] = []
    if not event.get("eventTime"):
        if (not involved and namespace not in ("", "default")) or (involved and namespace != involved):
            errs.append(mismatch)
    else:
        if not involved and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = _text(event, "reportingComponent")
        if not controller:
            errs.append(required("reportingController", ""))
        errs += [invalid("reportingController", controller, m) for m in is_qualified_name(controller)]
        errs += _bounded(event, "reportingInstance", "reportingInstance", REPORTING_INSTANCE_LIMIT)
        errs += _bounded(event, "action", "action", ACTION_LIMIT)
        errs += _bounded(event, "reason", "reason", REASON_LIMIT)
        if len(_text(event, "message")) > NOTE_LIMIT:
            errs.append(invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    errs += [invalid("namespace", namespace, m) for m in is_dns1123_subdomain(namespace)]
    return errs


def _series(event: Obj) -> list[Cause]:
    series = event.get("series")
    if series is None:
        return []
    series = as_dict(series)
    count = series.get("count")
    errs = []
    if not isinstance(count, int) or count < 2:
        errs.append(invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errs.append(required("series.lastObservedTime", ""))
    return errs


def _unset(event: Obj) -> list[Cause]:
    errs = []
    for key in ("firstTimestamp", "lastTimestamp"):
        if event.get(key):
            errs.append(invalid(key, "", "needs to be unset"))
    if event.get("count"):
        errs.append(invalid("count", "", "needs to be unset"))
    source = as_dict(event.get("source"))
    if source.get("component") or source.get("host"):
        errs.append(invalid("source", "", "needs to be unset"))
    return errs


def validate_event_v1(event: Obj, old: Obj | None) -> list[Cause]:
    """ValidateEventCreate / ValidateEventUpdate with requestVersion events.k8s.io/v1."""
    errs = legacy_event(event)
    if old is None:
        errs += validate_object_meta(event.get("metadata"), is_dns1123_subdomain)
        errs += _series(event)
        if not event.get("eventTime"):
            errs.append(required("eventTime", ""))
        kind = event.get("type")
        if kind not in ("Normal", "Warning"):
            errs.append(invalid("type", "", f"has invalid value: {_go_text(kind)}"))
        return errs + _unset(event)
    if event.get("series") != old.get("series"):
        errs += _series(event)
    for key in _IMMUTABLE:
        if _empty(event.get(key)) != _empty(old.get(key)):
            errs.append(invalid(_PATHS.get(key, key), event.get(key), IMMUTABLE))
    return errs


def _empty(value: Any) -> Any:
    """Go's zero value and an absent field are the same thing."""
    return None if value in (None, "", 0, {}) else value


def _go_text(value: Any) -> str:
    return "" if value is None else str(value)
