"""pods/eviction (policy/v1 Eviction): a pod delete that honours PodDisruptionBudgets, as
kube-apiserver 1.32's EvictionREST does it.

Owns, for one Eviction of one pod:
  * the body (its metadata.name must be the pod's; deleteOptions: grace period, preconditions, dryRun);
  * pods whose disruption has already happened (Pending, Succeeded, Failed, or terminating) are
    deleted without looking at budgets;
  * otherwise the budgets whose selector matches the pod (an empty selector matches nothing here):
    more than one is a bare 500 Status; none means a plain delete; an unready pod may go without
    spending the budget when the policy is AlwaysAllow, or the budget is met (IfHealthyBudget, the
    default) — the delete then carries the pod's resourceVersion, and a conflict is a 429;
  * the budget check: status not yet of the current generation -> 429 "still being processed"
    (Retry-After 10); disruptionsAllowed 0 -> 429 with a DisruptionBudget cause; else decrement
    disruptionsAllowed and record the pod in status.disruptedPods (compare-and-swap on the budget's
    resourceVersion, re-read and retried on conflict), then delete;
  * before the delete, the pod gets the DisruptionTarget condition (EvictionByEvictionAPI).
Must not import: anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from orchestra.api.errors import BadRequest, Cause, Conflict, Forbidden, InternalError, TooManyRequests
from orchestra.api.policy import pdb as budgets
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.deletion import DeleteOptions
from orchestra.api.request.deletion import delete_options as options_from
from orchestra.api.request.typemeta import check_body_types
from orchestra.objects import Obj, as_dict, deep_copy, is_pod_ready, now_rfc3339

CONFLICT_RETRIES = 20  # kube's EvictionsRetry steps (without its 500 ms sleeps: the store is in-process)
MAX_DISRUPTED_PODS = 2000
EVICTION = "io.k8s.api.policy.v1.Eviction"
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
VIOLATES_BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)
Clock = Callable[[], str]


class MultipleBudgets(InternalError):
    """kube answers with a bare Status{Failure, code 500, message}: no reason."""

    reason = ""


def too_many_requests(pdb_name: str) -> TooManyRequests:
    """createTooManyRequestsError: the budget's status lags its spec (or the pod turned ready)."""
    return TooManyRequests(
        VIOLATES_BUDGET,
        retry_after=10,
        causes=[
            Cause(
                DISRUPTION_BUDGET_CAUSE,
                f"The disruption budget {pdb_name} is still being processed by the server.",
            )
        ],
    )


def _forbidden(pdb_name: str, why: str) -> Forbidden:
    return Forbidden(
        f'poddisruptionbudget.policy "{pdb_name}" is forbidden: {why}',
        name=pdb_name,
        group="policy",
        kind="poddisruptionbudget",
    )


def delete_options(body: Any, name: str, schema: Any) -> DeleteOptions:
    """The Eviction body's deleteOptions (400 for a body that is not an Eviction of this pod, or
    has a value of the wrong JSON type)."""
    body = body if body is not None else {}
    check_body_types(schema, body, EVICTION, kind="Eviction", version="v1")
    if as_dict(body.get("metadata")).get("name") != name:  # kube: also when the Eviction names no pod
        raise BadRequest("name in URL does not match name in Eviction object")
    return options_from(as_dict(body.get("deleteOptions")))


def _rv(obj: Obj) -> str:
    return str(as_dict(obj.get("metadata")).get("resourceVersion") or "")


def _can_ignore_budgets(pod: Obj) -> bool:
    """canIgnorePDB: the pod's disruption already happened (or it never ran)."""
    phase = as_dict(pod.get("status")).get("phase")
    return phase in ("Pending", "Succeeded", "Failed") or bool(
        as_dict(pod.get("metadata")).get("deletionTimestamp")
    )


def _enforce_rv(pod: Obj) -> bool:
    """shouldEnforceResourceVersion: a Pending pod must not turn healthy between check and delete."""
    phase = as_dict(pod.get("status")).get("phase")
    return phase not in ("Succeeded", "Failed") and not as_dict(pod.get("metadata")).get("deletionTimestamp")


def _rt(core: ApiCore, kind: str) -> ResourceType:
    rt = core.registry.by_kind(kind)
    assert rt is not None, kind
    return rt


async def evict(core: ApiCore, namespace: str, name: str, body: Any, *, now: Clock = now_rfc3339) -> None:
    """Evict pod `namespace/name` (see the module docstring); raises the ApiError kube would answer."""
    opts = delete_options(body, name, core.schema)
    pod = await _delete_if_already_disrupted(core, core.get(_rt(core, "Pod"), namespace, name), opts, now)
    if pod is None:
        return
    matching = [b for b in core.list(_rt(core, "PodDisruptionBudget"), namespace).items
                if budgets.selects(b, pod, empty_selects_all=False)]
    if len(matching) > 1:
        raise MultipleBudgets(MULTIPLE_BUDGETS)
    guard = False  # the delete must see the pod exactly as it was judged (unready)
    if matching:
        if not is_pod_ready(pod) and _unhealthy_may_go(matching[0]):
            guard = True
        else:
            await check_and_decrement(core, matching[0], name, dry_run=opts.dry_run, now=now)
    guarded = attrs.evolve(opts, resource_version=_rv(pod)) if guard and not opts.resource_version else opts
    try:
        await _mark_and_delete(core, pod, guarded, now)
    except Conflict:
        if guard and not opts.resource_version:  # it turned ready meanwhile: let the client retry
            raise too_many_requests(str(matching[0]["metadata"]["name"])) from None
        raise


async def _delete_if_already_disrupted(
    core: ApiCore, pod: Obj, opts: DeleteOptions, now: Clock
) -> Obj | None:
    """Delete a pod whose budgets need no checking (None: done); else the pod, as last read. A
    conflict re-reads the pod, unless the caller gave a resourceVersion precondition."""
    for attempt in range(CONFLICT_RETRIES):
        if not _can_ignore_budgets(pod):
            return pod
        guarded = (
            opts
            if opts.resource_version or not _enforce_rv(pod)
            else attrs.evolve(opts, resource_version=_rv(pod))
        )
        try:
            await _mark_and_delete(core, pod, guarded, now)
            return None
        except Conflict:
            if opts.resource_version or attempt == CONFLICT_RETRIES - 1:
                raise
            m = pod["metadata"]
            pod = core.get(_rt(core, "Pod"), m["namespace"], m["name"])
    raise AssertionError("unreachable: the last attempt returns or raises")


def _unhealthy_may_go(pdb: Obj) -> bool:
    """An unready pod is evicted without spending the budget with AlwaysAllow, or (IfHealthyBudget,
    the default) while the budget is met."""
    if as_dict(pdb.get("spec")).get("unhealthyPodEvictionPolicy") == budgets.ALWAYS_ALLOW:
        return True
    status = as_dict(pdb.get("status"))
    current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
    return current >= desired and desired > 0


async def check_and_decrement(core: ApiCore, pdb: Obj, pod_name: str, *, dry_run: bool, now: Clock) -> None:
    """checkAndDecrement, re-reading the budget and retrying while its status write conflicts."""
    rt = _rt(core, "PodDisruptionBudget")
    namespace, name = pdb["metadata"]["namespace"], pdb["metadata"]["name"]
    for attempt in range(CONFLICT_RETRIES):
        if attempt:
            pdb = core.get(rt, namespace, name)
        new = _decremented(pdb, pod_name, now())
        if dry_run:
            return
        try:
            await core.update(rt, namespace, name, new, subresource="status")
            return
        except Conflict:
            if attempt == CONFLICT_RETRIES - 1:
                raise


def _decremented(pdb: Obj, pod_name: str, now: str) -> Obj:
    """The budget with one disruption spent on `pod_name`; raises when none may be spent."""
    name, status = pdb["metadata"]["name"], as_dict(pdb.get("status"))
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
        raise too_many_requests(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    if len(as_dict(status.get("disruptedPods"))) > MAX_DISRUPTED_PODS:
        raise _forbidden(
            name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        )
    if allowed == 0:
        raise TooManyRequests(
            VIOLATES_BUDGET,
            causes=[
                Cause(
                    DISRUPTION_BUDGET_CAUSE,
                    f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
                    f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently",
                )
            ],
        )
    new = deep_copy(pdb)
    st = new.setdefault("status", {})
    st["disruptionsAllowed"] = allowed - 1
    if allowed == 1:
        budgets.update_disruption_allowed_condition(st, now)
    st["disruptedPods"] = {**as_dict(st.get("disruptedPods")), pod_name: now}
    return new


async def _mark_and_delete(core: ApiCore, pod: Obj, opts: DeleteOptions, now: Clock) -> None:
    """addConditionAndDeletePod: the DisruptionTarget condition (checked against the preconditions),
    then the delete, whose resourceVersion precondition follows the condition's write."""
    pods = _rt(core, "Pod")
    m = pod["metadata"]
    if not opts.dry_run:
        current = core.get(pods, m["namespace"], m["name"])
        cm = current["metadata"]
        if opts.uid and opts.uid != cm.get("uid"):
            raise Conflict(
                f'Operation cannot be fulfilled on Pod "{m["name"]}": the UID in the precondition '
                f"({opts.uid}) does not match the UID in record ({cm.get('uid')}). The object might have "
                "been deleted and then recreated",
                name=m["name"],
                kind="Pod",
            )
        if opts.resource_version and opts.resource_version != cm.get("resourceVersion"):
            raise Conflict(
                f'Operation cannot be fulfilled on Pod "{m["name"]}": the ResourceVersion in the '
                f"precondition ({opts.resource_version}) does not match the ResourceVersion in record "
                f"({cm.get('resourceVersion')}). The object might have been modified",
                name=m["name"],
                kind="Pod",
            )
        marked = _with_disruption_target(current, now())
        if marked is not None:
            written = (await core.update(pods, m["namespace"], m["name"], marked, subresource="status")).obj
            if opts.resource_version:
                opts = attrs.evolve(opts, resource_version=_rv(written))
    await core.delete(pods, m["namespace"], m["name"], opts)


def _with_disruption_target(pod: Obj, now: str) -> Obj | None:
    """The pod with DisruptionTarget=True (EvictionByEvictionAPI), or None when it already has it."""
    cond = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting"}
    conditions = [c for c in as_dict(pod.get("status")).get("conditions") or [] if isinstance(c, dict)]
    old = next((c for c in conditions if c.get("type") == "DisruptionTarget"), None)
    if old is not None and all(old.get(k) == v for k, v in cond.items()):
        return None
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == "True" else now
    new = deep_copy(pod)
    new_conditions = [c for c in conditions if c.get("type") != "DisruptionTarget"] + [
        {**cond, "lastTransitionTime": since}
    ]
    new.setdefault("status", {})["conditions"] = new_conditions
    return new
