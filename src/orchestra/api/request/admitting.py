"""The core's side of the configurable admission plugins (api/policy/admission.py's seam).

Owns: `AdmissionMixin._admit` (run the plugins the core was given, in order, on one create or
update of any kind, custom resources included: `Attributes.group` tells a custom kind from a built-in
one of the same name) and `lookup(kind, namespace, name)`, the fresh read of another object that plugins use.
A mixin of `ApiCore` (core.py), like deletion.py and serverside.py.
Must not import: core.py (it is one of its bases), api/tables or anything above the api layer.
"""

from __future__ import annotations

from orchestra.api.policy.admission import AdmissionPlugin, Attributes
from orchestra.api.registry import Registry, ResourceType
from orchestra.api.request.stored import Codec, meta, with_rv
from orchestra.api.request.types import WriteOptions
from orchestra.objects import Obj
from orchestra.store import Store


class AdmissionMixin:
    store: Store
    codec: Codec
    registry: Registry
    admission: tuple[AdmissionPlugin, ...]

    async def _admit(self, operation: str, rt: ResourceType, namespace: str | None, obj: Obj,
                     old: Obj | None, opts: WriteOptions, subresource: str = "") -> None:
        """Each plugin may change `obj` or refuse the write (an ApiError)."""
        if not self.admission:
            return
        attributes = Attributes(operation, rt.kind, namespace, str(meta(obj).get("name") or ""), obj, old,
                                opts.user, self.lookup, subresource, group=rt.group)
        for plugin in self.admission:
            await plugin.admit(attributes)

    def lookup(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The stored object (a fresh copy, decrypted when its kind is encrypted at rest), or None."""
        rt = self.registry.by_kind(kind)
        kv = self.store.get(rt.key(namespace, name)) if rt is not None else None
        return with_rv(self.codec.decode(kv), kv) if kv is not None else None


__all__ = ["AdmissionMixin"]
