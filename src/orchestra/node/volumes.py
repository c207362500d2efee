"""Pod volumes on the node: directories under the agent's state dir, bind-mounted by the runtime.

Owns: `<state>/pods/<uid>/volumes/<plugin>/<name>` for emptyDir (medium Memory → a tmpfs when the
agent may mount one, else a plain directory), the files of configMap / secret / downwardAPI /
projected volumes (keys or items, modes; rewritten in place when their sources change, which a
read-only bind mount of the directory shows to the container at once), hostPath type checks,
persistentVolumeClaim volumes (claim -> bound PV -> its hostPath / local path, bind-mounted as is;
an unbound or missing claim is a ConfigError, so the pod waits in ContainerCreating with FailedMount),
and removing the pod's own directories when the pod goes (never a claim's data). projected
serviceAccountToken sources are skipped: orchestra issues no service-account tokens.
File writes are small and local, so they run inline rather than in threads: a thread would let
the test's autojump clock leap while it runs.
Must not import: the client, reconcilers, podman.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import attrs
import trio

from orchestra.node.env import (
    ConfigError,
    NodeFacts,
    Sources,
    config_map_data,
    field_value,
    resource_value,
    secret_data,
)
from orchestra.objects import Obj
from orchestra.runtime.base import Mount

Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)

DEFAULT_MODE = 0o644
READ_ONLY_PLUGINS = ("configMap", "secret", "downwardAPI", "projected")


@attrs.frozen
class PodVolume:
    name: str
    host_path: str
    read_only: bool  # the plugin forces read-only mounts (configMap, secret, ...)


class VolumeManager:
    def __init__(self, state_dir: Path, *, tmpfs: bool = False) -> None:
        self.root = Path(state_dir) / "pods"
        self.tmpfs = tmpfs

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def prepare(self, pod: Obj, sources: Sources, facts: NodeFacts) -> dict[str, PodVolume]:
        """Create or refresh every volume of `pod`; ConfigError when a source is missing."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        result: dict[str, PodVolume] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            if volume.get("hostPath"):
                result[name] = PodVolume(name, _host_path(volume["hostPath"]), False)
                continue
            if isinstance(volume.get("persistentVolumeClaim"), dict):
                result[name] = _claim_volume(name, volume["persistentVolumeClaim"], pod, sources)
                continue
            plugin = next((p for p in (*READ_ONLY_PLUGINS, "emptyDir") if p in volume), None)
            if plugin is None:  # unsupported plugin (nfs, csi, ...): an empty directory stands in
                plugin = "emptyDir"
            path = self.pod_dir(uid) / "volumes" / plugin / name
            if plugin == "emptyDir":
                await self._empty_dir(path, volume.get("emptyDir") or {})
            else:
                _sync_dir(path, _payload(plugin, volume[plugin] or {}, pod, sources, facts))
            result[name] = PodVolume(name, str(path), plugin in READ_ONLY_PLUGINS)
        return result

    async def _empty_dir(self, path: Path, spec: Obj) -> None:
        if _make_dir(path) or spec.get("medium") != "Memory" or not self.tmpfs:
            return
        options = "mode=1777" + (f",size={spec['sizeLimit']}" if spec.get("sizeLimit") else "")
        result = await trio.run_process(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                        check=False, capture_stdout=True, capture_stderr=True)
        if result.returncode != 0:  # no privilege to mount: a plain directory is the documented fallback
            self.tmpfs = False

    async def cleanup(self, uid: str) -> None:
        """Unmount tmpfs volumes and remove the pod's directory (idempotent)."""
        pod_dir = self.pod_dir(uid)
        for entry in _mounts_under(pod_dir / "volumes" / "emptyDir"):
            await trio.run_process(["umount", "-l", str(entry)], check=False,
                                   capture_stdout=True, capture_stderr=True)
        shutil.rmtree(pod_dir, ignore_errors=True)

    def known_pods(self) -> list[str]:
        return [p.name for p in self.root.iterdir()] if self.root.is_dir() else []


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's persistentVolumeClaim volumes name."""
    return [
        str(v["persistentVolumeClaim"].get("claimName") or "")
        for v in (pod.get("spec") or {}).get("volumes") or []
        if isinstance(v.get("persistentVolumeClaim"), dict)
    ]


def _claim_volume(name: str, source: Obj, pod: Obj, sources: Sources) -> PodVolume:
    """kubelet's desired-state populator for a claim: it must exist and be bound to a PV we can mount."""
    claim_name = str(source.get("claimName") or "")
    ns = (pod.get("metadata") or {}).get("namespace", "")
    pvc = sources.claims.get(claim_name)
    if pvc is None:
        raise ConfigError(f'persistentvolumeclaim "{claim_name}" not found')
    phase = (pvc.get("status") or {}).get("phase") or ""
    volume_name = (pvc.get("spec") or {}).get("volumeName") or ""
    pv = sources.claim_volumes.get(claim_name)
    if phase != "Bound" or not volume_name or pv is None:
        raise ConfigError(
            f"PVC {ns}/{claim_name} has non-bound phase ({phase!r}) or empty pvc.Spec.VolumeName "
            f"({volume_name!r})".replace("'", '"')
        )
    spec = pv.get("spec") or {}
    if spec.get("hostPath"):
        path = _host_path(spec["hostPath"])
    elif (spec.get("local") or {}).get("path"):
        path = str(spec["local"]["path"])
    else:
        raise ConfigError(
            f'volume "{volume_name}": only hostPath and local PersistentVolumes can be mounted here'
        )
    return PodVolume(name, path, bool(source.get("readOnly")))


def _make_dir(path: Path) -> bool:
    """mkdir -p; True if `path` is already a mount point."""
    path.mkdir(parents=True, exist_ok=True)
    return os.path.ismount(path)


def _mounts_under(path: Path) -> list[Path]:
    return [e for e in path.iterdir() if os.path.ismount(e)] if path.is_dir() else []


def mounts_for(container: Obj, volumes: dict[str, PodVolume]) -> list[Mount]:
    """The container's volumeMounts as runtime Mounts (subPath inside the volume)."""
    out = []
    for vm in container.get("volumeMounts") or []:
        volume = volumes.get(vm.get("name", ""))
        if volume is None:
            raise ConfigError(f"volume {vm.get('name')!r} not found in the pod's volumes")
        host = volume.host_path
        sub = vm.get("subPath") or ""
        if sub:
            if sub.startswith("/") or ".." in Path(sub).parts:
                raise ConfigError(f"subPath {sub!r} must be a relative path inside the volume")
            target = Path(host) / sub
            if not target.exists():
                target.mkdir(parents=True, exist_ok=True)
            host = str(target)
        out.append(Mount(host_path=host, container_path=vm.get("mountPath", ""),
                         read_only=bool(vm.get("readOnly")) or volume.read_only))
    return out


# ---------------------------------------------------------------------------------------- payloads


def _payload(plugin: str, spec: Obj, pod: Obj, sources: Sources, facts: NodeFacts) -> Files:
    mode = int(spec.get("defaultMode", DEFAULT_MODE))
    if plugin == "configMap":
        return _keyed("configmap", spec, spec.get("name", ""), sources, mode)
    if plugin == "secret":
        return _keyed("secret", spec, spec.get("secretName", ""), sources, mode)
    if plugin == "downwardAPI":
        return _downward(spec, pod, facts, mode)
    files: Files = {}
    for src in spec.get("sources") or []:  # projected
        if src.get("configMap"):
            files.update(
                _keyed("configmap", src["configMap"], src["configMap"].get("name", ""), sources, mode)
            )
        elif src.get("secret"):
            files.update(_keyed("secret", src["secret"], src["secret"].get("name", ""), sources, mode))
        elif src.get("downwardAPI"):
            files.update(_downward(src["downwardAPI"], pod, facts, mode))
    return files


def _keyed(kind: str, spec: Obj, name: str, sources: Sources, mode: int) -> Files:
    table = sources.config_maps if kind == "configmap" else sources.secrets
    obj = table.get(name)
    if obj is None:
        if spec.get("optional"):
            return {}
        raise ConfigError(f'{kind} "{name}" not found')
    data = config_map_data(obj) if kind == "configmap" else secret_data(obj)
    items = spec.get("items")
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    files: Files = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if spec.get("optional"):
                continue
            raise ConfigError(f"{kind} references non-existent config key: {key}")
        files[item.get("path") or key] = (data[key], int(item.get("mode", mode)))
    return files


def _downward(spec: Obj, pod: Obj, facts: NodeFacts, mode: int) -> Files:
    files: Files = {}
    for item in spec.get("items") or []:
        if item.get("fieldRef"):
            value = field_value(pod, item["fieldRef"].get("fieldPath", ""), facts)
        elif item.get("resourceFieldRef"):
            ref = item["resourceFieldRef"]
            value = resource_value(pod, ref, ref.get("containerName", ""), facts)
        else:
            continue
        files[item.get("path", "")] = (value.encode(), int(item.get("mode", mode)))
    return files


def _sync_dir(path: Path, files: Files) -> None:
    """Make `path` hold exactly `files`: changed files are replaced atomically, others removed."""
    path.mkdir(parents=True, exist_ok=True)
    for rel, (data, mode) in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == mode:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    wanted = {path / rel for rel in files}
    for dirpath, _dirs, names in os.walk(path, topdown=False):
        for name in names:
            file = Path(dirpath) / name
            if file not in wanted:
                file.unlink(missing_ok=True)
        if Path(dirpath) != path and not any(Path(dirpath).iterdir()):
            Path(dirpath).rmdir()


def _host_path(spec: Obj) -> str:
    path = spec.get("path", "")
    kind = spec.get("type") or ""
    p = Path(path)
    if kind == "DirectoryOrCreate":
        p.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(exist_ok=True)
    checks = {"Directory": p.is_dir, "File": p.is_file, "Socket": p.is_socket,
              "CharDevice": p.is_char_device, "BlockDevice": p.is_block_device}
    if kind in checks and not checks[kind]():
        raise ConfigError(f"hostPath type check failed: {path} is not a {kind}")
    return path
