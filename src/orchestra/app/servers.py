"""The servers of one cluster on etcd: each publishes a Lease of its own, as kube-apiserver's identity
Leases (the APIServerIdentity feature) do, so `orchestra status` can list them, and from those Leases
every server keeps the `default/kubernetes` Endpoints listing the live servers, as kube-apiserver's
lease endpoint reconciler does (joined nodes learn the servers to fail over to from it).

Owns: `run_identity_lease` — the Lease `kube-system/orchestra-apiserver-<hash of the identity>`
labelled `apiserver.kubernetes.io/identity=orchestra`, holderIdentity = the server's identity (the one it
campaigns with), annotated with its advertised URL, renewed every 10 s (kube's), deleted on a clean
stop; as kube-apiserver's lease garbage collector, the removal of other servers' identity Leases not
renewed for an hour (a killed server's); after each renewal (and after the deletion on a stop) the
`kubernetes` Endpoints and EndpointSlices rewritten, when they changed, to the servers whose Lease was
renewed within LIVE_SECONDS (written with the resourceVersion read: a conflict with another server's
write waits for the next tick), and those servers' URLs handed to `on_servers` (the kubeconfig).
A renewal that fails is logged and retried at the next tick.
Must not import: cli.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import trio

from orchestra.api.errors import AlreadyExists, ApiError, NotFound
from orchestra.app.bootstrap import api_address, kubernetes_endpoints
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
# a server whose identity Lease was not renewed for this long is out of the `kubernetes` Endpoints (kube's
# master leases last 15 s, renewed every 10 s; three renewals leave room for a busy host)
LIVE_SECONDS = 3 * RENEW_SECONDS
SLICE_SELECTOR = "kubernetes.io/service-name=kubernetes,endpointslice.kubernetes.io/managed-by=orchestra"


def identity_lease_name(identity: str) -> str:
    return "orchestra-apiserver-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


async def run_identity_lease(client: LocalClient, identity: str, url: str, *, clock: Clock = wall_clock,
                             on_servers: Callable[[list[str]], None] | None = None,
                             task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Publish and renew this server's identity Lease (`url`: where nodes reach it) until cancelled,
    keeping the `kubernetes` Endpoints; then delete the Lease and take this server out of them.
    `started()` after the first attempt."""
    rt = client.kind("Lease")
    name = identity_lease_name(identity)
    started = False
    try:
        while True:
            try:
                await _renew(client, rt, name, identity, url, clock)
                servers = await _collect(client, rt, name, clock())
                await publish_servers(client, servers)
                if on_servers is not None:
                    on_servers(servers)
            except (ApiError, OSError) as exc:  # etcd unreachable (StoreUnavailableError): retried
                log.info("could not renew the identity lease %s/%s: %s", NAMESPACE, name, exc)
            if not started:
                started = True
                task_status.started()
            await trio.sleep(RENEW_SECONDS)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            try:
                await client.delete(rt, NAMESPACE, name)
                await publish_servers(client, [u for u in await _collect(client, rt, name, clock())
                                               if u != url])
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


async def _collect(client: LocalClient, rt: Any, mine: str, now: datetime) -> list[str]:
    """Delete other servers' identity Leases expired (not renewed for their duration); the URLs of the
    live servers (renewed within LIVE_SECONDS), sorted."""
    leases, _ = await client.list(rt, NAMESPACE, label_selector=f"{IDENTITY_LABEL}={IDENTITY_VALUE}")
    live = set()
    for lease in leases:
        spec = lease.get("spec") or {}
        renewed = parse_micro_time(spec.get("renewTime"))
        duration = timedelta(seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS))
        if lease["metadata"]["name"] != mine and renewed is not None and renewed + duration < now:
            try:
                await client.delete(rt, NAMESPACE, lease["metadata"]["name"])
            except NotFound:
                pass  # another server collected it first
            continue
        url = (lease["metadata"].get("annotations") or {}).get(URL_ANNOTATION)
        if url and renewed is not None and renewed + timedelta(seconds=LIVE_SECONDS) >= now:
            live.add(str(url))
    return sorted(live)


async def publish_servers(client: LocalClient, urls: list[str]) -> None:
    """The `default/kubernetes` Endpoints and EndpointSlices list these servers (written only when they
    changed; a conflicting write by another server raises Conflict, retried at the next tick)."""
    eps, slices = kubernetes_endpoints(sorted({api_address(u) for u in urls}))
    await _put(client, client.kind("Endpoints"), eps, ("subsets",))
    slice_rt = client.kind("EndpointSlice")
    for body in slices:
        await _put(client, slice_rt, body, ("addressType", "endpoints", "ports"))
    wanted = {body["metadata"]["name"] for body in slices}
    existing, _ = await client.list(slice_rt, "default", label_selector=SLICE_SELECTOR)
    for stale in existing:  # a port no server listens on any more
        if stale["metadata"]["name"] not in wanted:
            try:
                await client.delete(slice_rt, "default", stale["metadata"]["name"])
            except NotFound:
                pass


async def _put(client: LocalClient, rt: Any, body: dict[str, Any], fields: tuple[str, ...]) -> None:
    name = body["metadata"]["name"]
    try:
        current = await client.get(rt, "default", name)
    except NotFound:
        try:
            await client.create(rt, "default", body)
        except AlreadyExists:
            pass  # another server made it first: compared at the next tick
        return
    labels = {**(current["metadata"].get("labels") or {}), **body["metadata"]["labels"]}
    if all(current.get(f) == body.get(f) for f in fields) and labels == current["metadata"].get("labels"):
        return
    await client.update(rt, {**current, **{f: body.get(f) for f in fields},
                             "metadata": {**current["metadata"], "labels": labels}})


def parse_micro_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
