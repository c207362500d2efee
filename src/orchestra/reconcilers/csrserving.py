"""The kubelet-serving CSR approver: a node's serving certificate for its kubelet API, approved when it
names only that node's own addresses.

kube approves no `kubernetes.io/kubelet-serving` CSR by itself (kube-controller-manager's csrapproving
handles kubelet client certificates only; a cluster running kubelets with serverTLSBootstrap leaves these
to `kubectl certificate approve` or runs a controller such as postfinance's kubelet-csr-approver). This
is such a controller, built in so that `orchestra join` needs no hand:

Owns: `KubeletServingApprover(client)`: a pending kubelet-serving CSR is approved (condition Approved,
reason AutoApproved) when
  * its request passes kube's ValidateKubeletServingCSR (O system:nodes, CN system:node:<name>, DNS or IP
    SANs only, kube's usages),
  * its requester is that node (spec.username is the CN, spec.groups has system:nodes), and
  * every DNS and IP SAN is one of the Node <name>'s status.addresses (any type), so a node can get a
    certificate only for the addresses it publishes (the Node authorizer and NodeRestriction keep it to
    its own Node).
Anything else stays pending for a person (nothing is denied: the Node's addresses may only arrive after
the CSR, and a Node update re-checks that node's pending CSRs).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cryptography import x509

from orchestra.api.policy import certificates as certs
from orchestra.client.base import Client
from orchestra.controller import Controller, Result
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import Obj, as_dict, as_list, format_time, object_key, only_dicts

NODE_INDEX = "node"
MESSAGE = "Auto approving kubelet serving certificate: its names are the node's own addresses."


def _requesting_node(csr: Obj) -> list[str]:
    """The index of pending kubelet-serving CSRs by the node that asked (system:node:<name>)."""
    spec = as_dict(csr.get("spec"))
    user = str(spec.get("username") or "")
    if spec.get("signerName") != certs.KUBELET_SERVING or not user.startswith(certs.NODE_PREFIX):
        return []
    return [user.removeprefix(certs.NODE_PREFIX)]


def _normal(address: str) -> str:
    """IP addresses compared as addresses (::1 and 0:0::1 are one); names case-insensitively."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address.lower()


def node_addresses(node: Obj) -> set[str]:
    return {_normal(str(a.get("address") or ""))
            for a in only_dicts(as_dict(node.get("status")).get("addresses")) if a.get("address")}


def serving_request_problem(spec: Obj, node: Obj | None) -> str | None:
    """Why the CSR `spec` is not one to approve for `node` (None: approve)."""
    try:
        request = certs.parse_request(spec.get("request"))
    except certs.CsrError as exc:
        return str(exc)
    problem = certs.kubelet_serving_error(request, [str(u) for u in as_list(spec.get("usages"))])
    if problem is not None:
        return problem
    cn, _ = certs.subject(request)
    if spec.get("username") != cn or certs.NODES_GROUP not in (spec.get("groups") or []):
        return "the requester is not the node the certificate names"
    if node is None:
        return f"node {cn.removeprefix(certs.NODE_PREFIX)} does not exist"
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = [*san.get_values_for_type(x509.DNSName),
             *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    foreign = sorted({n for n in names if _normal(n) not in node_addresses(node)})
    return f"not addresses of the node: {', '.join(foreign)}" if foreign else None


class KubeletServingApprover(Controller):
    name = "csrapproving-kubelet-serving"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.clock = clock
        self.csrs = self.informer("CertificateSigningRequest", indexers={NODE_INDEX: _requesting_node})
        self.nodes = self.informer("Node")
        self.enqueue_on(self.csrs)
        self.enqueue_on(self.nodes, self._csrs_of_node)

    def _csrs_of_node(self, _t: str, old: Obj | None, new: Obj | None) -> list[str]:
        node = new if new is not None else old
        name = str(as_dict(node.get("metadata") if node else None).get("name") or "")
        return [object_key(c) for c in self.csrs.by_index(NODE_INDEX, name)]

    async def reconcile(self, key: str) -> Result | None:
        csr = self.csrs.get(None, key)
        if csr is None or certs.is_issued(csr) or certs.condition_types(csr) & {certs.APPROVED, certs.DENIED}:
            return None
        spec = as_dict(csr.get("spec"))
        if spec.get("signerName") != certs.KUBELET_SERVING:
            return None
        wanted = _requesting_node(csr)
        node = self.nodes.get(None, wanted[0]) if wanted else None
        if serving_request_problem(spec, node) is not None:
            return None  # left for a person; a Node update looks again
        stamp = format_time(self.clock())
        conditions = [*as_list(as_dict(csr.get("status")).get("conditions")),
                      {"type": certs.APPROVED, "status": "True", "reason": "AutoApproved", "message": MESSAGE,
                       "lastUpdateTime": stamp, "lastTransitionTime": stamp}]
        await self.client.patch(self.csrs.rt, None, key, {"status": {"conditions": conditions}},
                                subresource="approval")
        return None
