"""URL → resource route parsing for the Kubernetes REST layout.

Owns: splitting `/api/v1/namespaces/ns/pods/name/status` style paths into a Route.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import attrs

from orchestra.api.registry import Registry, ResourceType


@attrs.frozen
class Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str = ""


def parse_resource_path(registry: Registry, parts: list[str]) -> Route | None:
    """`parts` are the path segments; returns None when the path names no known resource."""
    if not parts:
        return None
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    rt = registry.by_path(group, version, rest[0])
    if rt is None:
        return None
    if namespace is not None and not rt.namespaced:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = "/".join(rest[2:]) if len(rest) >= 3 else ""
    if name == "":
        return None
    return Route(rt, namespace, name, sub)
