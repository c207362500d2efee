"""NetworkPolicy enforcement on this node: informers over Pods, Namespaces and NetworkPolicies feed
one level-based reconcile that keeps the nft table `inet orchestra-netpol` equal to what the
policies say.

Owns: `NetworkPolicyEnforcer(client, node=, host=, nft=)`. Each change that can move a rule (a
pod's address, labels, node, named ports or phase; a namespace's labels; any policy) wakes the
loop; it computes the whole ruleset from the caches (selection.py, compile.py) and, when it differs
from what the kernel has, applies it in ONE nft transaction (a failed one changes nothing and is
retried with backoff, `statistics()` counts both). Changes show in the kernel within milliseconds
of the watch event. Events that come while a pass runs make one more pass, and a pass over many pods
is paced (the next starts at the earliest PACE times its duration later), so thousands of pod events
cost a bounded share of the process; with no policy at all a pass does not look at the pods.
`run()` removes the table when it is cancelled (orchestra stops), so a stopped
orchestra leaves no rules behind; a crash leaves the last rules in force until the supervisor runs
it again, which replaces them.
`source_mark(address)`: the packet mark the service proxy gives its connection to a backend when
the client is a pod of the cluster (the pod's IPv4 address as a 32-bit integer; None for anything
else, which policies treat as the node's own traffic), so policies see the client pod behind the
proxy, as they see it behind kube-proxy's DNAT.
Must not import: apiserver, app, cli, node, runtime, the service proxy (the app hands it the mark).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import trio

from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.net.common import kind
from orchestra.net.netpol.compile import Command, HostSettings, removal, ruleset
from orchestra.net.netpol.kernel import NFT_TIMEOUT, Nft, NftError
from orchestra.net.netpol.model import Endpoint, NamedPort
from orchestra.net.netpol.ranges import addresses
from orchestra.net.netpol.selection import pod_rules
from orchestra.objects import Obj, as_dict, object_key

log = logging.getLogger("orchestra.net.netpol")

RETRY_INITIAL = 0.5
RETRY_MAX = 30.0
PACE = 2.0  # a pass that took d seconds is followed by at least PACE * d seconds without one


def dns_endpoint(ip: str) -> Endpoint:
    """The cluster DNS (orchestra answers on kube-dns' ClusterIP) as the CoreDNS pods it stands for:
    kube-system, `k8s-app: kube-dns`, ports `dns` 53/UDP and `dns-tcp` 53/TCP; so the usual
    "allow DNS" egress rules allow it and a default-deny egress denies it, as in kube."""
    return Endpoint("kube-system", "kube-dns", {"k8s-app": "kube-dns"}, ip,
                    ports=(NamedPort("dns", "UDP", 53), NamedPort("dns-tcp", "TCP", 53)))


class NetworkPolicyEnforcer:
    def __init__(self, client: Client, *, node: str, host: HostSettings, nft: Nft | None = None) -> None:
        self.node = node
        self.host = host
        self.nft = nft or Nft()
        self.pods = Informer(client, kind("Pod"))
        self.namespaces = Informer(client, kind("Namespace"))
        self.policies = Informer(client, kind("NetworkPolicy"))
        self._wake = trio.Event()
        self._applied: list[Command] | None = None
        self._endpoints: dict[str, Endpoint] = {}  # pod key -> what policies see of it
        self._ips: dict[str, int] = {}  # pod address -> how many pods have it (a moment of reuse)
        self._failures = 0
        self.errors = 0
        self.last_error = ""
        # once: run() may run again on the same informers
        self.pods.add_handler(self._on_pod)
        self.namespaces.add_handler(self._on_namespace)
        self.policies.add_handler(lambda _t, _old, _new: self._wake.set())

    # --- events: only what can change a rule wakes the loop -------------------------------------

    def _on_pod(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        now = Endpoint.from_pod(new) if new is not None else None
        before = self._endpoints.pop(key, None) if now is None else self._endpoints.get(key)
        if now is not None:
            self._endpoints[key] = now
        if before == now:
            return
        if before is not None:
            self._ips[before.ip] -= 1
            if not self._ips[before.ip]:
                del self._ips[before.ip]
        if now is not None:
            self._ips[now.ip] = self._ips.get(now.ip, 0) + 1
        self._wake.set()

    def _on_namespace(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        labels = [as_dict(as_dict((o or {}).get("metadata")).get("labels")) for o in (old, new)]
        if old is None or new is None or labels[0] != labels[1]:
            self._wake.set()

    # --- the loop --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._applied = None  # (on a restart) whatever the kernel has now, the first pass replaces it
        refused: NftError | None = None
        keep = False
        try:
            async with trio.open_nursery() as nursery:
                for informer in (self.namespaces, self.policies, self.pods):
                    await nursery.start(informer.run)
                commands = self.desired()
                try:
                    await self.nft.apply(commands)
                except NftError as exc:  # a host that refuses it fails the start, as itself (no group)
                    refused = exc
                    nursery.cancel_scope.cancel()
                    return
                self._applied = commands
                task_status.started()
                while True:
                    with trio.move_on_after(self._retry_delay()):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    began = trio.current_time()
                    await self.converge()
                    await trio.sleep(PACE * (trio.current_time() - began))
        except Exception:
            # a crash after the start: the kernel keeps the last rules until run() replaces them
            # (policies must not fail open while the supervisor restarts this component)
            keep = self._applied is not None
            raise
        finally:
            if not keep:
                with trio.CancelScope(shield=True), trio.move_on_after(NFT_TIMEOUT):
                    try:
                        await self.nft.apply(removal())
                    except NftError as exc:  # nothing more to do on the way out than to say so
                        log.warning("could not remove the NetworkPolicy table: %s", exc)
            self._applied = None
            if refused is not None:
                raise refused

    def desired(self) -> list[Command]:
        """The ruleset the caches call for now."""
        policies = self.policies.list()
        if not policies:  # nothing is isolated: no pod matters
            return ruleset([], pods=(), host=self.host)
        endpoints = list(self._endpoints.values())
        namespaces = {str(as_dict(n.get("metadata")).get("name")): n for n in self.namespaces.list()}
        extra = [dns_endpoint(self.host.dns_ip)] if self.host.dns_ip else []
        rules = pod_rules(policies, endpoints, namespaces, node=self.node, extra=extra)
        return ruleset(rules, pods=addresses(e.address for e in endpoints), host=self.host)

    async def converge(self) -> None:
        commands = self.desired()
        if commands != self._applied:
            try:
                await self.nft.apply(commands)
            except NftError as exc:  # the kernel keeps the previous rules; retried with backoff
                self._failures += 1
                self.errors += 1
                self.last_error = str(exc)
                log.error("applying NetworkPolicies failed (retry in %.1fs): %s", self._retry_delay(), exc)
                return
            self._applied = commands
        self._failures = 0

    def _retry_delay(self) -> float:
        if not self._failures:
            return float("inf")
        return min(RETRY_INITIAL * 2 ** (self._failures - 1), RETRY_MAX)

    # --- what the service proxy asks -------------------------------------------------------------

    def source_mark(self, address: str) -> int | None:
        if address not in self._ips:
            return None
        return int(ipaddress.IPv4Address(address))

    def statistics(self) -> dict[str, Any]:
        return {"transactions": self.nft.transactions, "errors": self.errors, "last_error": self.last_error,
                "pods": len(self._endpoints)}
