"""PodDisruptionBudget status (kube-controller-manager's `disruption` controller).

Owns, for each PodDisruptionBudget, from the pods of its namespace its selector matches (policy/v1:
an empty selector matches every pod, a missing one none):
  * expectedPods and desiredHealthy — with an integer minAvailable: the number of pods and
    minAvailable; with a percentage, or with maxUnavailable: the sum of the scales of the pods'
    controllers (a ReplicaSet's replicas, or its Deployment's when it has one; a StatefulSet's),
    percentages rounded up; pods without a controller are left out (an UnmanagedPods warning);
    a controller of another kind has no scale ("... does not implement the scale subresource");
  * currentHealthy — Ready pods that are not terminating and not in status.disruptedPods;
  * disruptionsAllowed = max(0, currentHealthy - desiredHealthy), 0 while expectedPods is 0;
  * status.disruptedPods — the eviction API's entries for pods that still exist, are not
    terminating and were evicted less than DELETION_TIMEOUT (2 min) ago; the budget is looked at
    again when the oldest of those runs out;
  * observedGeneration and the DisruptionAllowed condition (SufficientPods / InsufficientPods);
    when the numbers cannot be worked out, disruptionsAllowed 0 and DisruptionAllowed=False with
    reason SyncFailed (kube's failSafe). The status is written through the status subresource,
    and only when it changed.
Also, like kube, a pod that still has a DisruptionTarget=True condition 2 minutes after it was set
but is not terminating (its eviction or preemption did not go through) gets it reset to False.
A pod event re-syncs every budget that selects the pod before or after the change (kube picks one).
Time: `clock()` (injected; a virtual clock in tests) for every timestamp written or compared.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from orchestra.api.errors import ApiError, Conflict, NotFound
from orchestra.api.policy import pdb as budgets
from orchestra.client.base import Client
from orchestra.controller import (
    NORMAL,
    WARNING,
    Controller,
    EventRecorder,
    Informer,
    Result,
    object_key,
    registry_of,
    split_key,
)
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import (
    Obj,
    controller_ref,
    deep_copy,
    format_time,
    is_pod_ready,
    meta,
    namespace_of,
    parse_time,
    scaled_value,
    set_status_condition,
    spec,
    status,
)

STALE_POD_PREFIX = "pod:"  # keys of pods whose DisruptionTarget condition may be stale
STALE_DISRUPTION_TIMEOUT = 120.0
TERMINATION_BY_KUBELET = "TerminationByKubelet"
_APPS_GROUPS = ("apps", "extensions")


class SyncError(Exception):
    """The budget's numbers cannot be worked out (reported through the SyncFailed condition)."""


def _group(api_version: str) -> str:
    group, _, _version = str(api_version).rpartition("/")
    return group


def _go_selector(sel: Any) -> str:
    """*metav1.LabelSelector as %v prints it (its gogo String())."""
    if not isinstance(sel, dict):
        return "nil"
    labels = sel.get("matchLabels") or {}
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
                    f"Values:[{' '.join(str(v) for v in e.get('values') or [])}],}},"
                    for e in sel.get("matchExpressions") or [] if isinstance(e, dict))
    pairs = "".join(f"{k}: {labels[k]}," for k in sorted(labels))
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{pairs}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )


class DisruptionController(Controller):
    name = "disruption-controller"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        if self._own_recorder:  # kube's disruption controller reports its events as the controller manager
            self.recorder = EventRecorder(client, "controllermanager")
        self.clock = clock
        self.pdbs = self.informer("PodDisruptionBudget")
        self.pods = self.informer("Pod")
        self.replicasets = self.informer("ReplicaSet")
        self.deployments = self.informer("Deployment")
        self.statefulsets = self.informer("StatefulSet")
        self.enqueue_on(self.pdbs)
        self.enqueue_on(self.pods, self._keys_for_pod)
        self._last_write: dict[str, str] = {}  # budget key -> resourceVersion of our last status write

    def _keys_for_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        keys: set[str] = set()
        for pod in (old, new):
            if pod is None:
                continue
            for pdb in self.pdbs.by_index("namespace", namespace_of(pod)):
                if budgets.selects(pdb, pod, empty_selects_all=True):
                    keys.add(object_key(pdb))
        if new is not None and self._stale_disruption_wait(new) is not None:
            keys.add(STALE_POD_PREFIX + object_key(new))
        return keys

    async def reconcile(self, key: str) -> Result | None:
        if key.startswith(STALE_POD_PREFIX):
            return await self._reset_stale_disruption(key.removeprefix(STALE_POD_PREFIX))
        await self.pdbs.wait_for_resource_version(self._last_write.pop(key, ""))
        ns, name = split_key(key)
        pdb = self.pdbs.get(ns, name)
        if pdb is None:
            return None
        try:
            return await self._sync(key, pdb)
        except Conflict:
            raise  # re-read and retry, without the fail-safe
        except NotFound:
            return None  # deleted meanwhile
        except (SyncError, ApiError) as exc:
            await self._fail_safe(key, pdb, str(exc) if isinstance(exc, SyncError) else exc.message)
            return None

    # --- the budget ------------------------------------------------------------------------------

    async def _sync(self, key: str, pdb: Obj) -> Result | None:
        """kube's trySync."""
        pods = self._pods_for(pdb)
        if not pods:
            self.recorder.event(pdb, NORMAL, "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = await self._expected_pod_count(pdb, pods)
        except SyncError as exc:
            self.recorder.event(pdb, WARNING, "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {exc}")
            raise
        if unmanaged:
            self.recorder.event(
                pdb,
                WARNING,
                "UnmanagedPods",
                (
                    "Pods selected by this PodDisruptionBudget "
                    f"(selector: {_go_selector(spec(pdb).get('selector'))}) were found to be unmanaged. "
                    "As a result, the status of the PDB cannot be calculated correctly, which may result in "
                    'undefined behavior. To account for these pods please set ".spec.minAvailable" field of '
                    "the PDB to an integer value."
                ),
            )
        now = self.clock()
        disrupted, recheck = self._disrupted_pods(pods, pdb, now)
        healthy = _count_healthy(pods, disrupted, now)
        await self._write_status(key, pdb, healthy, desired, expected, disrupted)
        if recheck is None:
            return None
        # just past the expiry (an entry is dropped once strictly older than the timeout)
        return Result(requeue_after=max(0.0, (recheck - now).total_seconds()) + 0.001)

    def _pods_for(self, pdb: Obj) -> list[Obj]:
        selector = budgets.selector_of(pdb, empty_selects_all=True)
        if selector is None:
            return []
        return self.pods.list(namespace_of(pdb), selector)

    async def _expected_pod_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """(expectedPods, desiredHealthy, unmanaged pod names): kube's getExpectedPodCount."""
        s = spec(pdb)
        min_available, max_unavailable = s.get("minAvailable"), s.get("maxUnavailable")
        if max_unavailable is not None:
            expected, unmanaged = await self._expected_scale(pods)
            return expected, max(0, expected - _scaled(max_unavailable, expected)), unmanaged
        if isinstance(min_available, int):
            return len(pods), min_available, []
        if min_available is not None:
            expected, unmanaged = await self._expected_scale(pods)
            return expected, _scaled(min_available, expected), unmanaged
        return 0, 0, []

    async def _expected_scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        """The sum of the scales of the pods' controllers (each counted once), and the pods
        without a controller."""
        scales: dict[str, int] = {}  # top controller uid -> its replicas
        seen: set[str] = set()  # the pods' own controller uids already resolved
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(str(meta(pod).get("name")))
                continue
            if ref.get("uid") in seen:
                continue
            found = (
                self._replicaset_scale(ref, pod)
                or self._deployment_scale(ref, pod)
                or self._statefulset_scale(ref, pod)
            )
            if found is None:
                found = await self._generic_scale(ref, pod)
            if found is None:
                raise SyncError(f'found no controllers for pod "{meta(pod).get("name")}"')
            seen.add(str(ref.get("uid")))
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    def _owner(self, informer: Informer, ref: Obj, namespace: str, kind: str) -> Obj | None:
        """The cached controller `ref` names when it is a `kind` of apps/extensions with ref's uid."""
        if ref.get("kind") != kind or _group(ref.get("apiVersion", "")) not in _APPS_GROUPS:
            return None
        obj = informer.get(namespace, str(ref.get("name") or ""))
        return obj if obj is not None and meta(obj).get("uid") == ref.get("uid") else None

    def _replicaset_scale(self, ref: Obj, pod: Obj) -> tuple[str, int] | None:
        rs = self._owner(self.replicasets, ref, str(meta(pod).get("namespace")), "ReplicaSet")
        if rs is None or (controller_ref(rs) or {}).get("kind") == "Deployment":
            return None  # a Deployment's ReplicaSet: the Deployment's scale counts
        return str(meta(rs).get("uid")), int(spec(rs).get("replicas", 1))

    def _deployment_scale(self, ref: Obj, pod: Obj) -> tuple[str, int] | None:
        ns = str(meta(pod).get("namespace"))
        rs = self._owner(self.replicasets, ref, ns, "ReplicaSet")
        dref = controller_ref(rs) if rs is not None else None
        deployment = self._owner(self.deployments, dref, ns, "Deployment") if dref is not None else None
        return (
            (str(meta(deployment).get("uid")), int(spec(deployment).get("replicas", 1)))
            if deployment
            else None
        )

    def _statefulset_scale(self, ref: Obj, pod: Obj) -> tuple[str, int] | None:
        sts = self._owner(self.statefulsets, ref, str(meta(pod).get("namespace")), "StatefulSet")
        return (str(meta(sts).get("uid")), int(spec(sts).get("replicas", 1))) if sts is not None else None

    async def _generic_scale(self, ref: Obj, pod: Obj) -> tuple[str, int] | None:
        """getScaleController: any other kind with a scale subresource (None: not found, or not
        this uid); a kind without one is an error."""
        group, _, version = str(ref.get("apiVersion") or "").rpartition("/")
        rt = registry_of(self.client).by_gvk(group, version, str(ref.get("kind") or ""))
        if rt is None:
            raise SyncError(f'no matches for kind "{ref.get("kind")}" in version "{ref.get("apiVersion")}"')
        if not rt.has_subresource("scale"):
            raise SyncError(f"{rt.group_resource} does not implement the scale subresource")
        try:
            owner = await self.client.get(rt, str(meta(pod).get("namespace")), str(ref.get("name") or ""))
        except NotFound:
            return None
        if meta(owner).get("uid") != ref.get("uid"):
            return None
        return str(meta(owner).get("uid")), int(spec(owner).get("replicas", 1))

    def _disrupted_pods(
        self, pods: list[Obj], pdb: Obj, now: datetime
    ) -> tuple[dict[str, str], datetime | None]:
        """buildDisruptedPodMap: the entries still expected to be deleted, and when the first expires."""
        entries = status(pdb).get("disruptedPods") or {}
        result: dict[str, str] = {}
        recheck: datetime | None = None
        for pod in pods:
            name = str(meta(pod).get("name"))
            when = parse_time(entries.get(name))
            if meta(pod).get("deletionTimestamp") or when is None:
                continue
            expires = when + timedelta(seconds=budgets.DELETION_TIMEOUT)
            if expires < now:
                self.recorder.event(
                    pod,
                    WARNING,
                    "NotDeleted",
                    f"Pod was expected by PDB {meta(pdb).get('namespace')}/"
                    f"{meta(pdb).get('namespace')} to be deleted but it wasn't",
                )  # sic: kube's message
                continue
            recheck = expires if recheck is None or expires < recheck else recheck
            result[name] = entries[name]
        return result, recheck

    async def _write_status(self, key: str, pdb: Obj, healthy: int, desired: int, expected: int,
                            disrupted: dict[str, str]) -> None:
        """updatePdbStatus: write only what changed."""
        allowed = healthy - desired if expected > 0 and healthy > desired else 0
        old = status(pdb)
        generation = meta(pdb).get("generation")
        if (
            (
                old.get("currentHealthy"),
                old.get("desiredHealthy"),
                old.get("expectedPods"),
                old.get("disruptionsAllowed"),
            )
            == (healthy, desired, expected, allowed)
            and (old.get("disruptedPods") or {}) == disrupted
            and old.get("observedGeneration") == generation
            and budgets.conditions_up_to_date(pdb)
        ):
            return
        new_status: Obj = {}
        if generation:
            new_status["observedGeneration"] = generation
        if disrupted:
            new_status["disruptedPods"] = disrupted
        new_status.update(
            disruptionsAllowed=allowed, currentHealthy=healthy, desiredHealthy=desired, expectedPods=expected
        )
        new_status["conditions"] = old.get("conditions") or []
        budgets.update_disruption_allowed_condition(new_status, format_time(self.clock()))
        await self._update(key, pdb, new_status)

    async def _fail_safe(self, key: str, pdb: Obj, message: str) -> None:
        """failSafe: at least make sure no eviction is approved on a budget we could not compute."""
        new_status = deep_copy(status(pdb))
        new_status["disruptionsAllowed"] = 0
        cond: Obj = {"type": budgets.DISRUPTION_ALLOWED, "status": "False"}
        if new_status.get("observedGeneration"):
            cond["observedGeneration"] = new_status["observedGeneration"]
        cond.update(reason=budgets.SYNC_FAILED, message=message)
        set_status_condition(new_status, cond, format_time(self.clock()))
        if new_status != status(pdb):
            await self._update(key, pdb, new_status)

    async def _update(self, key: str, pdb: Obj, new_status: Obj) -> None:
        new = deep_copy(pdb)
        new["status"] = new_status
        written = await self.client.update_status(self.pdbs.rt, new)
        self._last_write[key] = str(meta(written).get("resourceVersion") or "")

    # --- stale DisruptionTarget conditions --------------------------------------------------------

    def _stale_disruption_wait(self, pod: Obj) -> float | None:
        """Seconds until the pod's DisruptionTarget=True condition counts as stale (0: it does), or
        None when it has none that can go stale (or the pod is terminating)."""
        if meta(pod).get("deletionTimestamp"):
            return None
        cond = next(
            (c for c in status(pod).get("conditions") or [] if c.get("type") == "DisruptionTarget"), None
        )
        if cond is None or cond.get("status") != "True" or cond.get("reason") == TERMINATION_BY_KUBELET:
            return None
        since = parse_time(cond.get("lastTransitionTime")) or self.clock()
        return max(0.0, STALE_DISRUPTION_TIMEOUT - (self.clock() - since).total_seconds())

    async def _reset_stale_disruption(self, pod_key: str) -> Result | None:
        ns, name = split_key(pod_key)
        pod = self.pods.get(ns, name)
        wait = self._stale_disruption_wait(pod) if pod is not None else None
        if pod is None or wait is None:
            return None
        if wait > 0:
            return Result(requeue_after=wait)
        new = deep_copy(pod)
        new["status"]["conditions"] = [
            {**c, "status": "False", "lastTransitionTime": format_time(self.clock())}
            if c.get("type") == "DisruptionTarget"
            else c
            for c in status(pod).get("conditions") or []
        ]
        try:
            await self.client.update_status(self.pods.rt, new)
        except NotFound:
            pass  # deleted meanwhile: nothing is stale any more
        return None


def _scaled(value: Any, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)."""
    try:
        return scaled_value(value, total, round_up=True)
    except ValueError:
        raise SyncError(
            f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}"
        ) from None


def _count_healthy(pods: list[Obj], disrupted: dict[str, str], now: datetime) -> int:
    """countHealthyPods: Ready, not terminating, not about to be deleted by an approved eviction."""
    healthy = 0
    for pod in pods:
        if meta(pod).get("deletionTimestamp"):
            continue
        when = parse_time(disrupted.get(str(meta(pod).get("name"))))
        if when is not None and when + timedelta(seconds=budgets.DELETION_TIMEOUT) > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy
