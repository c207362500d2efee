"""Cell formatting shared by the Table printers: ages (`since`: kube's translateTimestampSince),
labels, selectors, container lists and service ports, plus `int_or_zero` (a JSON integer or 0).
Timestamps, HumanDuration and the shape guards (`as_dict`/`only_dicts`) are orchestra.objects'.

Owns: turning raw object fields into the strings kubectl shows; knows no kind and no columns.
Must not import: the rest of orchestra.api.tables (every other module there imports this one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.objects import as_dict, human_duration, only_dicts, parse_time

Cell = str | int | bool

# --- durations and timestamps ------------------------------------------------------------------------


def since(value: Any, now: datetime) -> str:
    """translateTimestampSince: `<unknown>` for a missing timestamp."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


# --- formatting helpers (labels, selectors, containers) --------------------------------------------------


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` joined by commas, `<none>` when empty."""
    labels = as_dict(labels)
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(sel: Any) -> str:
    """LabelSelectorAsSelector(sel).String(): requirements sorted by key; "" for nil or empty."""
    sel = as_dict(sel)
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in as_dict(sel.get("matchLabels")).items()]
    for e in only_dicts(sel.get("matchExpressions")):
        key, op = str(e.get("key", "")), e.get("operator")
        values = ",".join(sorted(str(v) for v in e.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(op), "")
        if not text:
            return "<invalid>"
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector: like selector_string but `<none>` when it is empty."""
    return selector_string(sel) or "<none>"


def layout_containers(template_spec: Any) -> tuple[str, str]:
    containers = only_dicts(as_dict(template_spec).get("containers"))
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(
        str(c.get("image", "")) for c in containers
    )


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def format_service_ports(ports: Any) -> str:
    pieces = []
    for p in only_dicts(ports):
        protocol = p.get("protocol") or "TCP"
        if int_or_zero(p.get("nodePort")) > 0:
            pieces.append(f"{p.get('port')}:{p.get('nodePort')}/{protocol}")
        else:
            pieces.append(f"{p.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"
