"""Container environment: env, envFrom, valueFrom and `$(VAR)` expansion, as the kubelet builds it.

Owns: pure functions from (pod, container, referenced ConfigMaps/Secrets, node facts) to the
environment dict, plus the Downward API field and resource lookups shared with volumes.py. The
agent fetches what `referenced_sources` names and hands the objects in (`Sources`), so everything
here is synchronous and table-testable. Service env vars (FOO_SERVICE_HOST ...) come from the
agent's `extra_env(pod)` hook and are the base layer, as in kubelet's makeEnvironmentVariables.
Must not import: the runtime, the client, trio.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping

import attrs

from orchestra.objects import Obj
from orchestra.objects.quantity import INT64_MAX, QuantityError, parse_quantity

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """The container cannot be configured (kubelet's CreateContainerConfigError); message for users."""


@attrs.frozen
class NodeFacts:
    """What the Downward API needs from the node and the sandbox."""

    node_name: str = ""
    host_ip: str = ""
    pod_ip: str = ""
    allocatable_cpu: str = "1"
    allocatable_memory: str = "1Gi"


@attrs.frozen
class Sources:
    """ConfigMaps, Secrets and PersistentVolumeClaims (with their volumes) of the pod's namespace by
    name; a missing name means "not found"."""

    config_maps: Mapping[str, Obj] = attrs.field(factory=dict)
    secrets: Mapping[str, Obj] = attrs.field(factory=dict)
    claims: Mapping[str, Obj] = attrs.field(factory=dict)  # PersistentVolumeClaims by name
    claim_volumes: Mapping[str, Obj] = attrs.field(factory=dict)  # claim name -> its bound PersistentVolume
    # serviceAccountToken projections' tokens by (audience, expirationSeconds) (node/tokens.py)
    tokens: Mapping[tuple[str, int], bytes] = attrs.field(factory=dict)


def _containers(spec: Obj) -> list[Obj]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]


def referenced_sources(pod: Obj) -> tuple[set[str], set[str]]:
    """(configmap names, secret names) the pod's env, envFrom and volumes refer to."""
    cms: set[str] = set()
    secrets: set[str] = set()
    spec = pod.get("spec") or {}
    for c in _containers(spec):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {})
            if ref.get("configMapKeyRef"):
                cms.add(ref["configMapKeyRef"].get("name", ""))
            if ref.get("secretKeyRef"):
                secrets.add(ref["secretKeyRef"].get("name", ""))
        for f in c.get("envFrom") or []:
            if f.get("configMapRef"):
                cms.add(f["configMapRef"].get("name", ""))
            if f.get("secretRef"):
                secrets.add(f["secretRef"].get("name", ""))
    for v in spec.get("volumes") or []:
        if v.get("configMap"):
            cms.add(v["configMap"].get("name", ""))
        if v.get("secret"):
            secrets.add(v["secret"].get("secretName", ""))
        for src in (v.get("projected") or {}).get("sources") or []:
            if src.get("configMap"):
                cms.add(src["configMap"].get("name", ""))
            if src.get("secret"):
                secrets.add(src["secret"].get("name", ""))
    return cms - {""}, secrets - {""}


def config_map_data(cm: Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return data


def secret_data(secret: Obj) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


# --------------------------------------------------------------------------------- downward API


def field_value(pod: Obj, path: str, facts: NodeFacts) -> str:
    """A fieldRef.fieldPath value (env flavour: single labels/annotations only)."""
    m = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((m.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": m.get("name", ""),
        "metadata.namespace": m.get("namespace", ""),
        "metadata.uid": m.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or facts.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):  # volumes only: k="v" lines, sorted
        items = sorted((m.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{_escape(str(v))}"' for k, v in items)
    raise ConfigError(f"unsupported fieldPath: {path}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_value(pod: Obj, ref: Obj, default_container: str, facts: NodeFacts) -> str:
    """A resourceFieldRef value: limits/requests cpu|memory|ephemeral-storage with a divisor,
    rounded up; an unset limit reports node allocatable (as the kubelet does)."""
    name = ref.get("containerName") or default_container
    container = next((c for c in _containers(pod.get("spec") or {}) if c.get("name") == name), None)
    if container is None:
        raise ConfigError(f"resourceFieldRef: container {name!r} not found")
    resource = ref.get("resource", "")
    kind, _, what = resource.partition(".")
    if kind not in ("limits", "requests") or what not in ("cpu", "memory", "ephemeral-storage"):
        raise ConfigError(f"unsupported resource: {resource}")
    res = container.get("resources") or {}
    raw = (res.get(kind) or {}).get(what)
    if raw is None and kind == "requests":
        raw = (res.get("limits") or {}).get(what)
    if raw is None:
        raw = {"cpu": facts.allocatable_cpu, "memory": facts.allocatable_memory}.get(what, "0")
        if kind == "requests" and what == "cpu":
            raw = "0"
    try:
        value = parse_quantity(raw)
        divisor = parse_quantity(ref.get("divisor") or "1")
    except QuantityError as exc:
        raise ConfigError(f"resourceFieldRef {resource}: {exc}") from None
    if divisor <= 0:
        raise ConfigError(f"resourceFieldRef {resource}: divisor must be positive")
    # the kubelet's int64 arithmetic, saturated instead of overflowing (see orchestra.objects.quantity)
    result = min(math.ceil(value / divisor), INT64_MAX)
    return str(max(result, 1 if what == "cpu" and value else 0))


# ------------------------------------------------------------------------------------ expansion


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined names are replaced, `$$` escapes a `$`, anything
    else (undefined names, unterminated references) stays as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------- environment


def _key_ref(kind: str, ref: Obj, sources: Sources) -> str | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    table = sources.config_maps if kind == "configmap" else sources.secrets
    obj = table.get(name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{name}" not found')
    data = config_map_data(obj) if kind == "configmap" else secret_data(obj)
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {'ConfigMap' if kind == 'configmap' else 'Secret'} "
                          f"{(obj.get('metadata') or {}).get('namespace', '')}/{name}")
    return data[key].decode(errors="replace")


def _env_from(container: Obj, sources: Sources) -> dict[str, str]:
    env: dict[str, str] = {}
    for f in container.get("envFrom") or []:
        prefix = f.get("prefix", "")
        for field, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
            ref = f.get(field)
            if not ref:
                continue
            table = sources.config_maps if kind == "configmap" else sources.secrets
            obj = table.get(ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
            data = config_map_data(obj) if kind == "configmap" else secret_data(obj)
            for key, value in data.items():
                if _ENV_NAME.match(prefix + key):  # kubelet skips invalid names (and warns)
                    env[prefix + key] = value.decode(errors="replace")
    return env


def resolve_env(pod: Obj, container: Obj, sources: Sources, facts: NodeFacts,
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The container's final environment. Raises ConfigError (CreateContainerConfigError)."""
    service_env = dict(extra or {})
    declared = _env_from(container, sources)
    for e in container.get("env") or []:
        name = e.get("name", "")
        if "value" in e or not e.get("valueFrom"):
            declared[name] = expand(str(e.get("value", "")), {**service_env, **declared})
            continue
        value = _value_from(pod, container, e["valueFrom"], sources, facts)
        if value is not None:
            declared[name] = value
    return {**service_env, **declared}


def _value_from(pod: Obj, container: Obj, ref: Obj, sources: Sources, facts: NodeFacts) -> str | None:
    if ref.get("configMapKeyRef"):
        return _key_ref("configmap", ref["configMapKeyRef"], sources)
    if ref.get("secretKeyRef"):
        return _key_ref("secret", ref["secretKeyRef"], sources)
    if ref.get("fieldRef"):
        return field_value(pod, ref["fieldRef"].get("fieldPath", ""), facts)
    if ref.get("resourceFieldRef"):
        return resource_value(pod, ref["resourceFieldRef"], container.get("name", ""), facts)
    raise ConfigError(f"unsupported valueFrom: {sorted(ref)}")


def expand_command(container: Obj, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """command and args with `$(VAR)` expanded from the final environment."""
    return ([expand(str(a), env) for a in container.get("command") or []],
            [expand(str(a), env) for a in container.get("args") or []])
