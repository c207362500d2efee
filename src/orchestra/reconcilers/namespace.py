"""Namespace lifecycle: deleting a namespace deletes everything in it, then finalizes it.

Owns: for a Namespace with a deletionTimestamp whose spec.finalizers holds "kubernetes" —
  1. delete every object of every namespaced kind in it, custom kinds included (listed through the
     API, like kube's namespaced-resources deleter; already-terminating objects are left to finish);
  2. while something remains (pods in their grace period, objects held by finalizers), re-check
     after the longest remaining pod grace period, else with backoff capped at 60 s (kube's
     namespace controller rate limiter);
  3. once empty, finalize: update the Namespace with "kubernetes" removed from spec.finalizers
     (the `finalize` subresource's effect); the API core removes it when no finalizers remain.
While content remains, status conditions like kube's are written (NamespaceDeletionContentFailure,
NamespaceContentRemaining, NamespaceFinalizersRemaining); `report_conditions=False` turns that off.
The API core keeps a terminating Namespace while spec.finalizers or metadata.finalizers is non-empty.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from orchestra.api.errors import ApiError, Conflict, NotFound
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.controller import (
    Controller,
    ExponentialBackoff,
    RateLimiter,
    Result,
    TemporaryError,
    registry_of,
)
from orchestra.objects import Obj, deep_copy, is_terminating, now_rfc3339

log = logging.getLogger("orchestra.reconcilers.namespace")

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespace-controller"

    def __init__(
        self, client: Client, *, workers: int = 1, report_conditions: bool = True, **kwargs: Any
    ) -> None:
        kwargs.setdefault("rate_limiter", RateLimiter(ExponentialBackoff(cap=60.0)))
        super().__init__(client, workers=workers, **kwargs)
        self.report_conditions = report_conditions
        self.namespaces = self.informer("Namespace")
        self.enqueue_on(
            self.namespaces,
            lambda _t, _old, new: [new["metadata"]["name"]] if new and is_terminating(new) else [],
        )
        self.registry = registry_of(client)

    @property
    def kinds(self) -> list[ResourceType]:
        """Every namespaced kind served now (custom kinds come and go with their CRDs)."""
        return [rt for rt in self.registry.types if rt.namespaced and {"list", "delete"} <= set(rt.verbs)]

    async def reconcile(self, key: str) -> Result | None:
        ns = self.namespaces.get(None, key)
        if ns is None or not is_terminating(ns):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None  # finalized already; other finalizers belong to others
        left = await self._delete_content(key)
        if left.remaining or left.failures:
            await self._set_conditions(ns, left)
            if left.failures:
                raise TemporaryError("; ".join(left.failures))
            if left.estimate > 0:
                return Result(requeue_after=float(left.estimate))
            raise TemporaryError(
                f"namespace {key} still has {sum(left.remaining.values())} object(s) being finalized"
            )
        await self._finalize(key)
        return None

    async def _delete_content(self, namespace: str) -> _Left:
        """Delete what is left; report what remains, what failed, and the longest pod grace."""
        left = _Left()
        for rt in self.kinds:
            try:
                items, _ = await self.client.list(rt, namespace)
            except ApiError as exc:
                left.failures.append(f"failed to list {rt.group_resource}: {exc}")
                continue
            for obj in items:
                await self._delete_one(rt, namespace, obj, left)
        return left

    async def _delete_one(self, rt: ResourceType, namespace: str, obj: Obj, left: _Left) -> None:
        m = obj["metadata"]
        if not m.get("deletionTimestamp"):
            try:
                after = await self.client.delete(rt, namespace, m["name"], uid=m.get("uid"))
            except (NotFound, Conflict):
                return  # gone already, or replaced by a new object the next pass sees
            except ApiError as exc:
                left.failures.append(f"failed to delete {rt.group_resource} {m['name']}: {exc}")
                return
            if after is None:
                return
            m = after["metadata"]
        left.remaining[rt.group_resource] = left.remaining.get(rt.group_resource, 0) + 1
        for f in m.get("finalizers") or []:
            left.finalizers[f] = left.finalizers.get(f, 0) + 1
        if not m.get("finalizers"):
            left.estimate = max(left.estimate, int(m.get("deletionGracePeriodSeconds") or 0))

    async def _finalize(self, name: str) -> None:
        """PUT namespaces/{name}/finalize with our finalizer dropped from spec.finalizers."""
        rt = self.namespaces.rt
        try:
            live = await self.client.get(rt, None, name)
        except NotFound:
            return
        new = deep_copy(live)
        spec = new.setdefault("spec", {})
        # An empty list, not a missing key: defaulting would put "kubernetes" back.
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        finalize = getattr(self.client, "finalize_namespace", None)
        if finalize is not None:  # the finalize subresource, when the client offers it
            await finalize(new)
        else:  # today's Client protocol: a plain update (carries live's resourceVersion)
            await self.client.update(rt, new)

    async def _set_conditions(self, ns: Obj, left: _Left) -> None:
        """kube's namespace deletion conditions (same types, reasons and message shapes)."""
        if not self.report_conditions:
            return
        now = now_rfc3339()
        content = ", ".join(f"{r} has {n} resource instances" for r, n in sorted(left.remaining.items()))
        fins = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(left.finalizers.items()))
        conds = [
            _cond(
                "NamespaceDeletionDiscoveryFailure",
                False,
                "ResourcesDiscovered",
                "All resources successfully discovered",
                now,
            ),
            _cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                False,
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
                now,
            ),
            _cond(
                "NamespaceDeletionContentFailure",
                bool(left.failures),
                "ContentDeletionFailed" if left.failures else "ContentDeleted",
                "; ".join(left.failures)
                or "All content successfully deleted, may be waiting on finalization",
                now,
            ),
            _cond(
                "NamespaceContentRemaining",
                bool(left.remaining),
                "SomeResourcesRemain" if left.remaining else "ContentRemoved",
                f"Some resources are remaining: {content}"
                if left.remaining
                else "All content successfully removed",
                now,
            ),
            _cond(
                "NamespaceFinalizersRemaining",
                bool(left.finalizers),
                "SomeFinalizersRemain" if left.finalizers else "ContentHasNoFinalizers",
                f"Some content in the namespace has finalizers remaining: {fins}"
                if left.finalizers
                else "All content-preserving finalizers finished",
                now,
            ),
        ]
        new = deep_copy(ns)
        old = {c.get("type"): c for c in (new.get("status") or {}).get("conditions") or []}
        for c in conds:
            prev = old.get(c["type"])
            if prev and prev.get("status") == c["status"]:
                c["lastTransitionTime"] = prev.get("lastTransitionTime", now)
        new.setdefault("status", {})["conditions"] = conds
        if new != ns:
            await self.client.update_status(self.namespaces.rt, new)


@attrs.define
class _Left:
    remaining: dict[str, int] = attrs.field(factory=dict)  # group resource -> objects left
    finalizers: dict[str, int] = attrs.field(factory=dict)  # finalizer -> objects it holds
    failures: list[str] = attrs.field(factory=list)
    estimate: int = 0  # the longest grace period of an object terminating without finalizers


def _cond(type_: str, true: bool, reason: str, message: str, now: str) -> Obj:
    return {"type": type_, "status": "True" if true else "False", "reason": reason, "message": message,
            "lastTransitionTime": now}
