"""The apps/v1 workload kinds: Deployment, ReplicaSet, DaemonSet and StatefulSet, including their
rolling-update int-or-percent fields and which spec fields an update may change.

Owns: the per-kind validators of apps/v1.
Must not import: the batch, service or config validators, or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    IMMUTABLE,
    GoRepr,
    forbidden,
    go_label_selector,
    go_quote,
    go_string_map,
    invalid,
    is_int,
    non_negative,
    not_supported,
    required,
)
from orchestra.api.machinery.names import PERCENT_FMT, PERCENT_RE, is_dns1123_subdomain, regex_error
from orchestra.api.policy.validation.meta import (
    selector_empty,
    selector_matches,
    validate_label_selector,
    validate_object_meta,
)
from orchestra.api.policy.validation.pod import validate_pod_template
from orchestra.objects import Obj, as_dict


def _validate_intstr_percent(value: Any, path: str, *, max_100: bool) -> list[Cause]:
    if isinstance(value, str):
        if not PERCENT_RE.match(value):
            return [
                invalid(
                    path,
                    value,
                    regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        PERCENT_FMT,
                        "1%",
                        "93%",
                    ),
                )
            ]
        if max_100 and int(value[:-1]) > 100:
            return [invalid(path, value, "must not be greater than 100%")]
        return []
    return non_negative(value, path)


def _intstr_zero(value: Any) -> bool:
    return value in (0, "0%") or value is None


def _validate_rolling(rolling: Obj, path: str) -> list[Cause]:
    max_unavailable, max_surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = _validate_intstr_percent(max_unavailable, f"{path}.maxUnavailable", max_100=True)
    errs += _validate_intstr_percent(max_surge, f"{path}.maxSurge", max_100=False)
    if _intstr_zero(max_unavailable) and _intstr_zero(max_surge):
        errs.append(
            invalid(
                f"{path}.maxUnavailable",
                max_unavailable if max_unavailable is not None else 0,
                "may not be 0 when `maxSurge` is 0",
            )
        )
    return errs


def _validate_selector_and_template(spec: Obj, kind_word: str) -> list[Cause]:
    """Selector required/non-empty/valid, and it must select the template's labels."""
    errs: list[Cause] = []
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector", ""))
    else:
        errs += validate_label_selector(sel, "spec.selector")
        if selector_empty(sel):
            errs.append(
                invalid("spec.selector", go_label_selector(sel), f"empty selector is invalid for {kind_word}")
            )
    template = as_dict(spec.get("template"))
    labels = as_dict(template.get("metadata")).get("labels")
    if isinstance(sel, dict) and not selector_empty(sel) and not selector_matches(sel, labels):
        errs.append(
            invalid(
                "spec.template.metadata.labels",
                GoRepr(go_string_map(labels)),
                "`selector` does not match template `labels`",
            )
        )
    errs += validate_pod_template(template, "spec.template")
    return errs


def _restart_always(spec: Obj) -> list[Cause]:
    policy = as_dict(as_dict(spec.get("template")).get("spec")).get("restartPolicy", "")
    if policy in ("", None) or policy == "Always":
        return []
    return [not_supported("spec.template.spec.restartPolicy", policy, ("Always",))]


def _selector_immutable(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return []
    new_sel, old_sel = as_dict(obj.get("spec")).get("selector"), as_dict(old.get("spec")).get("selector")
    if new_sel != old_sel:
        return [invalid("spec.selector", go_label_selector(new_sel), IMMUTABLE)]
    return []


def validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += non_negative(spec.get("replicas", 0), "spec.replicas")
    errs += _validate_selector_and_template(spec, "deployment")
    errs += _restart_always(spec)
    strategy = as_dict(spec.get("strategy"))
    stype = strategy.get("type")
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.append(
                forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif stype == "RollingUpdate":
        if strategy.get("rollingUpdate") is None:
            errs.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            errs += _validate_rolling(as_dict(strategy["rollingUpdate"]), "spec.strategy.rollingUpdate")
    else:
        rolling = (
            "(*apps.RollingUpdateDeployment)(nil)"
            if strategy.get("rollingUpdate") is None
            else "(*apps.RollingUpdateDeployment)(0xc000000000)"
        )
        bad = GoRepr(f"apps.DeploymentStrategy{{Type:{go_quote(str(stype or ''))}, RollingUpdate:{rolling}}}")
        errs.append(not_supported("spec.strategy", bad, ("Recreate", "RollingUpdate")))
    errs += non_negative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    errs += non_negative(spec.get("revisionHistoryLimit", 0), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if is_int(deadline):
        errs += non_negative(deadline, "spec.progressDeadlineSeconds")
        if deadline <= spec.get("minReadySeconds", 0):
            errs.append(
                invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return errs + _selector_immutable(obj, old)


def validate_replicaset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += non_negative(spec.get("replicas", 0), "spec.replicas")
    errs += non_negative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    # kube's ReplicaSet message really says "deployment".
    errs += _validate_selector_and_template(spec, "deployment")
    errs += _restart_always(spec)
    return errs + _selector_immutable(obj, old)


def validate_daemonset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _validate_selector_and_template(spec, "daemonset")
    errs += _restart_always(spec)
    errs += non_negative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    strategy = as_dict(spec.get("updateStrategy"))
    stype = strategy.get("type", "")
    if stype == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        errs += _validate_rolling(as_dict(strategy["rollingUpdate"]), "spec.updateStrategy.rollingUpdate")
    elif stype not in ("RollingUpdate", "OnDelete"):
        errs.append(not_supported("spec.updateStrategy.type", stype, ("RollingUpdate", "OnDelete")))
    errs += non_negative(spec.get("revisionHistoryLimit", 0), "spec.revisionHistoryLimit")
    return errs + _selector_immutable(obj, old)


_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _with_claim_volumes(spec: Obj) -> Obj:
    """The spec with its template's volumes as the pods will have them: volumeMounts may name a
    volumeClaimTemplate (kube does not validate the template's volumes against its mounts at all)."""
    names = [as_dict(as_dict(t).get("metadata")).get("name") for t in spec.get("volumeClaimTemplates") or []]
    template = as_dict(spec.get("template"))
    pod_spec = as_dict(template.get("spec"))
    present = {as_dict(v).get("name") for v in pod_spec.get("volumes") or []}
    extra = [{"name": n, "persistentVolumeClaim": {"claimName": n}} for n in names if n and n not in present]
    if not extra:
        return spec
    volumes = [*(pod_spec.get("volumes") or []), *extra]
    return {**spec, "template": {**template, "spec": {**pod_spec, "volumes": volumes}}}


def validate_statefulset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    policy = spec.get("podManagementPolicy", "")
    if not policy:
        errs.append(required("spec.podManagementPolicy", ""))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = as_dict(spec.get("updateStrategy"))
    stype = strategy.get("type", "")
    if not stype:
        errs.append(required("spec.updateStrategy", ""))
    elif stype == "OnDelete" and strategy.get("rollingUpdate") is not None:
        errs.append(
            invalid(
                "spec.updateStrategy.rollingUpdate",
                strategy["rollingUpdate"],
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    elif stype == "RollingUpdate":
        errs += non_negative(
            as_dict(strategy.get("rollingUpdate")).get("partition", 0),
            "spec.updateStrategy.rollingUpdate.partition",
        )
    elif stype not in ("OnDelete", "RollingUpdate"):
        errs.append(invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    errs += non_negative(spec.get("replicas", 0), "spec.replicas")
    errs += non_negative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    errs += _validate_selector_and_template(_with_claim_volumes(spec), "statefulset")
    errs += _restart_always(spec)
    if as_dict(as_dict(spec.get("template")).get("spec")).get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        rest_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        rest_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if rest_new != rest_old:
            errs.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
    return errs
