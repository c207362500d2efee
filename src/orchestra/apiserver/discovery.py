"""Discovery documents (legacy and aggregated v2/v2beta1) and /version (OpenAPI: openapi.py).

Owns: the JSON documents kubectl reads to learn which resources exist. Built once from the registry.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import platform
from typing import Any

import orjson

from orchestra import __version__
from orchestra.api.registry import Registry, ResourceType

KUBE_VERSION = "v1.32.0"
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def version_info() -> dict[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": f"{KUBE_VERSION}+orchestra.{__version__}",
        "gitCommit": "orchestra",
        "gitTreeState": "clean",
        "buildDate": "2026-11-26T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"linux/{arch}",
    }


def wants_aggregated(accept: str) -> str | None:
    """The aggregated discovery content type the client asked for first, if any."""
    for part in accept.split(","):
        p = part.replace(" ", "")
        if "as=APIGroupDiscoveryList" in p and "g=apidiscovery.k8s.io" in p:
            if "v=v2beta1" in p:
                return AGGREGATED_V2BETA1
            if "v=v2" in p:
                return AGGREGATED_V2
    return None


class Discovery:
    def __init__(self, registry: Registry, server_address: str, *, read_only: Registry | None = None) -> None:
        """`read_only`: kinds served without the store (metrics.k8s.io), listed after the others."""
        self.registry = registry
        self.read_only = read_only or Registry(())
        self.server_address = server_address
        self._cache: dict[str, bytes] = {}

    def _groups(self) -> list[str]:
        return [
            *self.registry.groups(),
            *(g for g in self.read_only.groups() if g not in self.registry.groups()),
        ]

    def _versions(self, group: str) -> list[str]:
        """The versions a group serves, the preferred one first (v1, v1beta1 for metrics.k8s.io,
        v2 and v1 for autoscaling)."""
        return self.registry.versions(group) or self.read_only.versions(group) or ["v1"]

    def _types(self, group: str, version: str) -> list[ResourceType]:
        return self.registry.in_group(group, version) or self.read_only.in_group(group, version)

    def _cached(self, key: str, build: Any) -> bytes:
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = orjson.dumps(build())
        return data

    # --- legacy ---

    def api_versions(self) -> bytes:
        return self._cached("api", lambda: {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}],
        })

    def _group(self, group: str) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in self._versions(group)]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def api_group_list(self) -> bytes:
        return self._cached("apis", lambda: {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group(g) for g in self._groups() if g],
        })

    def api_group(self, group: str) -> bytes | None:
        if group not in self._groups() or not group:
            return None
        return self._cached(
            f"group/{group}", lambda: {"kind": "APIGroup", "apiVersion": "v1", **self._group(group)}
        )

    def resource_list(self, group: str, version: str) -> bytes | None:
        types = self._types(group, version)
        if not types:
            return None

        def build() -> dict[str, Any]:
            resources: list[dict[str, Any]] = []
            for t in types:
                resources.append(_legacy_resource(t))
                for sub in t.subresources:
                    entry: dict[str, Any] = {
                        "name": f"{t.plural}/{sub.name}",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": sub.kind or t.kind,
                        "verbs": list(sub.verbs),
                    }
                    if sub.group or sub.name == "scale":
                        entry["group"], entry["version"] = sub.group, sub.version
                    resources.append(entry)
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": t.api_version,
                "resources": resources,
            }

        return self._cached(f"rl/{group}/{version}", build)

    # --- aggregated ---

    def aggregated(self, legacy_core: bool, content_type: str) -> bytes:
        api_version = "apidiscovery.k8s.io/v2beta1" if "v2beta1" in content_type else "apidiscovery.k8s.io/v2"
        groups = [""] if legacy_core else [g for g in self._groups() if g]

        def build() -> dict[str, Any]:
            items = []
            for g in groups:
                items.append({
                    "metadata": {"name": g, "creationTimestamp": None},
                    "versions": [{
                        "version": v,
                        "freshness": "Current",
                        "resources": [_aggregated_resource(t) for t in self._types(g, v)],
                    } for v in self._versions(g)],
                })
            return {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": api_version,
                "metadata": {},
                "items": items,
            }

        return self._cached(f"agg/{legacy_core}/{api_version}", build)


def _legacy_resource(t: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    return entry


def _aggregated_resource(t: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": t.plural,
        "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
        "scope": "Namespaced" if t.namespaced else "Cluster",
        "singularResource": t.singular,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    if t.subresources:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {"group": s.group if s.name == "scale" else t.group,
                                 "version": s.version, "kind": s.kind or t.kind},
                "verbs": list(s.verbs),
            }
            for s in t.subresources
        ]
    return entry
