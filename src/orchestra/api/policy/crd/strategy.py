"""The CustomResourceDefinition kind's own defaults and strategy (SetDefaults, PrepareForCreate/Update).

Owns: `default_crd` (names.singular and listKind from the kind, conversion strategy None, a webhook
service's port 443, the storage version as the stored one when none is), `prepare_create` (status
reset to accepted names still empty and the storage version as the first stored version),
`prepare_update` (a new storage version joins status.storedVersions; nothing else of status
changes except through the status subresource) and `mark_deleting` (the first delete adds the
cleanup finalizer the CRD controller removes once every custom resource is gone, and the
Terminating condition).
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

from orchestra.objects import Obj, as_dict, as_dicts, now_rfc3339
from orchestra.objects.conditions import set_status_condition

CLEANUP = "customresourcecleanup.apiextensions.k8s.io"  # the finalizer a deleted CRD waits on


def default_crd(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str):
        if not names.get("singular"):
            names["singular"] = names["kind"].lower()
        if not names.get("listKind") and names["kind"]:
            names["listKind"] = names["kind"] + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    service = as_dict(as_dict(as_dict(spec.get("conversion")).get("webhook")).get("clientConfig")).get(
        "service"
    )
    if isinstance(service, dict):
        service.setdefault("port", 443)
    status = obj.get("status")
    storage = storage_version(obj)
    if storage and (status is None or (isinstance(status, dict) and not status.get("storedVersions"))):
        obj["status"] = {**(status or {}), "storedVersions": [storage]}


def storage_version(obj: Obj) -> str | None:
    for v in as_dicts(as_dict(obj.get("spec")).get("versions")):
        if v.get("storage") is True:
            return str(v.get("name"))
    return None


def prepare_create(obj: Obj) -> None:
    storage = storage_version(obj)
    obj["status"] = {"acceptedNames": {"plural": "", "kind": ""},
                     "storedVersions": [storage] if storage else []}


def prepare_update(new: Obj, old: Obj) -> None:
    status = new.get("status")
    if not isinstance(status, dict):
        return
    storage = storage_version(new)
    stored = list(status.get("storedVersions") or [])
    if storage and storage not in stored:
        new["status"] = {**status, "storedVersions": [*stored, storage]}


def mark_deleting(obj: Obj) -> None:
    """The first delete of a CRD: kube's REST Delete adds the cleanup finalizer and Terminating."""
    finalizers = list(as_dict(obj.get("metadata")).get("finalizers") or [])
    if CLEANUP not in finalizers:
        obj.setdefault("metadata", {})["finalizers"] = [*finalizers, CLEANUP]
    cond = {
        "type": "Terminating",
        "status": "True",
        "reason": "InstanceDeletionPending",
        "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    }
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    set_status_condition(status, cond, now_rfc3339())
