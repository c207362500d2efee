"""The servers of one cluster on etcd: each publishes a Lease of its own, as kube-apiserver's identity
Leases (the APIServerIdentity feature) do, so `orchestra status` can list them.

Owns: `run_identity_lease` — the Lease `kube-system/orchestra-apiserver-<hash of the identity>`
labelled `apiserver.kubernetes.io/identity=orchestra`, holderIdentity = the server's identity (the one it
campaigns with), annotated with its URL, renewed every 10 s (kube's), deleted on a clean stop; and, as
kube-apiserver's lease garbage collector, the removal of other servers' identity Leases not renewed for
an hour (a killed server's). A renewal that fails is logged and retried at the next tick: the Lease
is informational, nothing depends on it.
Must not import: cli.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

import trio

from orchestra.api.errors import ApiError, NotFound
from orchestra.client.local import LocalClient
from orchestra.controller.clock import Clock, wall_clock
from orchestra.controller.leaderelection import micro_time

log = logging.getLogger("orchestra")

NAMESPACE = "kube-system"
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
IDENTITY_VALUE = "orchestra"
URL_ANNOTATION = "orchestra.io/server-url"
RENEW_SECONDS = 10.0  # kube-apiserver's identity lease renew interval
LEASE_SECONDS = 3600  # and its duration: expired ones are garbage collected


def identity_lease_name(identity: str) -> str:
    return "orchestra-apiserver-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


async def run_identity_lease(client: LocalClient, identity: str, url: str, *, clock: Clock = wall_clock,
                             task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Publish and renew this server's identity Lease until cancelled; then delete it."""
    rt = client.kind("Lease")
    name = identity_lease_name(identity)
    task_status.started()
    try:
        while True:
            try:
                await _renew(client, rt, name, identity, url, clock)
                await _collect(client, rt, name, clock())
            except (ApiError, OSError) as exc:  # etcd unreachable (StoreUnavailableError): retried
                log.info("could not renew the identity lease %s/%s: %s", NAMESPACE, name, exc)
            await trio.sleep(RENEW_SECONDS)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            try:
                await client.delete(rt, NAMESPACE, name)
            except (ApiError, OSError):
                pass  # best effort: another server collects it after LEASE_SECONDS


async def _renew(client: LocalClient, rt: Any, name: str, identity: str, url: str, clock: Clock) -> None:
    spec = {"holderIdentity": identity, "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": micro_time(clock())}
    try:
        current = await client.get(rt, NAMESPACE, name)
    except NotFound:
        await client.create(rt, NAMESPACE, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {IDENTITY_LABEL: IDENTITY_VALUE},
                         "annotations": {URL_ANNOTATION: url}},
            "spec": {**spec, "acquireTime": spec["renewTime"]}})
        return
    await client.update(rt, {**current, "spec": {**(current.get("spec") or {}), **spec}})


async def _collect(client: LocalClient, rt: Any, mine: str, now: datetime) -> None:
    """Delete other servers' identity Leases expired (not renewed for their duration)."""
    leases, _ = await client.list(rt, NAMESPACE, label_selector=f"{IDENTITY_LABEL}={IDENTITY_VALUE}")
    for lease in leases:
        spec = lease.get("spec") or {}
        renewed = parse_micro_time(spec.get("renewTime"))
        duration = timedelta(seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS))
        if lease["metadata"]["name"] != mine and renewed is not None and renewed + duration < now:
            try:
                await client.delete(rt, NAMESPACE, lease["metadata"]["name"])
            except NotFound:
                pass  # another server collected it first


def parse_micro_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
