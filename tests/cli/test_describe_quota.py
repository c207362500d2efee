"""`orchestra describe` of quotas, limit ranges and a namespace's quota/limit sections, laid out as
kubectl 1.32 prints them."""

from __future__ import annotations

from orchestra.cli.describe import describe_namespace
from orchestra.cli.describe_quota import describe_limit_range, describe_resource_quota

QUOTA = {
    "metadata": {"name": "compute", "namespace": "team"},
    "spec": {"hard": {"pods": "10", "limits.memory": "1Gi"}, "scopes": ["NotTerminating", "BestEffort"]},
    "status": {
        "hard": {"pods": "10", "limits.memory": "1Gi"},
        "used": {"pods": "2", "limits.memory": "256Mi"},
    },
}
LIMITS = {
    "metadata": {"name": "limits", "namespace": "team"},
    "spec": {
        "limits": [
            {
                "type": "Container",
                "max": {"cpu": "1"},
                "default": {"cpu": "500m", "memory": "128Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            }
        ]
    },
}


def test_describe_quota() -> None:
    assert describe_resource_quota(QUOTA) == (
        "Name:       compute\n"  # the bullet lines end this block of columns
        "Namespace:  team\n"
        "Scopes:     BestEffort, NotTerminating\n"
        " * Matches all pods that do not have resource requirements set. These pods have a best effort "
        "quality of service.\n"
        " * Matches all pods that do not have an active deadline. These pods usually include long running "
        "pods whose container command is not expected to terminate.\n"
        "Resource       Used   Hard\n"
        "--------       ----   ----\n"
        "limits.memory  256Mi  1Gi\n"
        "pods           2      10\n"
    )


def test_describe_limit_range() -> None:
    assert describe_limit_range(LIMITS) == (
        "Name:       limits\n"
        "Namespace:  team\n"
        "Type        Resource  Min  Max  Default Request  Default Limit  Max Limit/Request Ratio\n"
        "----        --------  ---  ---  ---------------  -------------  -----------------------\n"
        "Container   cpu       -    1    100m             500m           -\n"
        "Container   memory    -    -    128Mi            128Mi          -\n"
    )


def test_describe_namespace_lists_its_quotas_and_limits() -> None:
    ns = {"metadata": {"name": "team"}, "status": {"phase": "Active"}}
    assert describe_namespace(ns).endswith(
        "Status:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n"
    )
    text = describe_namespace(ns, [{**QUOTA, "spec": {**QUOTA["spec"], "scopes": []}}], [LIMITS])
    assert text.split("Status:       Active\n\n")[1] == (
        "Resource Quotas\n"
        "  Name:          compute\n"
        "  Resource       Used   Hard\n"
        "  --------       ---    ---\n"
        "  limits.memory  256Mi  1Gi\n"
        "  pods           2      10\n"
        "\n"
        "Resource Limits\n"
        " Type       Resource  Min  Max  Default Request  Default Limit  Max Limit/Request Ratio\n"
        " ----       --------  ---  ---  ---------------  -------------  -----------------------\n"
        " Container  cpu       -    1    100m             500m           -\n"
        " Container  memory    -    -    128Mi            128Mi          -\n"
    )
