"""The clusterrole-aggregation controller (reconcilers/clusterroleaggregation.py) and the sum it writes
(api/policy/rbac/aggregation.py), on the real API core with kube's bootstrap roles."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from orchestra.api.policy.rbac.aggregation import aggregated_rules
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.reconcilers.clusterroleaggregation import ClusterRoleAggregationController
from tests.controller.harness import make_api, wait_for

RBAC = "rbac.authorization.k8s.io/v1"
CRONTABS = {"apiGroups": ["stable.example.com"], "resources": ["crontabs"], "verbs": ["get", "list", "watch"]}


def _role(
    name: str,
    labels: dict[str, str],
    *rules: dict[str, Any],
    selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": list(rules),
    }
    if selector is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": selector}]}
    return role


def test_the_sum_is_by_selector_then_name_each_rule_once() -> None:
    a = {"verbs": ["get"], "apiGroups": [""], "resources": ["a"]}
    b = {"verbs": ["get"], "apiGroups": [""], "resources": ["b"]}
    agg = _role("agg", {"x": "1"}, selector={"x": "1"})
    roles = [
        agg,
        _role("zeta", {"x": "1"}, a),
        _role("alpha", {"x": "1"}, b, a),
        _role("other", {"x": "2"}, b),
    ]
    assert aggregated_rules(agg, roles) == [b, a]  # alpha first; the role itself is never gathered


async def test_admin_edit_view_gather_their_aggregates_and_follow_new_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = await make_api()
    await ensure_bootstrap_policy(api.core)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(ClusterRoleAggregationController(api.client).run)

            def rules(name: str) -> list[dict[str, Any]]:
                return (api.get("ClusterRole", name, None) or {}).get("rules") or []

            await wait_for(api, lambda: rules("view") and rules("edit") and rules("admin"))
            view, edit, admin = rules("view"), rules("edit"), rules("admin")
            assert view == api.get("ClusterRole", "system:aggregate-to-view", None)["rules"]  # type: ignore[index]
            assert all(r in edit for r in view) and all(r in admin for r in edit)
            assert {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings", "roles"],
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            } in admin and all("roles" not in r.get("resources", []) for r in edit)
            # a CRD's role labelled aggregate-to-view reaches view, edit and admin
            await api.create(
                "ClusterRole",
                _role("crontab-reader", {"rbac.authorization.k8s.io/aggregate-to-view": "true"}, CRONTABS),
                None,
            )
            await wait_for(api, lambda: CRONTABS in rules("view") and CRONTABS in rules("admin"))
            await api.client.delete(api.rt("ClusterRole"), None, "crontab-reader")
            await wait_for(api, lambda: CRONTABS not in rules("view") and CRONTABS not in rules("admin"))
            nursery.cancel_scope.cancel()
