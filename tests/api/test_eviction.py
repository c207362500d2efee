"""pods/eviction honours PodDisruptionBudgets (kube-apiserver's EvictionREST): the API core with
budgets whose status is written by hand (as the disruption controller would), then the HTTP shape
of the answers through the ASGI app in process."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orchestra.api.errors import BadRequest, InternalError, TooManyRequests
from orchestra.api.request.eviction import MULTIPLE_BUDGETS, VIOLATES_BUDGET, check_and_decrement, evict
from orchestra.apiserver.server import ApiServer
from tests.controller.harness import Api, make_api, pod, set_pod_status

Obj = dict[str, Any]
NOW = "2025-01-01T00:00:00Z"


def now() -> str:
    return NOW


def eviction(name: str, **delete_options: Any) -> Obj:
    body: Obj = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"},
    }
    return {**body, "deleteOptions": delete_options} if delete_options else body


async def api_with_pods(*names: str, ready: bool = True, phase: str = "Running") -> Api:
    api = await make_api()
    for name in names:
        await api.create("Pod", pod(name, labels={"app": "web"}))
        await set_pod_status(api, name, ready=ready, phase=phase)
    return api


async def budget(
    api: Api,
    name: str = "web",
    *,
    allowed: int,
    current: int = 3,
    desired: int = 2,
    lag: bool = False,
    selector: Obj | None = None,
    **spec: Any,
) -> Obj:
    """A budget whose status the disruption controller has (or, with lag, has not yet) computed."""
    created = await api.create(
        "PodDisruptionBudget",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
                "minAvailable": 2,
                **spec,
            },
        },
    )
    created["status"] = {
        "observedGeneration": 0 if lag else 1,
        "disruptionsAllowed": allowed,
        "currentHealthy": current,
        "desiredHealthy": desired,
        "expectedPods": 3,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "True" if allowed else "False",
                "observedGeneration": 1,
                "lastTransitionTime": "2024-12-31T00:00:00Z",
                "reason": "SufficientPods" if allowed else "InsufficientPods",
                "message": "",
            }
        ],
    }
    return await api.client.update_status(api.rt("PodDisruptionBudget"), created)


def pdb_status(api: Api, name: str = "web") -> Obj:
    obj = api.get("PodDisruptionBudget", name)
    assert obj is not None
    return obj["status"]  # type: ignore[no-any-return]


async def test_without_a_budget_the_pod_is_deleted() -> None:
    api = await api_with_pods("p")
    await evict(api.core, "default", "p", eviction("p"))
    assert api.get("Pod", "p") is None


async def test_an_allowed_eviction_spends_the_budget_and_records_the_pod() -> None:
    api = await api_with_pods("p", "q", "r")
    before = await budget(api, allowed=1)
    await evict(api.core, "default", "p", eviction("p"), now=now)
    assert api.get("Pod", "p") is None
    st = pdb_status(api)
    assert st["disruptionsAllowed"] == 0 and st["disruptedPods"] == {"p": NOW}
    assert st["conditions"] == [{"type": "DisruptionAllowed", "status": "False", "observedGeneration": 1,
                                 "lastTransitionTime": NOW, "reason": "InsufficientPods", "message": ""}]
    assert (st["currentHealthy"], st["desiredHealthy"]) == (
        before["status"]["currentHealthy"],
        2,
    )  # the controller's job


async def test_the_condition_stays_while_disruptions_remain() -> None:
    api = await api_with_pods("p", "q", "r")
    await budget(api, allowed=2, desired=1)
    await evict(api.core, "default", "p", eviction("p"), now=now)
    st = pdb_status(api)
    assert st["disruptionsAllowed"] == 1 and st["conditions"][0]["reason"] == "SufficientPods"


async def test_an_exhausted_budget_refuses_with_429_and_a_cause() -> None:
    api = await api_with_pods("p", "q")
    await budget(api, allowed=0, current=2, desired=2)
    with pytest.raises(TooManyRequests) as err:
        await evict(api.core, "default", "p", eviction("p"))
    assert err.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": VIOLATES_BUDGET,
        "reason": "TooManyRequests",
        "code": 429,
        "details": {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
                }
            ]
        },
    }
    p = api.get("Pod", "p")
    assert p is not None and [c["type"] for c in p["status"]["conditions"]] == ["Ready"]  # untouched


async def test_a_budget_the_controller_has_not_seen_yet_is_429_retry_after_10() -> None:
    api = await api_with_pods("p")
    await budget(api, allowed=1, lag=True)
    with pytest.raises(TooManyRequests) as err:
        await evict(api.core, "default", "p", eviction("p"))
    assert err.value.retry_after == 10
    assert err.value.causes[0].message == "The disruption budget web is still being processed by the server."
    assert api.get("Pod", "p") is not None


async def test_two_budgets_are_a_bare_500() -> None:
    api = await api_with_pods("p")
    await budget(api, "a", allowed=1)
    await budget(api, "b", allowed=1)
    with pytest.raises(InternalError) as err:
        await evict(api.core, "default", "p", eviction("p"))
    status = err.value.status()
    assert (status["code"], status["message"], "reason" in status) == (500, MULTIPLE_BUDGETS, False)


@pytest.mark.parametrize("phase", ["Pending", "Succeeded", "Failed"])
async def test_pods_that_are_not_running_go_regardless(phase: str) -> None:
    api = await api_with_pods("p", ready=False, phase=phase)
    await budget(api, allowed=0)
    await evict(api.core, "default", "p", eviction("p"))
    assert api.get("Pod", "p") is None
    assert pdb_status(api)["disruptionsAllowed"] == 0 and "disruptedPods" not in pdb_status(api)


# (unhealthyPodEvictionPolicy, currentHealthy, desiredHealthy) -> evicted without spending the budget?
UNHEALTHY_CASES = [
    ("default-budget-met", None, 2, 2, True),
    ("default-budget-not-met", None, 1, 2, False),
    ("default-nothing-desired", None, 0, 0, False),
    ("if-healthy-budget-met", "IfHealthyBudget", 3, 2, True),
    ("always-allow", "AlwaysAllow", 0, 2, True),
]


@pytest.mark.parametrize(("policy", "current", "desired", "evicted"), [c[1:] for c in UNHEALTHY_CASES],
                         ids=[c[0] for c in UNHEALTHY_CASES])
async def test_unready_pods(policy: str | None, current: int, desired: int, evicted: bool) -> None:
    api = await api_with_pods("p", ready=False)
    spec = {"unhealthyPodEvictionPolicy": policy} if policy else {}
    await budget(api, allowed=0, current=current, desired=desired, **spec)
    if evicted:
        await evict(api.core, "default", "p", eviction("p"))
        assert api.get("Pod", "p") is None
    else:
        with pytest.raises(TooManyRequests):
            await evict(api.core, "default", "p", eviction("p"))
        assert api.get("Pod", "p") is not None
    assert pdb_status(api)["disruptionsAllowed"] == 0 and "disruptedPods" not in pdb_status(api)


async def test_an_empty_selector_covers_nothing_for_eviction() -> None:
    api = await api_with_pods("p")
    await budget(api, allowed=0, selector={})
    await evict(api.core, "default", "p", eviction("p"))
    assert api.get("Pod", "p") is None


async def test_dry_run_checks_the_budget_but_writes_nothing() -> None:
    api = await api_with_pods("p", "q")
    before = await budget(api, allowed=1)
    await evict(api.core, "default", "p", eviction("p", dryRun=["All"]))
    assert api.get("Pod", "p") is not None
    assert (
        api.get("PodDisruptionBudget", "web")["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    )  # type: ignore[index]
    await budget(api, "web2", allowed=0, selector={"matchLabels": {"app": "other"}})
    await api.client.delete(api.rt("PodDisruptionBudget"), "default", "web")
    await budget(api, allowed=0)
    with pytest.raises(TooManyRequests):
        await evict(api.core, "default", "q", eviction("q", dryRun=["All"]))


async def test_the_evicted_pod_gets_the_disruption_target_condition_before_its_graceful_delete() -> None:
    api = await make_api()
    await api.create("Pod", pod("p", labels={"app": "web"}, node="n1"))  # bound: the delete is graceful
    await set_pod_status(api, "p", ready=True)
    await budget(api, allowed=1)
    await evict(api.core, "default", "p", eviction("p"), now=now)
    p = api.get("Pod", "p")
    assert p is not None and p["metadata"]["deletionTimestamp"]
    assert p["status"]["conditions"][-1] == {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "lastTransitionTime": NOW,
    }
    await evict(
        api.core, "default", "p", eviction("p")
    )  # terminating: evicted again without touching the budget
    assert pdb_status(api)["disruptedPods"] == {"p": NOW}


async def test_a_stale_budget_is_reread_after_a_conflict() -> None:
    api = await api_with_pods("p", "q", "r")
    stale = await budget(api, allowed=2, desired=1)
    await budget_update(api, disruptionsAllowed=1)  # someone else spent one meanwhile
    await check_and_decrement(api.core, stale, "p", dry_run=False, now=now)
    st = pdb_status(api)
    assert st["disruptionsAllowed"] == 0 and st["disruptedPods"] == {"p": NOW}


async def budget_update(api: Api, **status: Any) -> None:
    obj = api.get("PodDisruptionBudget", "web")
    assert obj is not None
    obj["status"].update(status)
    await api.client.update_status(api.rt("PodDisruptionBudget"), obj)


async def test_the_eviction_must_name_the_pod() -> None:
    api = await api_with_pods("p")
    for body in ({"metadata": {"name": "q"}}, {"kind": "Eviction"}, None):
        with pytest.raises(BadRequest, match=r"^name in URL does not match name in Eviction object$"):
            await evict(api.core, "default", "p", body)
    assert api.get("Pod", "p") is not None


# --- over HTTP (the ASGI app in process) ------------------------------------------------------------


async def post_eviction(server: ApiServer, name: str) -> tuple[int, dict[str, str], Obj]:
    body = orjson.dumps(
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    )
    scope = {"type": "http", "method": "POST", "path": f"/api/v1/namespaces/default/pods/{name}/eviction",
             "query_string": b"", "headers": [(b"content-type", b"application/json")]}
    sent: list[Obj] = []

    async def receive() -> Obj:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg: Obj) -> None:
        sent.append(dict(msg))

    await server(scope, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))


async def test_http_answers() -> None:
    api = await api_with_pods("p", "q", "r")
    await budget(api, allowed=1)
    server = ApiServer(api.core, token=None)
    code, _, body = await post_eviction(server, "p")
    assert (code, body["status"]) == (201, "Success")
    code, headers, body = await post_eviction(server, "q")
    assert (code, body["reason"], body["message"]) == (429, "TooManyRequests", VIOLATES_BUDGET)
    assert "retry-after" not in headers and "retryAfterSeconds" not in body["details"]
    obj = api.get("PodDisruptionBudget", "web")
    assert obj is not None
    obj["spec"]["minAvailable"] = 1  # generation 2, not yet observed
    await api.client.update(api.rt("PodDisruptionBudget"), obj)
    code, headers, body = await post_eviction(server, "q")
    assert (code, headers["retry-after"], body["details"]["retryAfterSeconds"]) == (429, "10", 10)
    code, _, body = await post_eviction(server, "nope")
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'pods "nope" not found')
