"""Several servers over one etcd: only the leader runs the scheduler and the controllers.

Owns: `start_elected_controllers` — with `--store etcd://...` every server serves the API and runs its
node agents, but the controllers and the scheduler run only while this server holds the Lease
`kube-system/orchestra-controllers` (controller/leaderelection.py: client-go's election; kube has one
Lease for kube-controller-manager and one for kube-scheduler, orchestra one for both as they run in
one process). Each term of leadership starts them afresh in a nursery of its own, with informers of
their own (a fresh informer scope), and a lost Lease cancels that nursery at once — the way
kube-controller-manager exits when its renewal fails — before the server campaigns again. The
server's identity: hostname, listen address and a random suffix; each server also publishes an
identity Lease of its own (servers.py) for `orchestra status`, from which every server keeps the
`kubernetes` Endpoints and lists the other servers in its kubeconfig. `kubectl get cs` reports a standby
server's scheduler and controller-manager healthy, naming the leader.
Timings: kube's 15 s lease, 10 s renew deadline, 2 s retry; under `--timings fast` 6 s, 4 s and 1 s.
Must not import: cli.
"""

from __future__ import annotations

import functools
import logging
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from orchestra.app.servers import run_identity_lease
from orchestra.app.state import write_kubeconfig
from orchestra.client.local import LocalClient
from orchestra.controller.leaderelection import DEFAULT_TIMINGS, FAST_TIMINGS, LeaderElector

if TYPE_CHECKING:
    from orchestra.app.config import Cluster, ClusterConfig

log = logging.getLogger("orchestra")

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "orchestra-controllers"
COMPONENTS = ("scheduler", "controller-manager")


def elected(config: ClusterConfig) -> bool:
    """Do this server's controllers run only under the Lease? Yes on etcd (other servers may share it)."""
    return config.store.startswith("etcd://")


def server_identity(config: ClusterConfig) -> str:
    """hostname_listen-address_random, unique per process (as kube's `hostname_<uuid>`)."""
    return f"{socket.gethostname()}_{config.listen_host}:{config.listen_port}_{secrets.token_hex(4)}"


class _Term:
    """The informer scope of one term of leadership (a weak-referenceable key)."""


async def start_elected_controllers(nursery: trio.Nursery, cluster: Cluster) -> LeaderElector:
    """Campaign for the Lease in `nursery`; while leading, run the controllers and the scheduler.
    Returns once the first attempt was decided: when it won, after the controllers' caches synced
    (so a lone server starts as one without election would)."""
    from orchestra.app.components import start_controllers

    timings = FAST_TIMINGS if cluster.config.timings == "fast" else DEFAULT_TIMINGS
    client = LocalClient(cluster.core, field_manager="orchestra-leader-election")
    elector = LeaderElector(client, namespace=LEASE_NAMESPACE, name=LEASE_NAME,
                            identity=server_identity(cluster.config), timings=timings)
    cluster.elector = elector
    first_term = trio.Event()

    async def lead() -> None:
        log.info("leading (%s): starting the scheduler and the controllers", elector.identity)
        try:
            async with trio.open_nursery() as term:
                await start_controllers(term, cluster, informer_scope=_Term())
                first_term.set()
                await trio.sleep_forever()
        finally:
            first_term.set()
            cluster.controllers.clear()
            _standby_statuses(cluster, elector)
            log.warning("stopped the scheduler and the controllers (%s no longer leads)", elector.identity)

    _standby_statuses(cluster, elector)
    await nursery.start(functools.partial(run_identity_lease, client, elector.identity,
                                          cluster.advertised_url, on_servers=_kubeconfig_writer(cluster)))
    await nursery.start(elector.run, lead)
    await elector.wait_first_attempt()
    if elector.is_leader():
        await first_term.wait()
    else:
        log.info("standby (%s): the controllers run on the leader, %s", elector.identity, elector.leader)
    return elector


def _kubeconfig_writer(cluster: Cluster) -> Callable[[list[str]], None]:
    """Rewrite the server's kubeconfig when the set of live servers changes: every other server a
    cluster and context of its own (kubectl does not fail over; `kubectl config use-context` does)."""
    written: list[list[str]] = []

    def write(servers: list[str]) -> None:
        others = [s for s in servers if s != cluster.advertised_url]
        if written and written[-1] == others:
            return
        write_kubeconfig(cluster.kubeconfig, cluster.url, cluster.token, cluster.ca_cert, others=others)
        written[:] = [others]

    return write


def _standby_statuses(cluster: Cluster, elector: LeaderElector) -> None:
    """`kubectl get cs` on a server that does not lead: its scheduler and controller-manager wait."""

    def probe() -> tuple[bool, str, str]:
        return True, f"ok (standby; leader {elector.leader or 'none'})", ""

    statuses: Any = cluster.server.component_statuses
    for name in COMPONENTS:
        statuses.add(name, probe)
