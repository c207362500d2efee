"""Deployment rollout arithmetic (kube's pkg/controller/deployment/util), pure functions on dicts.

Owns: the annotations (revision, revision-history, desired-replicas, max-replicas), the
pod-template-hash, finding the new ReplicaSet (template equal ignoring the hash label), surge /
unavailable fenceposts (surge rounds up, unavailable rounds down, both 0 -> unavailable 1), the
new-RS size for a rolling update, proportional scaling, status calculation and the conditions
that make `kubectl rollout status` right.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from orchestra.objects import Obj, format_time, get_condition, meta, parse_time, scaled_value, spec, status
from orchestra.reconcilers.workloads.common import int_or, template_hash

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
# Annotations not copied from a Deployment to its ReplicaSets (kube's skipCopyAnnotation).
_SKIP_COPY = {REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
              "kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/rollback-to"}

# Progressing reasons (kube's deployment util).
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


def replicas(obj: Obj) -> int:
    return int_or(spec(obj).get("replicas"), 1)


def revision(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def max_revision(rss: Sequence[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def by_creation(rss: Sequence[Obj]) -> list[Obj]:
    """Oldest first (kube's ReplicaSetsByCreationTimestamp; ties by name)."""
    return sorted(rss, key=lambda r: (meta(r).get("creationTimestamp") or "", meta(r).get("name") or ""))


def _without_nulls(value: object) -> object:
    """JSON null is Go's zero value: `creationTimestamp: null` (which `kubectl rollout undo` sends
    back in the template it copies from a ReplicaSet) means the same as an absent field."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _template_without_hash(template: Obj) -> Obj:
    t: Obj = _without_nulls(template or {})  # type: ignore[assignment]  # a fresh copy
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    if "metadata" in t and not t["metadata"]:
        t.pop("metadata")
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return _template_without_hash(a) == _template_without_hash(b)


def pod_template_hash(deploy: Obj) -> str:
    return template_hash(spec(deploy).get("template") or {}, status(deploy).get("collisionCount"))


def find_new_rs(deploy: Obj, rss: Sequence[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the Deployment's (kube's FindNewReplicaSet)."""
    template = spec(deploy).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash(spec(rs).get("template") or {}, template):
            return rs
    return None


def is_rolling(deploy: Obj) -> bool:
    return ((spec(deploy).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def fenceposts(deploy: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas (kube's ResolveFenceposts)."""
    if not is_rolling(deploy):
        return 0, 0
    ru = (spec(deploy).get("strategy") or {}).get("rollingUpdate") or {}
    n = replicas(deploy)
    surge = scaled_value(ru.get("maxSurge", "25%"), n, round_up=True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), n, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(deploy: Obj) -> int:
    if not is_rolling(deploy) or replicas(deploy) == 0:
        return 0
    return min(fenceposts(deploy)[1], replicas(deploy))


def max_surge(deploy: Obj) -> int:
    return fenceposts(deploy)[0] if is_rolling(deploy) else 0


def spec_total(rss: Sequence[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def status_total(rss: Sequence[Obj | None], field: str) -> int:
    return sum(int(status(rs).get(field) or 0) for rs in rss if rs is not None)


def available_after_scaling(rss: Sequence[Obj | None]) -> int:
    """Available pods once each ReplicaSet has converged on its spec: min(available, replicas).
    A ReplicaSet just scaled down still reports the pods it is deleting (its status is written
    from the pods its last sync started from, or predates the scale-down); counting those would
    let a rolling update take availability below replicas - maxUnavailable."""
    return sum(
        min(int(status(rs).get("availableReplicas") or 0), replicas(rs)) for rs in rss if rs is not None
    )


def new_rs_replicas(deploy: Obj, all_rss: Sequence[Obj], new_rs: Obj) -> int:
    """kube's NewRSNewReplicas: how far the new RS may scale up now."""
    if not is_rolling(deploy):
        return replicas(deploy)
    current = spec_total(all_rss)
    max_total = replicas(deploy) + max_surge(deploy)
    if current >= max_total:
        return replicas(new_rs)
    up = min(max_total - current, max(replicas(deploy) - replicas(new_rs), 0))
    return replicas(new_rs) + up


def rs_annotations_needed(deploy: Obj, rs: Obj, new_replicas: int) -> dict[str, str]:
    """desired-replicas / max-replicas as they should be on `rs` (kube's SetReplicasAnnotations)."""
    return {DESIRED_REPLICAS: str(replicas(deploy)), MAX_REPLICAS: str(replicas(deploy) + max_surge(deploy))}


def copy_annotations(deploy: Obj) -> dict[str, str]:
    return {k: v for k, v in (meta(deploy).get("annotations") or {}).items() if k not in _SKIP_COPY}


def is_scaling_event(deploy: Obj, active_rss: Sequence[Obj]) -> bool:
    """An active RS whose desired-replicas annotation differs from spec.replicas."""
    for rs in active_rss:
        desired = (meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
        if desired is not None and desired != str(replicas(deploy)):
            return True
    return False


def proportion(rs: Obj, deploy: Obj, to_add: int, added: int) -> int:
    """kube's getProportion: this RS's share of a scale of `to_add` replicas."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(deploy) == 0:
        fraction = -replicas(rs)
    else:
        deploy_replicas = replicas(deploy) + max_surge(deploy)
        try:
            annotated = int((meta(rs).get("annotations") or {}).get(MAX_REPLICAS, ""))
        except ValueError:
            annotated = int(status(deploy).get("replicas") or 0)
        if annotated <= 0:
            annotated = deploy_replicas
        fraction = round(replicas(rs) * deploy_replicas / annotated) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# --- status and conditions -----------------------------------------------------------------------


def condition(type_: str, status_: str, reason: str, message: str, now: datetime) -> Obj:
    t = format_time(now)
    return {"type": type_, "status": status_, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def set_deploy_condition(st: Obj, cond: Obj) -> None:
    """kube's SetDeploymentCondition: no change when status and reason are the same; otherwise
    replace, keeping lastTransitionTime when the status did not change."""
    current = get_condition(st, cond["type"])
    if (
        current is not None
        and current.get("status") == cond["status"]
        and current.get("reason") == cond["reason"]
    ):
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime", cond["lastTransitionTime"])}
    st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def calculate_status(deploy: Obj, all_rss: Sequence[Obj], new_rs: Obj | None, now: datetime) -> Obj:
    """kube's calculateStatus."""
    available = status_total(all_rss, "availableReplicas")
    st: Obj = {k: v for k, v in status(deploy).items() if k in ("conditions", "collisionCount")}
    st["conditions"] = [dict(c) for c in st.get("conditions") or []]
    st.update({
        "observedGeneration": meta(deploy).get("generation", 0),
        "replicas": status_total(all_rss, "replicas"),
        "updatedReplicas": status_total([new_rs], "replicas"),
        "readyReplicas": status_total(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(replicas(deploy) - available, 0),
    })
    if available >= replicas(deploy) - max_unavailable(deploy):
        set_deploy_condition(
            st, condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
        )
    else:
        set_deploy_condition(st, condition("Available", "False", MIN_UNAVAILABLE,
                                           "Deployment does not have minimum availability.", now))
    if not st["conditions"]:
        st.pop("conditions")
    return st


def has_progress_deadline(deploy: Obj) -> bool:
    pds = spec(deploy).get("progressDeadlineSeconds")
    return pds is not None and int(pds) != 2147483647


def is_complete(deploy: Obj, st: Obj) -> bool:
    n = replicas(deploy)
    return (st.get("updatedReplicas") == n and st.get("replicas") == n and st.get("availableReplicas") == n
            and int(st.get("observedGeneration") or 0) >= int(meta(deploy).get("generation") or 0))


def is_progressing(deploy: Obj, new: Obj) -> bool:
    old = status(deploy)
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = int(new.get("replicas") or 0) - int(new.get("updatedReplicas") or 0)
    return (int(new.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0)
            or new_old < old_old
            or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
            or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0))


def deadline_at(deploy: Obj, st: Obj) -> datetime | None:
    """When the Progressing condition times out (None: no deadline or already decided)."""
    if not has_progress_deadline(deploy):
        return None
    cond = get_condition(st, "Progressing")
    if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    return since + timedelta(seconds=int(spec(deploy)["progressDeadlineSeconds"])) if since else None
