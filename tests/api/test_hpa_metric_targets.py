"""HPA metric targets that take exactly one of two fields: the causes kube words for neither and both
(validateExternalSource, validateResourceSource / validateContainerResourceSource)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestra.api.errors import Invalid
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.objects import Obj
from orchestra.store import Store

V2 = DEFAULT_REGISTRY.by_path("autoscaling", "v2", "horizontalpodautoscalers")
REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
EXTERNAL = "spec.metrics[0].external.target"
CONTAINER = "spec.metrics[0].containerResource.target"


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


def _hpa(metric: Obj) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": REF, "maxReplicas": 5, "metrics": [metric]},
    }


def _external(target: Obj) -> Obj:
    return {"type": "External", "external": {"metric": {"name": "queue"}, "target": target}}


def _container(target: Obj) -> Obj:
    return {
        "type": "ContainerResource",
        "containerResource": {"name": "cpu", "container": "web", "target": target},
    }


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            _external({"type": "Value", "value": "1", "averageValue": "1"}),
            f"{EXTERNAL}.value: Forbidden: may not set both a target value for metric and a per-pod target",
        ),
        (
            _external({"type": "Value"}),
            f"{EXTERNAL}.averageValue: Required value: must set either a target value for metric or a "
            "per-pod target",
        ),
        (
            _container({"type": "Utilization", "averageUtilization": 50, "averageValue": "1"}),
            f"{CONTAINER}.averageValue: Forbidden: may not set both a target raw value and a target "
            "utilization",
        ),
        (
            _container({"type": "Utilization"}),
            f"{CONTAINER}.averageUtilization: Required value: must set either a target raw value or a "
            "target utilization",
        ),
    ],
    ids=["external-both", "external-neither", "container-both", "container-neither"],
)
async def test_one_of_two_target_fields(core: ApiCore, metric: Obj, expected: str) -> None:
    with pytest.raises(Invalid) as info:
        await core.create(V2, "default", _hpa(metric))
    assert [f"{c.field}: {c.message}" for c in info.value.causes] == [expected]
