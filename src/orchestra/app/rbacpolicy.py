"""The bootstrap RBAC policy at start: kube-apiserver's rbac/bootstrap-roles post-start hook.

Owns: `ensure_bootstrap_policy(core)`: every ClusterRole and ClusterRoleBinding of
api/policy/rbac/bootstrap.py is created when missing and otherwise reconciled additively
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
from orchestra.api.policy.rbac.bootstrap import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES
from orchestra.api.policy.rbac.reconcile import reconcile_binding, reconcile_role
from orchestra.api.request.core import ApiCore
from orchestra.api.request.deletion import DeleteOptions

log = logging.getLogger("orchestra")


async def ensure_bootstrap_policy(core: ApiCore) -> None:
    roles, bindings = core.registry.by_kind("ClusterRole"), core.registry.by_kind("ClusterRoleBinding")
    assert roles is not None and bindings is not None
    for wanted in CLUSTER_ROLES:
        await _ensure(core, roles, wanted, lambda old, new: (reconcile_role(old, new), False))
    for wanted in CLUSTER_ROLE_BINDINGS:
        await _ensure(core, bindings, wanted, reconcile_binding)


async def _ensure(core: ApiCore, rt: Any, wanted: dict[str, Any], reconcile: Any) -> None:
    name = wanted["metadata"]["name"]
    try:
        existing = core.get(rt, None, name)
    except NotFound:
        try:
            await core.create(rt, None, wanted)
        except AlreadyExists:
            pass  # made meanwhile: next start reconciles it
        return
    updated, recreate = reconcile(existing, wanted)
    if updated is None:
        return
    try:
        if recreate:
            log.info("re-creating %s %s: its roleRef changed", rt.kind, name)
            await core.delete(rt, None, name, DeleteOptions())
            updated["metadata"] = {
                k: v
                for k, v in updated["metadata"].items()
                if k not in ("uid", "resourceVersion", "creationTimestamp")
            }
            await core.create(rt, None, updated)
        else:
            await core.update(rt, None, name, updated)
    except (Conflict, AlreadyExists, NotFound) as exc:  # changed meanwhile: the next start reconciles again
        log.warning("could not reconcile %s %s: %s", rt.kind, name, exc)
