"""What every workload controller shares beyond the object vocabulary (orchestra.objects): pod
state predicates (active, available after minReadySeconds), owner keys, template hashing, and
write expectations.

Owns:
  * Time: every timestamp is compared against `now` from the controller's injected Clock
    (orchestra.controller.clock): a pod's Ready lastTransitionTime for minReadySeconds, a
    condition's lastUpdateTime for progressDeadlineSeconds.
  * `Expectations` — kube's ControllerExpectations reduced to what a resourceVersion-carrying API
    allows: after a write, the next reconcile of the same key first waits until the informer has
    caught up to that revision; pods deleted but still in the cache are hidden until the cache
    drops them (or marks them terminating), so a lagging cache never causes a second create or
    an extra victim.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import orjson

from orchestra.controller import Informer
from orchestra.objects import (
    Obj,
    controller_ref,
    is_pod_ready,
    is_terminating,
    meta,
    parse_time,
    ready_condition,
    status,
)

# --- owners --------------------------------------------------------------------------------------


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


def is_pod_active(pod: Obj) -> bool:
    """kube's controller.IsPodActive: not Succeeded/Failed and not being deleted."""
    return status(pod).get("phase") not in ("Succeeded", "Failed") and not is_terminating(pod)


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
