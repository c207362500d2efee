"""componentstatuses (`kubectl get cs`): kube-apiserver's deprecated health view of the control
plane, computed on every GET from the real components, never stored.

Owns: `ComponentStatuses`, the named probes (a probe answers (healthy, message, error)) in kube's
order — scheduler, controller-manager, etcd-0 (here: the store, probed by a read; over etcd, also
whether its watch of etcd is connected) — and the
ComponentStatus objects they make (a Healthy condition, True with kube's messages: "ok" and
`{"health":"true","reason":""}`), with the deprecation warning kube sends. The app adds the probes
of the scheduler and the controllers (app/run.py); a server without them lists the store only.
Must not import: cli, app, reconcilers, node, net, or a runtime.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestra.api.errors import ApiError, not_found
from orchestra.objects import Obj
from orchestra.store import Store, StoreClosedError

Probe = Callable[[], tuple[bool, str, str]]  # () -> (healthy, message, error)
WARNING = "v1 ComponentStatus is deprecated in v1.19+"
ORDER = ("scheduler", "controller-manager", "etcd-0")
ETCD_OK = '{"health":"true","reason":""}'


def store_probe(store: Store) -> Probe:
    """etcd-0: the store answers a read (and over etcd, its watch of etcd is connected)."""

    def probe() -> tuple[bool, str, str]:
        try:
            store.get("/registry/core/namespaces/default")
        except (StoreClosedError, OSError) as exc:  # the store's ill health: reported, not raised
            return False, "", f"store read failed: {exc}"
        stats = store.statistics()
        if stats.get("etcd_connected") is False:
            return False, "", f"etcd: {stats.get('etcd_error') or 'not connected'}"
        return True, ETCD_OK, ""

    return probe


class ComponentStatuses:
    def __init__(self, store: Store) -> None:
        self.probes: dict[str, Probe] = {"etcd-0": store_probe(store)}

    def add(self, name: str, probe: Probe) -> None:
        self.probes[name] = probe

    def list(self) -> list[Obj]:
        names = sorted(self.probes, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
        return [self._status(name) for name in names]

    def get(self, name: str) -> Obj:
        if name not in self.probes:
            raise not_found("componentstatuses", name, group="", plural="componentstatuses")
        return self._status(name)

    def _status(self, name: str) -> Obj:
        try:
            healthy, message, error = self.probes[name]()
        except ApiError as exc:
            healthy, message, error = False, "", exc.message
        condition: Obj = {"type": "Healthy", "status": "True" if healthy else "False"}
        if message:
            condition["message"] = message
        if error:
            condition["error"] = error
        return {"kind": "ComponentStatus", "apiVersion": "v1",
                "metadata": {"name": name, "creationTimestamp": None}, "conditions": [condition]}
