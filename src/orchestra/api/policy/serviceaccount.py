"""The ServiceAccount admission plugin (kube's plugin/pkg/admission/serviceaccount) and the objects
every namespace gets for its pods (the `default` ServiceAccount, the `kube-root-ca.crt` ConfigMap).

Owns, for every Pod create (whoever writes it: kubectl, or a controller in process):
  * spec.serviceAccountName: `default` when unset; the ServiceAccount must exist, else 403
    "service account NS/NAME was not found, retry after the service account is created" (for
    `default`, which the serviceaccount controller makes with the namespace, a few short retries
    first, as kube does);
  * unless `automountServiceAccountToken: false` on the pod (or, when the pod does not say, on the
    ServiceAccount): the projected volume `kube-api-access-<5 chars>` (a serviceAccountToken of
    3607 s, the `kube-root-ca.crt` ConfigMap's ca.crt, the namespace from the downward API),
    mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container and init
    container that has nothing mounted there yet;
  * spec.imagePullSecrets: the ServiceAccount's, when the pod has none.
`default_service_account(ns)` and `root_ca_config_map(ns, ca_pem)` are the namespace furniture that
the controllers (reconcilers/serviceaccounts.py) and the app's bootstrap create.
Must not import: api/request, api/tables or anything above the api layer.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from typing import Any

import trio

from orchestra.api.policy.admission import Attributes, forbidden
from orchestra.api.serviceaccount import (
    DEFAULT_NAME,
    MOUNT_PATH,
    ROOT_CA_CONFIGMAP,
    ROOT_CA_DESCRIPTION,
    ROOT_CA_KEY,
    VOLUME_PREFIX,
    WARN_ONLY_EXPIRATION,
)
from orchestra.objects import Obj, as_dict, as_dicts

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand, as names.SimpleNameGenerator
_RANDOM = random.Random()  # not the global one: tests (hypothesis) watch that for stray use
DEFAULT_RETRIES = 10
RETRY_INTERVAL = (0.1, 0.2)  # seconds, a random pause in this range between lookups of `default`


def _suffix() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(5))


def default_service_account(namespace: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_NAME, "namespace": namespace}}


def root_ca_config_map(namespace: str, ca_pem: str) -> Obj:
    """What kube's root-ca-cert-publisher writes into every namespace."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                     "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
        "data": {ROOT_CA_KEY: ca_pem},
    }


def token_volume_source() -> Obj:
    """kube's TokenVolumeSource(): what `kube-api-access-*` projects."""
    return {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": WARN_ONLY_EXPIRATION, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}]}},
            {"downwardAPI": {"items": [
                {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    }


def should_automount(sa: Obj, pod: Obj) -> bool:
    """The pod's automountServiceAccountToken wins, then the service account's; default true."""
    for source in (as_dict(pod.get("spec")), sa):
        value = source.get("automountServiceAccountToken")
        if isinstance(value, bool):
            return value
    return True


class ServiceAccountAdmission:
    """The admission plugin; `retries` (lookups of `default`) and `suffix` are injectable for tests."""

    name = "ServiceAccount"

    def __init__(self, *, retries: int = DEFAULT_RETRIES,
                 suffix: Callable[[], str] = _suffix) -> None:
        self.retries = retries
        self.suffix = suffix

    async def admit(self, a: Attributes) -> None:
        if (a.group, a.kind) != ("", "Pod") or a.operation != "CREATE":
            return  # kube mutates on create only; the pod's service account is immutable afterwards
        pod = a.obj
        spec = pod.setdefault("spec", {})
        name = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_NAME)
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        sa = await self._service_account(a, name)
        if sa is None:
            raise forbidden("pods", a.name, f"service account {a.namespace}/{name} was not found, "
                            "retry after the service account is created")
        if should_automount(sa, pod):
            mount_token(pod, self.suffix)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [dict(s) for s in as_dicts(sa.get("imagePullSecrets"))]

    async def _service_account(self, a: Attributes, name: str) -> Obj | None:
        attempts = self.retries if name == DEFAULT_NAME else 1  # `default` is on its way with the namespace
        for attempt in range(attempts):
            if attempt:
                await trio.sleep(_RANDOM.uniform(*RETRY_INTERVAL))
            found = a.lookup("ServiceAccount", a.namespace, name)
            if found is not None:
                return found
        return None


def mount_token(pod: Obj, suffix: Callable[[], str] = _suffix) -> None:
    """kube's mountServiceAccountToken: reuse a `kube-api-access-*` volume the pod already has, else add
    one; mount it in every (init) container that has nothing at MOUNT_PATH yet."""
    spec = pod.setdefault("spec", {})
    volumes: list[Any] = spec.get("volumes") or []
    if not isinstance(volumes, list):
        return  # a wrong type: validation reports it
    existing = [v for v in as_dicts(volumes) if str(v.get("name") or "").startswith(VOLUME_PREFIX)]
    volume_name = str(existing[0]["name"]) if existing else VOLUME_PREFIX + suffix()
    mount = {"name": volume_name, "readOnly": True, "mountPath": MOUNT_PATH}
    needed = False
    for key in ("initContainers", "containers"):
        for container in as_dicts(spec.get(key)):
            mounts = container.get("volumeMounts")
            if mounts is not None and not isinstance(mounts, list):
                continue  # a wrong type: validation reports it
            if any(as_dict(m).get("mountPath") == MOUNT_PATH for m in mounts or []):
                continue  # the user mounted something there: kube leaves it
            container["volumeMounts"] = [*(mounts or []), dict(mount)]
            needed = True
    if needed and not existing:
        spec["volumes"] = [*volumes, {"name": volume_name, "projected": token_volume_source()}]
