"""Kubernetes-aware version order (k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings).

Owns: `priority_key(v)` — GA before beta before alpha, higher major/minor first, then any other
name alphabetically — the order of a group's served versions in discovery (the first is preferred),
and kube's default deprecation warning that names the newest non-deprecated served version.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import re
from typing import Any

_KUBE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_RANK = {None: 2, "beta": 1, "alpha": 0}


def priority_key(version: str) -> tuple[int, int, int, int, str]:
    """Sort ascending by this key for kube's priority order (v1, v1beta2, v1beta1, v1alpha1, foo)."""
    m = _KUBE.match(version)
    if m is None:
        return (1, 0, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return (0, -_RANK[stage], -major, -minor, "")


def deprecation_warning(
    group: str, kind: str, version: dict[str, Any], versions: list[dict[str, Any]]
) -> str:
    """kube's defaultDeprecationWarning unless the version has its own deprecationWarning."""
    own = version.get("deprecationWarning")
    if isinstance(own, str):
        return own
    name = str(version.get("name"))
    msg = f"{group}/{name} {kind} is deprecated"
    newer = [str(v.get("name")) for v in versions
             if v.get("served") and not v.get("deprecated") and _newer(str(v.get("name")), name)]
    if not newer:
        return msg
    return msg + f"; use {group}/{sorted(newer, key=priority_key)[0]} {kind}"


def _newer(candidate: str, than: str) -> bool:
    """CompareKubeAwareVersionStrings(than, candidate) < 0: `candidate` has the higher priority."""
    return priority_key(candidate) < priority_key(than)
