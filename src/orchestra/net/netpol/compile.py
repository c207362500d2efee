"""The nftables ruleset, as data (nft's JSON commands), that enforces a node's `PodRules`.

Owns: `ruleset(rules, pods=, host=)` -> the commands of ONE transaction that replaces the table
`inet orchestra-netpol` whole (add, delete, add: atomic, and valid whether or not the table was
there), and `removal()`, the commands that delete it. The table:

  forward  (pod <-> pod through the bridge, with br_netfilter; pod <-> outside)
      ct state established,related accept        replies of allowed connections
      ip saddr vmap { <egress-isolated pod> : jump egress-<ip> }
      ip daddr vmap { <ingress-isolated pod> : jump ingress-<ip> }
  input    (pod -> this host)
      ct state established,related accept
      ip daddr { <service range but the DNS address> } accept      policed on the proxy's leg
      ip saddr vmap { <egress-isolated pod> : jump egress-<ip> }
  output   (this host -> anywhere: the node's own traffic passes, kubelet probes included, except
            the service proxy's connections, which carry their client pod's address as packet mark)
      ct state established,related accept
      meta mark vmap { <egress-isolated pod as mark> : jump egress-<ip> }
      meta mark { <every pod as mark> } ip daddr vmap { <ingress-isolated pod> : jump proxied-<ip> }

A per-pod chain returns for what one of its allows matches and drops the rest: `ingress-<ip>`
matches sources with `ip saddr`, `proxied-<ip>` the same sources by mark, `egress-<ip>` destinations
with `ip daddr`; ports as `meta l4proto tcp th dport 80-90`. Every rule carries the policy rule
it comes from as its comment.
Must not import: the client, the controller runtime, the nft adapter (data in, data out).
"""

from __future__ import annotations

from typing import Any

import attrs

from orchestra.net.netpol.model import Allow, Peers, PodRules, PortMatch
from orchestra.net.netpol.ranges import address_elements, block, mark_elements

FAMILY = "inet"
TABLE = "orchestra-netpol"
COMMENT_MAX = 127  # nft keeps at most 128 bytes, the terminating NUL included
INLINE_MAX = 8  # peer sets with more intervals than this become named sets

Command = dict[str, Any]


@attrs.frozen
class HostSettings:
    """What the ruleset needs to know of the node: its service range (ClusterIPs are proxied from
    the host, so policies see the proxy's leg) and the cluster DNS address (served by the host, but
    policed like the kube-dns pods it stands for)."""

    service_cidr: str = ""
    dns_ip: str = ""


def removal() -> list[Command]:
    table = {"family": FAMILY, "name": TABLE}
    return [{"add": {"table": table}}, {"delete": {"table": table}}]


def ruleset(rules: list[PodRules], *, pods: Peers, host: HostSettings) -> list[Command]:
    """Chains and sets first (a rule may only name what the transaction already has), then rules."""
    chains = [_add("chain", name=name, type="filter", hook=name, prio=0, policy="accept")
              for name in ("forward", "input", "output")]
    sets = _Sets()
    pod_rules: list[Command] = []
    for r in rules:
        ip = r.endpoint.ip
        for name, allows, key, kind, direction in (
            (f"ingress-{ip}", r.ingress, _addr("saddr"), "ipv4_addr", "ingress"),
            (f"proxied-{ip}", r.ingress, _mark(), "mark", "ingress"),
            (f"egress-{ip}", r.egress, _addr("daddr"), "ipv4_addr", "egress"),
        ):
            if allows is not None:
                chains.append(_add("chain", name=name))
                isolated = f"{r.endpoint.key} is isolated for {direction}"
                pod_rules += _pod_chain(name, allows, key, lambda p, k=kind: sets.ref(k, p), isolated)
    base = _base_rules(rules, pods, host, sets)
    table = {"add": {"table": {"family": FAMILY, "name": TABLE}}}
    return [*removal(), table, *chains, *sets.commands, *base, *pod_rules]


class _Sets:
    """Peer sets as nft writes them: up to INLINE_MAX intervals in the rule itself, larger ones as
    named interval sets, each written once and shared by every rule that matches the same peers."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self._names: dict[tuple[str, Peers], str] = {}
        self._seen: dict[tuple[str, int], tuple[Peers, Any]] = {}  # by identity: rules share tuples

    def ref(self, kind: str, peers: Peers) -> Any:
        hit = self._seen.get((kind, id(peers)))
        if hit is not None and hit[0] is peers:
            return hit[1]
        elements = address_elements if kind == "ipv4_addr" else mark_elements
        if len(peers) <= INLINE_MAX:
            ref: Any = {"set": elements(peers)}
        else:
            name = self._names.get((kind, peers))
            if name is None:
                name = f"{'peers' if kind == 'ipv4_addr' else 'marks'}-{len(self._names)}"
                self._names[kind, peers] = name
                self.commands.append(_add("set", name=name, type=kind, flags=["interval"],
                                          elem=elements(peers)))
            ref = f"@{name}"
        self._seen[kind, id(peers)] = (peers, ref)
        return ref


def _base_rules(rules: list[PodRules], pods: Peers, host: HostSettings, sets: _Sets) -> list[Command]:
    ingress = [r.endpoint for r in rules if r.ingress is not None]
    egress = [r.endpoint for r in rules if r.egress is not None]
    established = [_match({"ct": {"key": "state"}}, ["established", "related"], "in"), {"accept": None}]
    out = [_rule(chain, established, "replies of allowed connections")
           for chain in ("forward", "input", "output")]
    out += _dispatch("forward", _addr("saddr"), [(e.ip, f"egress-{e.ip}") for e in egress])
    out += _dispatch("forward", _addr("daddr"), [(e.ip, f"ingress-{e.ip}") for e in ingress])
    proxied = _proxied_range(host)
    if proxied:
        out.append(_rule("input", [_match(_addr("daddr"), sets.ref("ipv4_addr", proxied)), {"accept": None}],
                         "services: policed on the service proxy's connection"))
    out += _dispatch("input", _addr("saddr"), [(e.ip, f"egress-{e.ip}") for e in egress])
    out += _dispatch("output", _mark(), [(e.address, f"egress-{e.ip}") for e in egress])
    if pods and ingress:
        out += _dispatch("output", _addr("daddr"), [(e.ip, f"proxied-{e.ip}") for e in ingress],
                         guard=[_match(_mark(), sets.ref("mark", pods))])
    return out


def _proxied_range(host: HostSettings) -> Peers:
    """The service range without the cluster DNS address."""
    if not host.service_cidr:
        return ()
    return block(host.service_cidr, [f"{host.dns_ip}/32"] if host.dns_ip else [])


def _pod_chain(name: str, allows: tuple[Allow, ...], peer_key: Any, peer_ref: Any, isolated: str
               ) -> list[Command]:
    out = []
    for allow in allows:
        expr: list[Any] = []
        if allow.peers is not None:
            expr.append(_match(peer_key, peer_ref(allow.peers)))
        if allow.port is not None:
            expr += _port(allow.port)
        out.append(_rule(name, [*expr, {"return": None}], allow.origin))
    out.append(_rule(name, [{"drop": None}], isolated))
    return out


def _port(port: PortMatch) -> list[Any]:
    expr: list[Any] = [_match({"meta": {"key": "l4proto"}}, port.protocol)]
    if port.first is not None:
        last = port.last if port.last is not None else port.first
        value: Any = port.first if last == port.first else {"range": [port.first, last]}
        expr.append(_match({"payload": {"protocol": "th", "field": "dport"}}, value))
    return expr


def _dispatch(chain: str, key: Any, targets: list[tuple[Any, str]], guard: list[Any] | None = None
              ) -> list[Command]:
    if not targets:
        return []  # nft refuses an empty anonymous map
    verdicts = [[k, {"jump": {"target": target}}] for k, target in targets]
    return [_rule(chain, [*(guard or []), {"vmap": {"key": key, "data": {"set": verdicts}}}], "")]


def _addr(field: str) -> Any:
    return {"payload": {"protocol": "ip", "field": field}}


def _mark() -> Any:
    return {"meta": {"key": "mark"}}


def _match(left: Any, right: Any, op: str = "==") -> Any:
    if isinstance(right, list) and op == "==":
        right = {"set": right}
    return {"match": {"op": op, "left": left, "right": right}}


def _add(kind: str, **fields: Any) -> Command:
    return {"add": {kind: {"family": FAMILY, "table": TABLE, **fields}}}


def _rule(chain: str, expr: list[Any], comment: str) -> Command:
    rule: dict[str, Any] = {"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr}
    if comment:
        rule["comment"] = comment.encode()[:COMMENT_MAX].decode(errors="ignore")
    return {"add": {"rule": rule}}
