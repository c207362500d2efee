"""Docker-links style Service environment variables, as the kubelet injects them into containers.

For every Service with a ClusterIP in the pod's namespace (when `enableServiceLinks` is not false)
and always for `kubernetes` in `default`: WEB_SERVICE_HOST, WEB_SERVICE_PORT,
WEB_SERVICE_PORT_<NAME>, WEB_PORT, WEB_PORT_80_TCP, WEB_PORT_80_TCP_PROTO/_PORT/_ADDR.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestra.objects import Obj


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(svc: Obj) -> dict[str, str]:
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP")
    if not ip or ip == "None":
        return {}
    prefix = _env_name(svc["metadata"]["name"])
    ports = spec.get("ports") or []
    if not ports:
        return {}
    env = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0]["port"])}
    for p in ports:
        if p.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p["port"])
    first = ports[0]
    env[f"{prefix}_PORT"] = f"{str(first.get('protocol', 'TCP')).lower()}://{ip}:{first['port']}"
    for p in ports:
        proto = str(p.get("protocol", "TCP"))
        base = f"{prefix}_PORT_{p['port']}_{proto}"
        env[base] = f"{proto.lower()}://{ip}:{p['port']}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(p["port"])
        env[f"{base}_ADDR"] = ip
    return env


def env_for_pod(pod: Obj, services: Iterable[Obj]) -> dict[str, str]:
    """The variables for `pod`, given every Service the cluster has (any namespace)."""
    ns = (pod.get("metadata") or {}).get("namespace")
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        m = svc["metadata"]
        own = links and m.get("namespace") == ns
        master = m.get("namespace") == "default" and m["name"] == "kubernetes"  # always injected
        if own or master:
            env.update(service_env(svc))
    return env
