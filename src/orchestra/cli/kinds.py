"""The kinds a server serves, for the CLI: the built-in ones plus the server's custom resources.

Owns: `discovered(client) -> Registry` — the built-in registry with every resource the server's
aggregated discovery lists beyond it (custom resources: group, versions preferred first, kind,
plural, singular, scope, short names, categories, subresources), so `orchestra get/describe/
delete/apply` resolve `widgets`, `wd`, `widgets.example.com` and `all` as kubectl does; and
`registry_for(session, names)`, which asks the server only when a name is not a built-in one.
Must not import: the server side.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.registry import BUILTIN, DEFAULT_REGISTRY, Registry, ResourceType, Subresource
from orchestra.cli.errors import CliError
from orchestra.cli.rest import RestClient

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def discovered(client: RestClient) -> Registry:
    registry = Registry(BUILTIN)
    known = {(t.group, t.version, t.plural) for t in BUILTIN}
    try:
        doc = client.request("GET", "/apis", accept=AGGREGATED)
    except CliError:
        return registry  # no discovery to read: the built-in kinds are all we can name
    by_resource: dict[str, list[ResourceType]] = {}
    for group in doc.get("items") or []:
        name = str((group.get("metadata") or {}).get("name") or "")
        for version in group.get("versions") or []:
            for res in version.get("resources") or []:
                rt = _resource_type(name, str(version.get("version") or ""), res)
                if (rt.group, rt.version, rt.plural) not in known:
                    by_resource.setdefault(rt.group_resource, []).append(rt)
    for key, types in by_resource.items():
        registry.set_custom(key, types)  # discovery lists a group's versions preferred first
    return registry


def _resource_type(group: str, version: str, res: dict[str, Any]) -> ResourceType:
    kind = str((res.get("responseKind") or {}).get("kind") or "")
    subs = tuple(
        Subresource(str(s.get("subresource")), str((s.get("responseKind") or {}).get("kind") or kind))
        for s in res.get("subresources") or []
    )
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=str(res.get("resource") or ""),
        singular=str(res.get("singularResource") or kind.lower()),
        namespaced=res.get("scope") == "Namespaced",
        short_names=tuple(res.get("shortNames") or ()),
        categories=tuple(res.get("categories") or ()),
        subresources=subs,
        verbs=tuple(res.get("verbs") or ()),
    )


def needs_discovery(names: Iterable[str]) -> bool:
    """Whether any type name is not a built-in resource (or is a category, which custom kinds join)."""
    for arg in names:
        for name in arg.split("/")[0].split(","):
            if DEFAULT_REGISTRY.resolve(name) is None:
                return True
    return False
