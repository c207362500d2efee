"""The write path's namespace policy: LimitRanges and ResourceQuotas, read from the store.

Owns `PolicyAdmissionMixin` (part of ApiCore): `_limit_ranges(namespace)` for the LimitRanger's
defaults, and `_admit_namespaced`, run by create and update (not by subresources, as kube's
LimitRanger and ResourceQuota skip them) after validation, just before the object is stored:
the LimitRanger's limits, then the ResourceQuota charge. The quotas a write charges get their new
status.used with a compare-and-swap on the revision they were read at, before the object is
written — kube's quota evaluator updates the quota status the same way before the write goes on.
Reading the quotas, the CAS and the object's own write happen with no checkpoint in between, so
concurrent writers are charged one after another: two creates can never both take the last unit
of a quota. A CAS that fails all the same (a quota written meanwhile) re-reads the quotas that
failed and re-checks the request against them, three times, then gives up with kube's 409 on the
quota. A dry run is checked but charges nothing.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestra.api.errors import conflict
from orchestra.api.policy import admission
from orchestra.api.registry import ResourceType
from orchestra.api.request.types import WriteOptions
from orchestra.objects import Obj, deep_copy, meta, name_of
from orchestra.store import CompareFailed

QUOTA_RETRIES = 3  # kube's checkQuotas(quotas, attributes, 3)


class PolicyAdmissionMixin:
    def _policy_objects(self: Any, kind: str, namespace: str) -> list[tuple[Any, Obj]]:
        """The namespace's objects of `kind` with their store KeyValues (callers must not modify
        them). Cached until the next write of any object of the kind: as current as a read of the
        store, without a range and decode on every write of a namespace that has none."""
        rt = self.registry.by_kind(kind)
        if rt is None:
            return []
        revision = self.store.prefix_revision(rt.key_prefix())
        cache: dict[str, Any] = self.__dict__.setdefault("_policy_cache", {})  # kept on the ApiCore
        if cache.get(kind, (None,))[0] != revision:
            cache[kind] = (revision, {})
        by_namespace = cache[kind][1]
        if namespace not in by_namespace:
            kvs, _ = self.store.range(rt.key_prefix(namespace))
            by_namespace[namespace] = [(kv, self._load(kv)) for kv in kvs]
        return list(by_namespace[namespace])

    def _limit_ranges(self: Any, namespace: str) -> list[Obj]:
        return [obj for _, obj in self._policy_objects("LimitRange", namespace)]

    async def _admit_namespaced(self: Any, rt: ResourceType, obj: Obj, old: Obj | None, opts: WriteOptions,
                          subresource: str = "") -> None:
        namespace = meta(obj).get("namespace")
        if not rt.namespaced or not namespace or subresource:
            return
        admission.validate_limits(rt.kind, rt.group_resource, obj, old, self._limit_ranges)
        names: set[str] | None = None  # after a failed CAS: only the quotas that failed
        for _ in range(QUOTA_RETRIES + 1):
            stored = [(kv, q) for kv, q in self._policy_objects("ResourceQuota", namespace)
                      if names is None or name_of(q) in names]
            if not stored:
                return
            charged = admission.charge_quotas(rt.group_resource, obj, old, [q for _, q in stored],
                                              datetime.now(UTC))
            if not charged or opts.dry_run:
                return
            revisions = {name_of(q): kv for kv, q in stored}
            names = {name_of(q) for q in charged if not await self._store_quota(revisions[name_of(q)], q)}
            if not names:
                return
        raise conflict("resourcequotas", min(names or {""}), group="", plural="resourcequotas")

    async def _store_quota(self: Any, kv: Any, quota: Obj) -> bool:
        """Write a charged quota over the revision it was read at; False when it changed since."""
        quota = deep_copy(quota)
        meta(quota).pop("resourceVersion", None)
        try:
            await self.store.aput(kv.key, self._encode(quota, kv.key), expect_mod_revision=kv.mod_revision)
        except CompareFailed:
            return False
        return True
