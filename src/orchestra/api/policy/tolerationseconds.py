"""kube's DefaultTolerationSeconds admission plugin (plugin/pkg/admission/defaulttolerationseconds).

Owns: `DefaultTolerationSeconds`, which gives a pod that does not already tolerate them the NoExecute
tolerations `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable` (operator Exists),
with kube-apiserver's --default-not-ready-toleration-seconds and
--default-unreachable-toleration-seconds (300 each by default) as their tolerationSeconds, appended
after the pod's own. As kube's plugin it runs on the create and the update of a pod itself, never on
a subresource (status, ephemeralcontainers), other kinds or pod templates (a controller's pods get
them when the controller creates them). It has its own test of "already tolerates", not
ToleratesTaint: a toleration counts when its key is the taint's or empty and its effect is NoExecute
or empty; its operator, value and tolerationSeconds are not looked at.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.policy.admission import Attributes
from orchestra.objects import Obj, only_dicts

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300  # both flags' default in kube-apiserver


def tolerates_no_execute(tolerations: list[Obj], key: str) -> bool:
    """The plugin's test: some toleration names `key` (or no key) with effect NoExecute (or none)."""
    return any(t.get("key") in (key, "", None) and t.get("effect") in ("NoExecute", "", None)
               for t in tolerations)


def add_default_tolerations(spec: Obj, *, not_ready_seconds: int, unreachable_seconds: int) -> None:
    """Append the tolerations `spec` lacks (in place); a `tolerations` of the wrong type is left to
    validation."""
    tolerations: Any = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return
    present = only_dicts(tolerations)
    added = [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
        for key, seconds in ((NOT_READY_TAINT, not_ready_seconds), (UNREACHABLE_TAINT, unreachable_seconds))
        if not tolerates_no_execute(present, key)
    ]
    if added:
        spec["tolerations"] = [*tolerations, *added]


class DefaultTolerationSeconds:
    """The admission plugin, with the values of kube-apiserver's two flags."""

    name = "DefaultTolerationSeconds"

    def __init__(self, not_ready_seconds: int = DEFAULT_SECONDS,
                 unreachable_seconds: int = DEFAULT_SECONDS) -> None:
        self.not_ready_seconds = not_ready_seconds
        self.unreachable_seconds = unreachable_seconds

    async def admit(self, a: Attributes) -> None:
        if (a.group, a.kind) != ("", "Pod") or a.subresource or a.operation not in ("CREATE", "UPDATE"):
            return
        spec = a.obj.get("spec")
        if spec is None:
            spec = a.obj["spec"] = {}
        if isinstance(spec, dict):  # anything else: validation reports it
            add_default_tolerations(spec, not_ready_seconds=self.not_ready_seconds,
                                    unreachable_seconds=self.unreachable_seconds)
