"""From stored CustomResourceDefinitions to the registry's live custom kinds.

Owns: `kinds_of(crd) -> tuple[ResourceType, ...]` — the served versions of an Established CRD (in
kube's version priority, the preferred first), named by its status.acceptedNames as kube serves
them, each carrying its `CustomKind` (schema, subresources, columns, deprecation warning,
terminating); and `KindsMixin`, the API core's side of it: `load_custom_kinds()` at start (CRDs
survive restarts in the store) and `_crd_written(obj | None, name)` after every write of a CRD, so
the registry — and with it routing, discovery and every in-process client — always matches what
is stored, with no watch lag.
Must not import: api/tables, the apiserver or anything above the api layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestra.api.policy.crd.definition import condition_true
from orchestra.api.policy.crd.versions import deprecation_warning, priority_key
from orchestra.api.registry import ALL_VERBS, CRD, CustomKind, Registry, ResourceType, Subresource
from orchestra.objects import Obj, as_dict, as_dicts, as_list

if TYPE_CHECKING:
    from orchestra.api.request.stored import Codec
    from orchestra.store import Store


def kinds_of(crd: Obj) -> tuple[ResourceType, ...]:
    """What `crd` serves: nothing until it is Established, then each served version."""
    if not condition_true(crd, "Established"):
        return ()
    spec = as_dict(crd.get("spec"))
    accepted = as_dict(as_dict(crd.get("status")).get("acceptedNames"))
    names = accepted if accepted.get("kind") and accepted.get("plural") else as_dict(spec.get("names"))
    group, kind = str(spec.get("group") or ""), str(names.get("kind") or "")
    versions = as_dicts(spec.get("versions"))
    storage = next((str(v.get("name")) for v in versions if v.get("storage") is True), "")
    meta = as_dict(crd.get("metadata"))
    served = sorted(
        (v for v in versions if v.get("served") is True), key=lambda v: priority_key(str(v.get("name")))
    )
    out = []
    for v in served:
        subs = as_dict(v.get("subresources"))
        subresources = []
        if subs.get("status") is not None:
            subresources.append(Subresource("status", kind))
        if subs.get("scale") is not None:
            subresources.append(Subresource("scale", "Scale", group="autoscaling", version="v1"))
        custom = CustomKind(
            crd=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            storage_version=storage,
            version=v,
            list_kind=str(names.get("listKind") or f"{kind}List"),
            terminating=condition_true(crd, "Terminating") or bool(meta.get("deletionTimestamp")),
            preserve_unknown_fields=spec.get("preserveUnknownFields") is True,
            warning=deprecation_warning(group, kind, v, versions) if v.get("deprecated") is True else None,
        )
        out.append(ResourceType(
            group=group,
            version=str(v.get("name")),
            kind=kind,
            plural=str(names.get("plural") or spec.get("names", {}).get("plural") or ""),
            singular=str(names.get("singular") or kind.lower()),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(str(s) for s in as_list(names.get("shortNames"))),
            categories=tuple(str(c) for c in as_list(names.get("categories"))),
            subresources=tuple(subresources),
            verbs=ALL_VERBS,
            definition=f"{group}/{v.get('name')}/{kind}",
            custom=custom,
        ))
    return tuple(out)


class KindsMixin:
    store: Store
    registry: Registry
    codec: Codec

    def load_custom_kinds(self) -> None:
        """Register every stored CRD's kinds (on start: CRDs and their objects outlive a restart)."""
        kvs, _ = self.store.range(CRD.key_prefix())
        for kv in kvs:
            crd = self.codec.decode(kv)
            self._crd_written(crd, str(as_dict(crd.get("metadata")).get("name") or ""))

    def _written(self, rt: ResourceType, obj: Obj | None, name: str) -> None:
        """After every stored write (or removal, `obj` None): keep the registry in step with CRDs."""
        if rt.kind == CRD.kind and rt.group == CRD.group:
            self._crd_written(obj, name)

    def _crd_written(self, crd: Obj | None, name: str) -> None:
        kinds = kinds_of(crd) if crd is not None else ()
        if kinds:
            self.registry.set_custom(name, kinds)
        else:
            self.registry.remove_custom(name)
