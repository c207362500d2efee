"""The bootstrap RBAC policy at start: kube-apiserver's rbac/bootstrap-roles post-start hook.

Owns: `ensure_bootstrap_policy(core)`: every ClusterRole and ClusterRoleBinding of
api/policy/rbac/bootstrap.py, and its namespaced Roles and RoleBindings (their namespace made when
missing, as kube's hook does), is created when missing and otherwise reconciled additively
(api/policy/rbac/reconcile.py): what the wanted object has is added, nothing the administrator added
is removed, and an object annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` is left
as it is. A binding whose roleRef differs is deleted and created again. Writes go through the API
core on the trusted in-process path, like every bootstrap object.
Must not import: cli.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra.api.errors import AlreadyExists, Conflict, NotFound
from orchestra.api.policy.rbac.bootstrap import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    NAMESPACED_ROLE_BINDINGS,
    NAMESPACED_ROLES,
)
from orchestra.api.policy.rbac.reconcile import reconcile_binding, reconcile_role
from orchestra.api.request.core import ApiCore
from orchestra.api.request.deletion import DeleteOptions

log = logging.getLogger("orchestra")


async def ensure_bootstrap_policy(core: ApiCore) -> None:
    kinds: dict[str, Any] = {kind: core.registry.by_kind(kind) for kind in (
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Namespace")}
    for wanted in CLUSTER_ROLES:
        await _ensure(core, kinds["ClusterRole"], wanted, _reconcile_role)
    for wanted in CLUSTER_ROLE_BINDINGS:
        await _ensure(core, kinds["ClusterRoleBinding"], wanted, reconcile_binding)
    for namespace in {o["metadata"]["namespace"] for o in (*NAMESPACED_ROLES, *NAMESPACED_ROLE_BINDINGS)}:
        try:
            await core.create(kinds["Namespace"], None, {"metadata": {"name": namespace}})
        except AlreadyExists:
            pass  # the usual case: bootstrap() made the system namespaces first
    for wanted in NAMESPACED_ROLES:
        await _ensure(core, kinds["Role"], wanted, _reconcile_role)
    for wanted in NAMESPACED_ROLE_BINDINGS:
        await _ensure(core, kinds["RoleBinding"], wanted, reconcile_binding)


def _reconcile_role(existing: dict[str, Any], wanted: dict[str, Any]) -> tuple[Any, bool]:
    return reconcile_role(existing, wanted), False  # a role is updated in place, never re-created


async def _ensure(core: ApiCore, rt: Any, wanted: dict[str, Any], reconcile: Any) -> None:
    name, namespace = wanted["metadata"]["name"], wanted["metadata"].get("namespace")
    try:
        existing = core.get(rt, namespace, name)
    except NotFound:
        try:
            await core.create(rt, namespace, wanted)
        except AlreadyExists:
            pass  # made meanwhile: next start reconciles it
        return
    updated, recreate = reconcile(existing, wanted)
    if updated is None:
        return
    try:
        if recreate:
            log.info("re-creating %s %s: its roleRef changed", rt.kind, name)
            await core.delete(rt, namespace, name, DeleteOptions())
            updated["metadata"] = {
                k: v
                for k, v in updated["metadata"].items()
                if k not in ("uid", "resourceVersion", "creationTimestamp")
            }
            await core.create(rt, namespace, updated)
        else:
            await core.update(rt, namespace, name, updated)
    except (Conflict, AlreadyExists, NotFound) as exc:  # changed meanwhile: the next start reconciles again
        log.warning("could not reconcile %s %s: %s", rt.kind, name, exc)
