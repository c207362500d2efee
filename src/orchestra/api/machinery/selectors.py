"""Label and field selectors with Kubernetes syntax and semantics.

Owns: parsing `labelSelector`/`fieldSelector` strings and LabelSelector objects, and matching objects.
Must not import: anything in orchestra.api but errors.py and this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from orchestra.api.errors import BadRequest
from orchestra.api.machinery.selectorparse import (
    SelectorSyntaxError,
    is_int64,
    parse_field_terms,
    parse_label_requirements,
)


@attrs.frozen
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            return present and _compares(labels[self.key], self.op, self.values)
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the key, like Kubernetes
        return not present or labels[self.key] not in self.values


def _compares(label: str, op: str, values: frozenset[str]) -> bool:
    """Gt / Lt: both the label and the one value must be integers (strconv.ParseInt), else no match."""
    if len(values) != 1 or not is_int64(label) or not all(is_int64(v) for v in values):
        return False
    have, want = int(label), int(next(iter(values)))
    return have > want if op == "gt" else have < want


@attrs.frozen
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            vals = sorted(r.values)
            if r.op == "exists":
                parts.append(r.key)
            elif r.op == "!":
                parts.append("!" + r.key)
            elif r.op in ("=", "!="):
                parts.append(f"{r.key}{r.op}{vals[0]}")
            elif r.op in ("gt", "lt"):
                parts.append(f"{r.key}{'>' if r.op == 'gt' else '<'}{vals[0]}")
            else:
                parts.append(f"{r.key} {r.op} ({','.join(vals)})")
        return ",".join(parts)


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `app=web,tier!=db,env in (a,b),!legacy,n>3` like labels.Parse (400 with kube's message)."""
    if not text:
        return LabelSelector()
    try:
        reqs = parse_label_requirements(text)
    except SelectorSyntaxError as exc:
        raise BadRequest(str(exc)) from None
    return LabelSelector(tuple(Requirement(key, "=" if op == "==" else op, frozenset(values))
                               for key, op, values in reqs))


def from_label_selector_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a `metav1.LabelSelector` (matchLabels + matchExpressions) into a LabelSelector."""
    if not sel:
        return LabelSelector()
    reqs = [Requirement(k, "=", frozenset([str(v)])) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise BadRequest(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr["key"], op, frozenset(expr.get("values") or ())))
    return LabelSelector(tuple(reqs))


def selector_from_set(labels: Mapping[str, Any] | None) -> LabelSelector:
    """labels.SelectorFromSet: an equality requirement per pair (a ReplicationController's selector)."""
    items = sorted((labels or {}).items()) if isinstance(labels, Mapping) else []
    return LabelSelector(tuple(Requirement(str(k), "=", frozenset([str(v)])) for k, v in items))


def selector_to_string(sel: Mapping[str, Any] | None) -> str:
    return str(from_label_selector_object(sel))


# --- field selectors -------------------------------------------------------------------------

_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
SUPPORTED_FIELDS: dict[str, set[str]] = {
    "Pod": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "Event": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Node": {"spec.unschedulable"},
    "Namespace": {"status.phase"},
    "Secret": {"type"},
    "ReplicaSet": {"status.replicas"},
    "ReplicationController": {"status.replicas"},
    "Job": {"status.successful"},
    "Service": {"spec.clusterIP", "spec.type"},
}


_ZERO = {"status.replicas": "0", "status.successful": "0"}  # int32 fields: strconv.Itoa(0)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component") or obj.get("reportingComponent") or "")
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    if cur is None:  # Go's zero value of the field, as kube formats it
        return "false" if path in ("spec.unschedulable", "spec.hostNetwork") else _ZERO.get(path, "")
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


@attrs.frozen
class FieldSelector:
    terms: tuple[tuple[str, str, str], ...] = ()  # (field, op "=" | "!=", value)

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for field, op, value in self.terms:
            actual = _field_value(obj, field)
            if (actual == value) != (op == "="):
                return False
        return True

    def exact_name(self) -> str | None:
        """The name this selector pins with `metadata.name=X`, if any (for a point lookup)."""
        for field, op, value in self.terms:
            if field == "metadata.name" and op == "=":
                return value
        return None


# A version served from another kind's stored objects converts its field labels to the stored
# kind's (AddFieldLabelConversionsForEvent in pkg/apis/events/v1): (group, kind) -> label -> stored label.
FIELD_LABEL_MAPS: dict[tuple[str, str], dict[str, str]] = {
    ("events.k8s.io", "Event"): {
        "reason": "reason",
        **{f"regarding.{f}": f"involvedObject.{f}"
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reportingController": "reportingComponent",
        "source": "source",
        "type": "type",
        "metadata.namespace": "metadata.namespace",
        "metadata.name": "metadata.name",
    },
}


def parse_field_selector(
    text: str | None, kind: str, group: str = "", fields: Iterable[str] | None = None
) -> FieldSelector:
    """fields.ParseSelector, then the kind's ConvertFieldLabel (400 `field label not supported: x`).
    `fields`: the selectable fields besides metadata.name and metadata.namespace (a custom
    resource's selectableFields); by default the built-in kind's. For a kind served from another
    kind's objects (FIELD_LABEL_MAPS) the selector returned is in the stored kind's labels."""
    if not text:
        return FieldSelector()
    try:
        terms = parse_field_terms(text)
    except SelectorSyntaxError as exc:
        raise BadRequest(str(exc)) from None
    mapping = FIELD_LABEL_MAPS.get((group, kind)) if fields is None else None
    if mapping is None:
        own = set(fields) if fields is not None else SUPPORTED_FIELDS.get(kind, set())
        mapping = {f: f for f in _COMMON_FIELDS | own}
    for field, _op, _value in terms:
        if field not in mapping:
            raise BadRequest(f"field label not supported: {field}")
    return FieldSelector(tuple((mapping[field], op, value) for field, op, value in terms))


def object_filter(
    label: LabelSelector, field: FieldSelector
) -> Callable[[Mapping[str, Any]], bool] | None:
    """A predicate combining both selectors, or None when both are empty."""
    if label.empty and field.empty:
        return None

    def match(obj: Mapping[str, Any]) -> bool:
        return label.matches((obj.get("metadata") or {}).get("labels")) and field.matches(obj)

    return match
