"""`orchestra describe` of ResourceQuotas and LimitRanges, and their sections of a namespace's
description, laid out as kubectl's describers do (describeQuota, describeLimitRange,
DescribeResourceQuotas, DescribeLimitRanges).

Owns: those texts, tab-aligned with cli/tabwriter (two spaces per level, like kubectl's
PrefixWriter). Resources print in name order (kubectl sorts quota resources; its LimitRange rows
follow a Go map and so have no fixed order).
Must not import: the server side, or cli/describe.py (which imports this module).
"""

from __future__ import annotations

from typing import Any

from orchestra.cli.tabwriter import tabwrite
from orchestra.objects import Obj, as_dict, only_dicts
from orchestra.objects.quantity import parse_or_none

SCOPE_HELP = {
    "Terminating": "Matches all pods that have an active deadline. These pods have a limited lifespan on a "
    "node before being actively terminated by the system.",
    "NotTerminating": "Matches all pods that do not have an active deadline. These pods usually include long "
    "running pods whose container command is not expected to terminate.",
    "BestEffort": "Matches all pods that do not have resource requirements set. These pods have a best "
    "effort quality of service.",
    "NotBestEffort": "Matches all pods that have at least one resource requirement set. These pods have a "
    "burstable or guaranteed quality of service.",
}
LIMIT_HEADER = "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio"
LIMIT_RULE = "----\t--------\t---\t---\t---------------\t-------------\t-----------------------"


def _text(lines: list[str]) -> str:
    return tabwrite("\n".join(lines), minwidth=0, padding=2) + "\n"


def _q(value: Any) -> str:
    q = parse_or_none(value)
    return str(q) if q is not None else "0"


def _scopes(quota: Obj, indent: str, bullet: str) -> list[str]:
    scopes = sorted(str(s) for s in as_dict(quota.get("spec")).get("scopes") or [])
    if not scopes:
        return []
    lines = [f"{indent}Scopes:\t{', '.join(scopes)}"]
    return lines + [f"{indent}{bullet}{SCOPE_HELP[s]}" for s in scopes if s in SCOPE_HELP]


def _usage_rows(quota: Obj, indent: str) -> list[str]:
    status = as_dict(quota.get("status"))
    hard, used = as_dict(status.get("hard")), as_dict(status.get("used"))
    return [f"{indent}{name}\t{_q(used.get(name))}\t{_q(hard[name])}" for name in sorted(hard)]


def describe_resource_quota(quota: Obj) -> str:
    meta = as_dict(quota.get("metadata"))
    lines = [f"Name:\t{meta.get('name', '')}", f"Namespace:\t{meta.get('namespace', '')}"]
    lines += _scopes(quota, "", " * ")
    lines += ["Resource\tUsed\tHard", "--------\t----\t----", *_usage_rows(quota, "")]
    return _text(lines)


def _limit_rows(limit_range: Obj, prefix: str) -> list[str]:
    rows = []
    for item in only_dicts(as_dict(limit_range.get("spec")).get("limits")):
        fields = [
            as_dict(item.get(f)) for f in ("min", "max", "defaultRequest", "default", "maxLimitRequestRatio")
        ]
        for name in sorted({k for f in fields for k in f}):
            cells = [_q(f[name]) if name in f else "-" for f in fields]
            rows.append(prefix + "\t".join([str(item.get("type", "")), name, *cells]))
    return rows


def describe_limit_range(limit_range: Obj) -> str:
    meta = as_dict(limit_range.get("metadata"))
    lines = [
        f"Name:\t{meta.get('name', '')}",
        f"Namespace:\t{meta.get('namespace', '')}",
        LIMIT_HEADER,
        LIMIT_RULE,
    ]
    return _text(lines + _limit_rows(limit_range, ""))


def namespace_sections(quotas: list[Obj], limit_ranges: list[Obj]) -> str:
    """The quota and limit sections of `describe namespace`."""
    lines: list[str] = []
    if not quotas:
        lines.append("No resource quota.")
    else:
        lines.append("Resource Quotas")
        for quota in sorted(quotas, key=lambda q: str(as_dict(q.get("metadata")).get("name"))):
            lines.append(f"  Name:\t{as_dict(quota.get('metadata')).get('name', '')}")
            lines += _scopes(quota, "  ", "* ")
            lines += ["  Resource\tUsed\tHard", "  --------\t---\t---", *_usage_rows(quota, "  ")]
    lines.append("")
    if not limit_ranges:
        lines.append("No LimitRange resource.")
    else:
        lines += ["Resource Limits", f" {LIMIT_HEADER}", f" {LIMIT_RULE}"]
        for limit_range in limit_ranges:
            lines += _limit_rows(limit_range, " ")
    return _text(lines)
