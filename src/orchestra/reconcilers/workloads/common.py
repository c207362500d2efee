"""What every workload controller shares: the injected clock, pod state predicates, conditions,
int-or-percent resolution, template hashing, and write expectations.

Owns:
  * `Clock` — a function returning the current aware datetime. Object timestamps written by the
    workload controllers (conditions, startTime, completionTime, lastScheduleTime) and every
    comparison against timestamps read from objects (a pod's Ready lastTransitionTime for
    minReadySeconds, a condition's lastUpdateTime for progressDeadlineSeconds) go through it, so
    tests pass `virtual_clock()` (an epoch plus trio.current_time()) and assert exact virtual
    times; production uses `wall_clock`.
  * `Expectations` — kube's ControllerExpectations reduced to what a resourceVersion-carrying API
    allows: after a write, the next reconcile of the same key first waits until the informer has
    caught up to that revision; pods deleted but still in the cache are hidden until the cache
    drops them (or marks them terminating), so a lagging cache never causes a second create or
    an extra victim.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import trio

from orchestra.api.objects import parse_rfc3339
from orchestra.client.base import Obj
from orchestra.controller import Informer

Clock = Callable[[], datetime]
VIRTUAL_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def wall_clock() -> datetime:
    return datetime.now(UTC)


def virtual_clock(epoch: datetime = VIRTUAL_EPOCH) -> Clock:
    """A clock derived from trio's: `epoch + trio.current_time()` (deterministic under MockClock)."""

    def now() -> datetime:
        return epoch + timedelta(seconds=trio.current_time())

    return now


def fmt_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    return parse_rfc3339(text) if isinstance(text, str) else None


# --- object access -------------------------------------------------------------------------------


def meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def status(obj: Obj | None) -> Obj:
    return (obj or {}).get("status") or {}


def controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: Obj) -> Obj:
    """The controller ownerReference a workload sets on what it creates (kube's NewControllerRef)."""
    m = meta(owner)
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


def owner_keys(obj: Obj | None, kind: str) -> list[str]:
    """The `namespace/name` key of obj's controller when it is of `kind`."""
    if obj is None:
        return []
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return []
    return [f"{meta(obj).get('namespace')}/{ref.get('name')}"]


def int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)


# --- pods ----------------------------------------------------------------------------------------


def is_terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_pod_active(pod: Obj) -> bool:
    """kube's controller.IsPodActive: not Succeeded/Failed and not being deleted."""
    return status(pod).get("phase") not in ("Succeeded", "Failed") and not is_terminating(pod)


def ready_condition(pod: Obj) -> Obj | None:
    for c in status(pod).get("conditions") or []:
        if c.get("type") == "Ready":
            return c  # type: ignore[no-any-return]
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def ready_since(pod: Obj) -> datetime | None:
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """kube's podutil.IsPodAvailable: Ready, and Ready for at least minReadySeconds."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) <= now


def seconds_until_available(pods: Iterable[Obj], min_ready_seconds: int, now: datetime) -> float | None:
    """When the first ready-but-not-yet-available pod becomes available (a requeue delay)."""
    if min_ready_seconds <= 0:
        return None
    waits = []
    for pod in pods:
        since = ready_since(pod)
        if since is not None and not is_pod_available(pod, min_ready_seconds, now):
            waits.append((since + timedelta(seconds=min_ready_seconds) - now).total_seconds())
    return max(min(waits), 0.0) + 0.001 if waits else None


def restart_count(pod: Obj) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in status(pod).get("containerStatuses") or [])


# --- conditions ----------------------------------------------------------------------------------


def get_condition(st: Obj, type_: str) -> Obj | None:
    for c in st.get("conditions") or []:
        if c.get("type") == type_:
            return c  # type: ignore[no-any-return]
    return None


def set_condition(st: Obj, cond: Obj) -> None:
    """Replace the condition of cond's type; keep lastTransitionTime when status and reason are
    unchanged (kube's SetDeploymentCondition / SetCondition)."""
    current = get_condition(st, cond["type"])
    if current is not None and current.get("status") == cond.get("status") and "lastTransitionTime" in current:
        cond = {**cond, "lastTransitionTime": current["lastTransitionTime"]}
    st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(st: Obj, type_: str) -> None:
    conds = [c for c in st.get("conditions") or [] if c.get("type") != type_]
    if conds:
        st["conditions"] = conds
    else:
        st.pop("conditions", None)


def condition_true(obj: Obj, type_: str) -> bool:
    c = get_condition(status(obj), type_)
    return c is not None and c.get("status") == "True"


# --- int-or-percent ------------------------------------------------------------------------------


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


# --- template hashing ----------------------------------------------------------------------------

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: map each character onto the vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """kube's ComputeHash: fnv32a over the template (here canonical JSON) and the collision count,
    then SafeEncodeString of the decimal hash: stable, up to 10 characters, no vowels."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(_fnv32a(data)))


# --- expectations --------------------------------------------------------------------------------


class Expectations:
    """See the module docstring."""

    def __init__(self) -> None:
        self._written: dict[str, dict[int, tuple[Informer, int]]] = {}
        self._deleted: set[str] = set()

    def clear(self) -> None:
        """Forget every expectation (the controller restarted: its writes in flight were cut off)."""
        self._written.clear()
        self._deleted.clear()

    def wrote(self, key: str, informer: Informer, obj: Obj | None) -> None:
        rv = meta(obj).get("resourceVersion")
        if not rv:
            return
        slot = self._written.setdefault(key, {})
        prev = slot.get(id(informer))
        if prev is None or prev[1] < int(rv):
            slot[id(informer)] = (informer, int(rv))

    def deleted(self, obj: Obj) -> None:
        uid = meta(obj).get("uid")
        if uid:
            self._deleted.add(uid)

    def hidden(self, obj: Obj) -> bool:
        return meta(obj).get("uid") in self._deleted

    def observe(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        """Informer handler: forget deletions the cache now reflects."""
        obj = new if new is not None else old
        if obj is not None and (new is None or is_terminating(new)):
            self._deleted.discard(meta(obj).get("uid", ""))

    async def settle(self, key: str) -> None:
        for informer, rv in self._written.pop(key, {}).values():
            await informer.wait_for_resource_version(rv)
