"""Translating a pod spec into runtime specs: the sandbox (hostname, DNS, hostAliases, hostPorts)
and container resources (memory, CPU quota/shares, pids). Pure functions.

Owns: kubelet's DNS policy rules (ClusterFirst → the cluster DNS IP with the
`<ns>.svc.<domain> svc.<domain> <domain>` search path and ndots:5; Default → the host's resolver;
None → dnsConfig only; dnsConfig merged on top), and the resource → cgroup mapping.
Must not import: the client, trio, podman.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestra.objects import Obj
from orchestra.objects.quantity import INT64_MAX, parse_or_none
from orchestra.runtime.base import HostAlias, PodSandboxSpec, PortMapping, Resources

LABEL_NODE = "orchestra.io/node"
# which cluster made the object: two orchestra instances on one host never adopt each other's pods
LABEL_CLUSTER = "orchestra.io/cluster"
LABEL_STATE_DIR = "orchestra.io/state-dir"  # the cluster's state directory (a dead cluster's is gone)
LABEL_ATTEMPT = "orchestra.io/attempt"
LABEL_INIT = "orchestra.io/init-container"
CPU_PERIOD = 100_000
MIN_QUOTA = 1_000
MIN_SHARES = 2
MAX_SHARES = 262_144  # kube's MaxShares
MAX_QUOTA = 2**44 - 1  # the kernel's max_cfs_runtime in µs: a larger cpu.max quota is EINVAL


def sandbox_name(pod: Obj) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('namespace', 'default')}_{m.get('name', '')}_{m.get('uid', '')[:8]}"


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]
        elif words[0] == "options":
            options.extend(words[1:])
    return servers, searches, options


def _merge_options(base: list[str], extra: list[Obj]) -> list[str]:
    merged = {o.split(":", 1)[0]: o for o in base}
    for o in extra:
        name = o.get("name", "")
        merged[name] = f"{name}:{o['value']}" if o.get("value") is not None else name
    return list(merged.values())


def dns_settings(pod: Obj, cluster_dns: str | None, domain: str,
                 resolv_conf: Path | None) -> tuple[list[str], list[str], list[str]]:
    """(servers, searches, options); three empty lists leave the runtime's default (the host's)."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy.startswith("ClusterFirst") and spec.get("hostNetwork") and policy == "ClusterFirst":
        policy = "Default"  # ClusterFirst on the host network falls back to Default, as in kube
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy.startswith("ClusterFirst") and cluster_dns:
        servers = [cluster_dns]
        searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
        options = ["ndots:5"]
    elif policy != "None" and spec.get("dnsConfig") and resolv_conf is not None and resolv_conf.exists():
        servers, searches, options = parse_resolv_conf(resolv_conf.read_text())
    config = spec.get("dnsConfig") or {}
    servers += [s for s in config.get("nameservers") or [] if s not in servers]
    searches += [s for s in config.get("searches") or [] if s not in searches]
    options = _merge_options(options, config.get("options") or [])
    return servers[:3], searches[:32], options


def sandbox_spec(pod: Obj, *, node_name: str, cluster_dns: str | None, domain: str,
                 resolv_conf: Path | None, owner_labels: Mapping[str, str] | None = None) -> PodSandboxSpec:
    m = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    servers, searches, options = dns_settings(pod, cluster_dns, domain, resolv_conf)
    ports = [
        PortMapping(container_port=int(p["containerPort"]), host_port=int(p.get("hostPort") or 0),
                    protocol=p.get("protocol", "TCP"), host_ip=p.get("hostIP", ""))
        for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("hostPort")
    ]
    hosts = [HostAlias(ip=a.get("ip", ""), hostnames=tuple(a.get("hostnames") or []))
             for a in spec.get("hostAliases") or []]
    fields: dict[str, Any] = {  # (a dict: mypy cannot type attrs' tuple converters)
        "ports": ports,
        "dns_servers": servers,
        "dns_searches": searches,
        "dns_options": options,
        "hosts": hosts,
    }
    return PodSandboxSpec(
        name=sandbox_name(pod),
        uid=m.get("uid", ""),
        namespace=m.get("namespace", "default"),
        labels={**(owner_labels or {}), LABEL_NODE: node_name},
        hostname=(spec.get("hostname") or m.get("name", ""))[:63],
        **fields,
    )


def _milli(value: Any) -> int | None:
    """kube's MilliValue (saturated at int64; see orchestra.objects.quantity), None if malformed
    (validation refuses it; a stored one is treated as unset)."""
    q = parse_or_none(value)
    return q.milli_value() if q is not None else None


def resources_of(container: Obj, pids_limit: int | None = None) -> Resources:
    """limits.memory → bytes; limits.cpu → CFS quota per 100 ms; requests.cpu → shares.

    A limit beyond what the kernel can enforce (a memory limit at or over 2^63-1 bytes, a quota over
    its maximum CFS runtime) is no limit; shares are clamped to kube's [2, 262144]. Any stored
    quantity, however large, gives values the runtime accepts.
    """
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    memory = parse_or_none(limits["memory"]) if "memory" in limits else None
    cpu_limit = _milli(limits["cpu"]) if "cpu" in limits else None
    has_cpu = "cpu" in requests or "cpu" in limits
    cpu_request = _milli(requests.get("cpu", limits.get("cpu"))) if has_cpu else None
    memory_bytes = memory.int_value() if memory is not None else None
    if memory_bytes is not None and not 0 < memory_bytes < INT64_MAX:
        memory_bytes = None
    quota = max(-(-cpu_limit * CPU_PERIOD // 1000), MIN_QUOTA) if cpu_limit and cpu_limit > 0 else None
    if quota is not None and quota > MAX_QUOTA:
        quota = None
    shares = min(max(-(-cpu_request * 1024 // 1000), MIN_SHARES), MAX_SHARES) if cpu_request else None
    return Resources(
        memory_limit_bytes=memory_bytes,
        cpu_quota=quota, cpu_period=CPU_PERIOD if quota else None,
        cpu_shares=shares, pids_limit=pids_limit,
    )
