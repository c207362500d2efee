"""kube-controller-manager's clusterrole-aggregation controller.

Owns: keeping every ClusterRole that has an aggregationRule holding the rules of the ClusterRoles its
selectors pick (api/policy/rbac/aggregation.py computes them: by selector, then by role name, each
rule once). Any ClusterRole change queues every aggregated role (a label or a rule anywhere may change
what one gathers); a role whose rules already match is left alone; a Conflict re-queues it.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.policy.rbac.aggregation import aggregated_rules, selectors
from orchestra.client.base import Client
from orchestra.controller import Controller, Result
from orchestra.objects import Obj, deep_copy, name_of


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation-controller"

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.roles = self.informer("ClusterRole")
        self.enqueue_on(self.roles, self._aggregated_keys)

    def _aggregated_keys(self, _t: str, _old: Obj | None, _new: Obj | None) -> list[str]:
        return [name_of(role) for role in self.roles.list() if selectors(role)]

    async def reconcile(self, key: str) -> Result | None:
        role = self.roles.get(None, key)
        if role is None or not selectors(role):
            return None
        rules = aggregated_rules(role, self.roles.list())
        if rules == (role.get("rules") or []):
            return None
        updated = deep_copy(role)
        updated["rules"] = rules
        await self.client.update(self.roles.rt, updated)  # a Conflict re-queues with the fresh object
        return None
