"""NetworkPolicy (networking.k8s.io/v1) enforced in the kernel with nftables on this node.

Entry point: `NetworkPolicyEnforcer(client, node=, host=HostSettings(service_cidr=, dns_ip=))`, a
long-lived component (`await nursery.start(enforcer.run)`; run again after it raised) that keeps the
table `inet orchestra-netpol` in line with the cluster's pods, namespaces and policies, and removes
it when it stops; `source_mark(address)` for the service proxy (policies see the client pod behind
the proxy). `kernel.unavailable()` / `kernel.bridge_filtering()` say whether this host can enforce
policies at all (nft, root, br_netfilter for pods on one bridge).
Parts, each small:
  * model.py       Endpoint (a pod as policies see it), PortMatch, Allow, PodRules
  * ranges.py      IPv4 address sets as intervals (ipBlock minus except), nft set elements
  * selection.py   kube's semantics: which pods are isolated, which peers and ports are allowed
  * compile.py     PodRules -> the nft JSON commands of one transaction (chains, vmaps, rules)
  * kernel.py      the `nft -j` adapter (JSON in and out) and the bridge netfilter switch
  * reconciler.py  informers -> one level-based reconcile -> one nft transaction per change
How Service traffic is policed (the proxy is in user space): see compile.py and README.
Started by app/components.py with the network, on the host's Podman node.
Must not import: apiserver, app, cli, reconcilers, node, runtime, the store.
"""

from orchestra.net.netpol.compile import HostSettings
from orchestra.net.netpol.kernel import Nft, NftError
from orchestra.net.netpol.reconciler import NetworkPolicyEnforcer

__all__ = ["HostSettings", "NetworkPolicyEnforcer", "Nft", "NftError"]
