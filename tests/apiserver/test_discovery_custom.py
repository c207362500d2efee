"""Discovery of custom kinds: fresh the moment the registry changes (kubectl re-reads it after "no
matches for kind"), every served version listed with kube's preferred one first."""

from __future__ import annotations

import orjson

from orchestra.api.registry import BUILTIN, CustomKind, Registry, ResourceType
from orchestra.apiserver.discovery import AGGREGATED_V2, Discovery


def widget(version: str) -> ResourceType:
    kind = CustomKind(crd="widgets.example.com", uid="u", storage_version="v1", version={"name": version})
    return ResourceType(group="example.com", version=version, kind="Widget", plural="widgets",
                        singular="widget", namespaced=True, short_names=("wd",), custom=kind)


def test_discovery_follows_the_registry() -> None:
    registry = Registry(BUILTIN)
    d = Discovery(registry, "127.0.0.1:6443")
    assert d.resource_list("example.com", "v1") is None
    assert "example.com" not in d.api_group_list().decode()  # cached now ...
    registry.set_custom("widgets.example.com", [widget("v1"), widget("v1beta1"), widget("v1alpha1")])
    groups = orjson.loads(d.api_group_list())["groups"]  # ... and rebuilt: the registry changed
    mine = next(g for g in groups if g["name"] == "example.com")
    assert [v["version"] for v in mine["versions"]] == ["v1", "v1beta1", "v1alpha1"]
    assert mine["preferredVersion"]["version"] == "v1"
    listed = orjson.loads(d.resource_list("example.com", "v1beta1") or b"{}")
    assert [(r["name"], r["kind"], r.get("shortNames")) for r in listed["resources"]] == [
        ("widgets", "Widget", ["wd"])]
    aggregated = orjson.loads(d.aggregated(False, AGGREGATED_V2))
    item = next(i for i in aggregated["items"] if i["metadata"]["name"] == "example.com")
    assert [v["version"] for v in item["versions"]] == ["v1", "v1beta1", "v1alpha1"]
    registry.remove_custom("widgets.example.com")
    assert d.resource_list("example.com", "v1") is None
    assert "example.com" not in d.api_group_list().decode()


def test_custom_kinds_never_shadow_builtin_names() -> None:
    registry = Registry(BUILTIN)
    pod = ResourceType(group="example.com", version="v1", kind="Pod", plural="pods", singular="pod",
                       namespaced=True, short_names=("po",), custom=widget("v1").custom)
    registry.set_custom("pods.example.com", [pod])
    assert registry.resolve("po") is not None and registry.resolve("po").group == ""  # type: ignore[union-attr]
    assert registry.by_kind("Pod").group == ""  # type: ignore[union-attr]
    assert registry.resolve("pods.example.com") is pod and registry.by_plural("example.com", "pods") is pod
    assert registry.types[-1] is pod and registry.generation == 2
