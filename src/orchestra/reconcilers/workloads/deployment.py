"""Deployment controller (kube's pkg/controller/deployment): ReplicaSets per template revision.

Owns, per Deployment:
  * claiming ReplicaSets (adopt orphans matching the selector, release those that stop matching);
  * the new ReplicaSet `<deploy>-<pod-template-hash>` (collisionCount on a name clash), the
    revision annotations (deployment.kubernetes.io/revision on RSs and the Deployment,
    revision-history when an old RS is reused — how `kubectl rollout undo` keeps revisions right),
    desired-replicas / max-replicas;
  * RollingUpdate within maxSurge / maxUnavailable, Recreate (old pods gone before new ones),
    proportional scaling of a scaling event mid-rollout, spec.paused (scaling only; Progressing
    Unknown DeploymentPaused / DeploymentResumed), revisionHistoryLimit cleanup;
  * status (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
    unavailableReplicas, collisionCount) and the Available / Progressing / ReplicaFailure
    conditions, with progressDeadlineSeconds (ProgressDeadlineExceeded) — what
    `kubectl rollout status` reads;
  * events ScalingReplicaSet ("Scaled up replica set web-7d4b9c7f5 to 3 from 2").
`kubectl rollout undo` (client-side in kubectl 1.32: it copies an old RS's template into the
Deployment) and `rollout restart` (a template annotation) are template changes like any other.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.errors import AlreadyExists, NotFound
from orchestra.api.machinery.selectors import from_label_selector_object
from orchestra.client.base import Client
from orchestra.controller import NORMAL, WARNING, Controller, Informer, Result, object_key
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import (
    Obj,
    controller_ref,
    deep_copy,
    get_condition,
    is_terminating,
    meta,
    namespace_of,
    new_controller_ref,
    remove_condition,
    spec,
    status,
)
from orchestra.reconcilers.workloads import rollout as ro
from orchestra.reconcilers.workloads.common import Expectations, int_or, owner_keys
from orchestra.reconcilers.workloads.keyed import claim_keyed, settled


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, replicasets: Informer | None = None,
                 pods: Informer | None = None, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.clock = clock
        self.expect = Expectations()
        self.deployments = self.informer("Deployment")
        self.rss = self.use_informer(replicasets) if replicasets is not None else self.informer("ReplicaSet")
        self.pods = self.use_informer(pods) if pods is not None else self.informer("Pod")
        self.enqueue_on(self.deployments)
        self.enqueue_on(self.rss, self._owners_of_rs)
        self.enqueue_on(self.pods, self._owner_of_deleted_pod)

    # --- event mapping -------------------------------------------------------------------------

    def _owners_of_rs(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        keys: set[str] = set()
        for rs in (old, new):
            if rs is None:
                continue
            if controller_ref(rs) is not None:
                keys.update(owner_keys(rs, "Deployment"))
                continue
            for d in self.deployments.by_index("namespace", namespace_of(rs)):
                sel = spec(d).get("selector")
                if sel and from_label_selector_object(sel).matches(meta(rs).get("labels")):
                    keys.add(object_key(d))
        return keys

    def _owner_of_deleted_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        """Recreate waits for old pods to be gone: a pod deletion may unblock it."""
        if event_type != "DELETED" or old is None:
            return []
        ref = controller_ref(old)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.rss.get(meta(old).get("namespace"), ref.get("name", ""))
        return owner_keys(rs, "Deployment") if rs is not None else []

    # --- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        cached = await settled(self.expect, self.deployments, key)
        if cached is None:
            return None
        d = deep_copy(cached)
        selector = from_label_selector_object(spec(d).get("selector"))
        if selector.empty:
            self.recorder.event(
                d,
                WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            return None
        candidates = self.rss.by_index("namespace", meta(d).get("namespace") or "")
        rss = await claim_keyed(self.client, self.expect, key, self.rss, d, selector, candidates)
        run = _Run(self, key, d, list(rss))
        if is_terminating(d):
            await run.sync_status_only()
            return None
        await run.check_paused_conditions()
        if spec(d).get("paused"):
            await run.sync()
            return None
        new_rs = ro.find_new_rs(d, rss)
        active = [rs for rs in rss if ro.replicas(rs) > 0]
        if new_rs is not None and ro.is_scaling_event(d, active):
            await run.sync()
            return None
        if ((spec(d).get("strategy") or {}).get("type")) == "Recreate":
            return await run.rollout_recreate()
        return await run.rollout_rolling()


class _Run:
    """One reconcile of one Deployment: the working copies and the writes that update them."""

    def __init__(self, ctl: DeploymentController, key: str, d: Obj, rss: list[Obj]) -> None:
        self.ctl = ctl
        self.client = ctl.client
        self.key = key
        self.d = d
        self.rss = rss
        self.now = ctl.clock()

    # --- ReplicaSet bookkeeping ----------------------------------------------------------------

    def _replace(self, rs: Obj) -> Obj:
        self.rss = [rs if meta(r)["uid"] == meta(rs)["uid"] else r for r in self.rss]
        return rs

    def _split(self) -> tuple[Obj | None, list[Obj]]:
        new_rs = ro.find_new_rs(self.d, self.rss)
        old = [r for r in self.rss if new_rs is None or meta(r)["uid"] != meta(new_rs)["uid"]]
        return new_rs, old

    async def _update_rs(self, rs: Obj) -> Obj:
        out = await self.client.update(self.ctl.rss.rt, rs)
        self.ctl.expect.wrote(self.key, self.ctl.rss, out)
        return self._replace(out)

    async def scale_rs(self, rs: Obj, size: int) -> tuple[bool, Obj]:
        """kube's scaleReplicaSet: set replicas and the desired/max annotations; event on a resize."""
        size = max(size, 0)
        want = ro.rs_annotations_needed(self.d, rs, size)
        annotations = meta(rs).get("annotations") or {}
        resize = ro.replicas(rs) != size
        if not resize and all(annotations.get(k) == v for k, v in want.items()):
            return False, rs
        old_size = ro.replicas(rs)
        copy = deep_copy(rs)
        copy["spec"]["replicas"] = size
        copy["metadata"]["annotations"] = {**annotations, **want}
        out = await self._update_rs(copy)
        if resize:
            direction = "up" if size > old_size else "down"
            self.ctl.recorder.event(
                self.d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {meta(rs)['name']} to {size} from {old_size}",
            )
        return resize, out

    async def _set_deploy_revision(self, rev: str) -> None:
        if (meta(self.d).get("annotations") or {}).get(ro.REVISION) == rev:
            return
        patch = {
            "metadata": {
                "annotations": {ro.REVISION: rev},
                "resourceVersion": meta(self.d)["resourceVersion"],
            }
        }
        out = await self.client.patch(
            self.ctl.deployments.rt, meta(self.d)["namespace"], meta(self.d)["name"], patch
        )
        self.ctl.expect.wrote(self.key, self.ctl.deployments, out)
        self.d = out

    async def write_status(self, st: Obj) -> None:
        if status(self.d) == st:
            return
        copy = deep_copy(self.d)
        copy["status"] = st
        out = await self.client.update_status(self.ctl.deployments.rt, copy)
        self.ctl.expect.wrote(self.key, self.ctl.deployments, out)
        self.d = out

    # --- the new ReplicaSet and revisions --------------------------------------------------------

    async def get_all(self, *, create: bool) -> tuple[Obj | None, list[Obj]]:
        """kube's getAllReplicaSetsAndSyncRevision."""
        new_rs, old = self._split()
        new_revision = str(ro.max_revision(old) + 1)
        if new_rs is not None:
            return await self._sync_existing(new_rs, new_revision), old
        if not create:
            return None, old
        return await self._create_new(old, new_revision), old

    async def _sync_existing(self, rs: Obj, new_revision: str) -> Obj:
        annotations = dict(meta(rs).get("annotations") or {})
        changed = False
        current = annotations.get(ro.REVISION)
        if ro.revision(rs) < int(new_revision):
            if current:
                history = [h for h in (annotations.get(ro.REVISION_HISTORY) or "").split(",") if h]
                annotations[ro.REVISION_HISTORY] = ",".join([*history, current])
            annotations[ro.REVISION] = new_revision
            changed = True
        want = ro.rs_annotations_needed(self.d, rs, ro.replicas(rs))
        if any(annotations.get(k) != v for k, v in want.items()):
            annotations.update(want)
            changed = True
        min_ready = int_or(spec(self.d).get("minReadySeconds"), 0)
        if int_or(spec(rs).get("minReadySeconds"), 0) != min_ready:
            changed = True
        if changed:
            copy = deep_copy(rs)
            copy["metadata"]["annotations"] = annotations
            copy["spec"]["minReadySeconds"] = min_ready
            rs = await self._update_rs(copy)
        await self._set_deploy_revision(str(ro.revision(rs)))
        if ro.has_progress_deadline(self.d) and get_condition(status(self.d), "Progressing") is None:
            st = deep_copy(status(self.d))
            ro.set_deploy_condition(st, ro.condition("Progressing", "True", ro.FOUND_NEW_RS,
                                                     f'Found new replica set "{meta(rs)["name"]}"', self.now))
            await self.write_status(st)
        return rs

    async def _create_new(self, old: list[Obj], new_revision: str) -> Obj | None:
        d = self.d
        hash_ = ro.pod_template_hash(d)
        template = deep_copy(spec(d).get("template") or {})
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), ro.HASH_LABEL: hash_}
        selector = deep_copy(spec(d).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), ro.HASH_LABEL: hash_}
        name = f"{meta(d)['name']}-{hash_}"
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta(d)["namespace"], "labels": tmeta["labels"],
                         "ownerReferences": [new_controller_ref(d)],
                         "annotations": {**ro.copy_annotations(d), ro.REVISION: new_revision}},
            "spec": {"replicas": 0, "minReadySeconds": int_or(spec(d).get("minReadySeconds"), 0),
                     "selector": selector, "template": template},
        }
        size = ro.new_rs_replicas(d, old, rs)
        rs["spec"]["replicas"] = size
        rs["metadata"]["annotations"].update(ro.rs_annotations_needed(d, rs, size))
        try:
            created = await self.client.create(self.ctl.rss.rt, meta(d)["namespace"], rs)
        except AlreadyExists:
            return await self._name_clash(name)
        self.ctl.expect.wrote(self.key, self.ctl.rss, created)
        self.rss.append(created)
        if size > 0:
            self.ctl.recorder.event(
                d, NORMAL, "ScalingReplicaSet", f"Scaled up replica set {name} to {size} from 0"
            )
        await self._set_deploy_revision(new_revision)
        if ro.has_progress_deadline(self.d):
            st = deep_copy(status(self.d))
            ro.set_deploy_condition(st, ro.condition("Progressing", "True", ro.NEW_RS_CREATED,
                                                     f'Created new replica set "{name}"', self.now))
            await self.write_status(st)
        return created

    async def _name_clash(self, name: str) -> Obj | None:
        """An RS of our name exists: ours with our template (a lagging cache) or a hash collision."""
        try:
            existing = await self.client.get(self.ctl.rss.rt, meta(self.d)["namespace"], name)
        except NotFound:
            return None  # deleted meanwhile: the next reconcile creates it
        ref = controller_ref(existing)
        if ref is not None and ref.get("uid") == meta(self.d)["uid"] and ro.equal_ignore_hash(
                spec(existing).get("template") or {}, spec(self.d).get("template") or {}):
            self.rss.append(existing)
            return existing
        st = deep_copy(status(self.d))
        st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
        await self.write_status(st)  # the status write re-queues us with the new hash
        return None

    # --- strategies ----------------------------------------------------------------------------

    async def rollout_rolling(self) -> Result | None:
        new_rs, _ = await self.get_all(create=True)
        if new_rs is None:
            return None
        if await self._reconcile_new_rs(new_rs):
            return await self.sync_rollout_status()
        if await self._reconcile_old_rss():
            return await self.sync_rollout_status()
        if ro.is_complete(self.d, status(self.d)):
            await self.cleanup()
        return await self.sync_rollout_status()

    async def _reconcile_new_rs(self, new_rs: Obj) -> bool:
        want = ro.replicas(self.d)
        if ro.replicas(new_rs) == want:
            return False
        if ro.replicas(new_rs) > want:
            return (await self.scale_rs(new_rs, want))[0]
        return (await self.scale_rs(new_rs, ro.new_rs_replicas(self.d, self.rss, new_rs)))[0]

    async def _reconcile_old_rss(self) -> bool:
        """kube's reconcileOldReplicaSets: never below replicas - maxUnavailable available pods."""
        new_rs, old = self._split()
        if ro.spec_total(old) == 0:
            return False
        min_available = ro.replicas(self.d) - ro.max_unavailable(self.d)
        new_unavailable = (
            (ro.replicas(new_rs) - int(status(new_rs).get("availableReplicas") or 0)) if new_rs else 0
        )
        max_scaled_down = ro.spec_total(self.rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(max_scaled_down)
        scaled = await self._scale_down_old(min_available)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, max_cleanup: int) -> int:
        total = 0
        for rs in ro.by_creation(self._split()[1]):
            if total >= max_cleanup:
                break
            healthy = int(status(rs).get("availableReplicas") or 0)
            if ro.replicas(rs) == 0 or healthy >= ro.replicas(rs):
                continue
            count = min(max_cleanup - total, ro.replicas(rs) - healthy)
            await self.scale_rs(rs, ro.replicas(rs) - count)
            total += count
        return total

    async def _scale_down_old(self, min_available: int) -> int:
        available = ro.available_after_scaling(self.rss)
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in ro.by_creation(self._split()[1]):
            if total >= budget:
                break
            if ro.replicas(rs) == 0:
                continue
            count = min(ro.replicas(rs), budget - total)
            await self.scale_rs(rs, ro.replicas(rs) - count)
            total += count
        return total

    async def rollout_recreate(self) -> Result | None:
        new_rs, old = await self.get_all(create=False)
        scaled = False
        for rs in old:
            if ro.replicas(rs) > 0:
                scaled = (await self.scale_rs(rs, 0))[0] or scaled
        if scaled or self._old_pods_running():
            return await self.sync_rollout_status()
        if new_rs is None:
            new_rs, _ = await self.get_all(create=True)
            if new_rs is None:
                return None
        await self.scale_rs(new_rs, ro.replicas(self.d))
        if ro.is_complete(self.d, status(self.d)):
            await self.cleanup()
        return await self.sync_rollout_status()

    def _old_pods_running(self) -> bool:
        _, old = self._split()
        if ro.status_total(old, "replicas") > 0:
            return True
        old_uids = {meta(rs)["uid"] for rs in old}
        for pod in self.ctl.pods.by_index("namespace", meta(self.d)["namespace"]):
            ref = controller_ref(pod)
            if (
                ref is not None
                and ref.get("uid") in old_uids
                and status(pod).get("phase") not in ("Failed", "Succeeded")
            ):
                return True
        return False

    async def sync(self) -> None:
        """kube's sync: scaling (proportionally mid-rollout) without rollout progress."""
        new_rs, old = await self.get_all(create=False)
        await self._scale(new_rs, old)
        if spec(self.d).get("paused"):
            await self.cleanup()
        await self.sync_status_only()

    async def _scale(self, new_rs: Obj | None, old: list[Obj]) -> None:
        active = [rs for rs in ([new_rs] if new_rs else []) + old if ro.replicas(rs) > 0]
        target = _active_or_latest(new_rs, old, active)
        if target is not None:
            await self.scale_rs(target, ro.replicas(self.d))
            return
        if new_rs is not None and _saturated(self.d, new_rs):
            for rs in old:
                if ro.replicas(rs) > 0:
                    await self.scale_rs(rs, 0)
            return
        if not ro.is_rolling(self.d):
            return
        n = ro.replicas(self.d)
        allowed = n + ro.max_surge(self.d) if n > 0 else 0
        to_add = allowed - ro.spec_total(active)
        newer_first = to_add > 0
        order = sorted(active, key=lambda r: (-ro.replicas(r), meta(r).get("creationTimestamp") or "",
                                              meta(r).get("name") or ""), reverse=False)
        if newer_first:
            order = sorted(active, key=lambda r: (ro.replicas(r), meta(r).get("creationTimestamp") or "",
                                                  meta(r).get("name") or ""), reverse=True)
        sizes: dict[str, int] = {}
        added = 0
        for rs in order:
            share = ro.proportion(rs, self.d, to_add, added) if to_add != 0 else 0
            sizes[meta(rs)["name"]] = ro.replicas(rs) + share
            added += share
        for i, rs in enumerate(order):
            size = sizes[meta(rs)["name"]]
            if i == 0 and to_add != 0:
                size = max(size + to_add - added, 0)
            await self.scale_rs(rs, size)

    async def cleanup(self) -> None:
        """Delete old ReplicaSets beyond revisionHistoryLimit that have no pods left."""
        limit = spec(self.d).get("revisionHistoryLimit")
        if limit is None:
            return
        _, old = self._split()
        alive = [rs for rs in old if not is_terminating(rs)]
        diff = len(alive) - int(limit)
        for rs in sorted(alive, key=lambda r: (ro.revision(r), meta(r).get("creationTimestamp") or "")):
            if diff <= 0:
                break
            if (int(status(rs).get("replicas") or 0) != 0 or ro.replicas(rs) != 0
                    or int(meta(rs).get("generation") or 0) > int(status(rs).get("observedGeneration") or 0)):
                continue
            try:
                await self.client.delete(
                    self.ctl.rss.rt, meta(rs)["namespace"], meta(rs)["name"], uid=meta(rs)["uid"]
                )
            except NotFound:
                pass  # already gone
            self.rss = [r for r in self.rss if meta(r)["uid"] != meta(rs)["uid"]]
            diff -= 1

    # --- status --------------------------------------------------------------------------------

    async def check_paused_conditions(self) -> None:
        if not ro.has_progress_deadline(self.d):
            return
        cond = get_condition(status(self.d), "Progressing")
        if cond is not None and cond.get("reason") == ro.TIMED_OUT:
            return
        paused = bool(spec(self.d).get("paused"))
        paused_cond = cond is not None and cond.get("reason") == ro.PAUSED
        if paused == paused_cond:
            return
        st = deep_copy(status(self.d))
        if paused:
            ro.set_deploy_condition(
                st, ro.condition("Progressing", "Unknown", ro.PAUSED, "Deployment is paused", self.now)
            )
        else:
            ro.set_deploy_condition(
                st, ro.condition("Progressing", "Unknown", ro.RESUMED, "Deployment is resumed", self.now)
            )
        await self.write_status(st)

    def _with_replica_failure(self, st: Obj) -> None:
        for rs in self.rss:
            cond = get_condition(status(rs), "ReplicaFailure")
            if cond is not None and cond.get("status") == "True":
                ro.set_deploy_condition(st, ro.condition("ReplicaFailure", "True", cond.get("reason", ""),
                                                         cond.get("message", ""), self.now))
                return
        remove_condition(st, "ReplicaFailure")

    async def sync_status_only(self) -> None:
        new_rs, _ = self._split()
        st = ro.calculate_status(self.d, self.rss, new_rs, self.now)
        await self.write_status(st)

    async def sync_rollout_status(self) -> Result | None:
        """kube's syncRolloutStatus: the Progressing condition and the stuck-deployment requeue."""
        d, now = self.d, self.now
        new_rs, _ = self._split()
        st = ro.calculate_status(d, self.rss, new_rs, now)
        if not ro.has_progress_deadline(d):
            remove_condition(st, "Progressing")
        cond = get_condition(st, "Progressing")
        rs_name = f'ReplicaSet "{meta(new_rs)["name"]}"' if new_rs else "Deployment"
        complete = ro.is_complete(d, st)
        if ro.has_progress_deadline(d) and not (cond is not None and cond.get("reason") == ro.TIMED_OUT):
            if complete:
                ro.set_deploy_condition(st, ro.condition("Progressing", "True", ro.NEW_RS_AVAILABLE,
                                                         f"{rs_name} has successfully progressed.", now))
            elif ro.is_progressing(d, st):
                c = ro.condition("Progressing", "True", ro.RS_UPDATED, f"{rs_name} is progressing.", now)
                if cond is not None and cond.get("status") == "True":
                    c["lastTransitionTime"] = cond.get("lastTransitionTime", c["lastTransitionTime"])
                st["conditions"] = [
                    x for x in st.get("conditions") or [] if x.get("type") != "Progressing"
                ] + [c]
            else:
                at = ro.deadline_at(d, st)
                if at is not None and at < now:
                    ro.set_deploy_condition(st, ro.condition("Progressing", "False", ro.TIMED_OUT,
                                                             f"{rs_name} has timed out progressing.", now))
        self._with_replica_failure(st)
        await self.write_status(st)
        if complete:
            return None
        at = ro.deadline_at(self.d, status(self.d))
        if at is None:
            return None
        return Result(requeue_after=max((at - now).total_seconds(), 0.0) + 1.0)


def _active_or_latest(new_rs: Obj | None, old: list[Obj], active: list[Obj]) -> Obj | None:
    """kube's FindActiveOrLatest."""
    if len(active) == 1:
        return active[0]
    if not active:
        if new_rs is not None:
            return new_rs
        return ro.by_creation(old)[-1] if old else None
    return None


def _saturated(d: Obj, rs: Obj) -> bool:
    desired = (meta(rs).get("annotations") or {}).get(ro.DESIRED_REPLICAS)
    n = ro.replicas(d)
    return ro.replicas(rs) == n and desired == str(n) and int(status(rs).get("availableReplicas") or 0) == n
