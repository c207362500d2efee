"""Which objects each node may read: kube's node authorizer graph, kept current from the store's watch.

Owns: `NodeGraph(store)`: every pod bound to a node (spec.nodeName set) links that node to what the
pod uses — its ServiceAccount, the Secrets of imagePullSecrets, volumes (secret, projected), env and
envFrom, the ConfigMaps of volumes (configMap, projected), env and envFrom, and its
PersistentVolumeClaims (persistentVolumeClaim volumes, and `<pod>-<volume>` of ephemeral ones).
`has_path(node, kind, namespace, name)` answers whether one of the node's pods uses that object.
Like rbacindex.py it is a WatchFedIndex (watchfed.py): it lists the pods once, then drains a store
watcher of the pod prefix whenever the prefix's revision moved, so a decision sees every write
acknowledged before it.
Must not import: reconcilers, node, net, the api core's verbs.
"""

from __future__ import annotations

from typing import Any

import orjson

from orchestra.apiserver.auth.watchfed import WatchFedIndex
from orchestra.objects import as_dict, only_dicts
from orchestra.store import KeyValue, Store

PREFIX = "/registry/core/pods/"
Ref = tuple[str, str, str]  # (kind, namespace, name)


def pod_references(pod: dict[str, Any]) -> set[Ref]:
    """kube's graph_populator AddPod: what a pod's node may read for it."""
    meta, spec = as_dict(pod.get("metadata")), as_dict(pod.get("spec"))
    ns, refs = str(meta.get("namespace") or ""), set()
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account:
        refs.add(("ServiceAccount", ns, str(account)))
    for secret in only_dicts(spec.get("imagePullSecrets")):
        if secret.get("name"):
            refs.add(("Secret", ns, str(secret["name"])))
    for volume in only_dicts(spec.get("volumes")):
        refs |= _volume_refs(ns, str(meta.get("name") or ""), volume)
    for container in [*only_dicts(spec.get("initContainers")), *only_dicts(spec.get("containers")),
                      *only_dicts(spec.get("ephemeralContainers"))]:
        for source in only_dicts(container.get("envFrom")):
            for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if as_dict(source.get(key)).get("name"):
                    refs.add((kind, ns, str(source[key]["name"])))
        for env in only_dicts(container.get("env")):
            value_from = as_dict(env.get("valueFrom"))
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if as_dict(value_from.get(key)).get("name"):
                    refs.add((kind, ns, str(value_from[key]["name"])))
    return refs


def _volume_refs(ns: str, pod_name: str, volume: dict[str, Any]) -> set[Ref]:
    refs: set[Ref] = set()
    if as_dict(volume.get("secret")).get("secretName"):
        refs.add(("Secret", ns, str(volume["secret"]["secretName"])))
    if as_dict(volume.get("configMap")).get("name"):
        refs.add(("ConfigMap", ns, str(volume["configMap"]["name"])))
    if as_dict(volume.get("persistentVolumeClaim")).get("claimName"):
        refs.add(("PersistentVolumeClaim", ns, str(volume["persistentVolumeClaim"]["claimName"])))
    if volume.get("ephemeral") is not None:
        refs.add(("PersistentVolumeClaim", ns, f"{pod_name}-{volume.get('name', '')}"))
    for source in only_dicts(as_dict(volume.get("projected")).get("sources")):
        for key, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
            if as_dict(source.get(key)).get("name"):
                refs.add((kind, ns, str(source[key]["name"])))
    for plugin in volume.values():  # CSI, iSCSI, RBD, ...: their secretRef (nodePublishSecretRef for CSI)
        for key in ("secretRef", "nodePublishSecretRef"):
            ref = as_dict(as_dict(plugin).get(key)) if isinstance(plugin, dict) else {}
            if ref.get("name"):
                refs.add(("Secret", str(ref.get("namespace") or ns), str(ref["name"])))
    return refs


class NodeGraph(WatchFedIndex):
    def __init__(self, store: Store) -> None:
        super().__init__(store, PREFIX, "node authorizer graph")

    def _clear(self) -> None:
        self.pods: dict[str, tuple[str, frozenset[Ref]]] = {}  # store key -> (node, refs)
        self.edges: dict[tuple[str, Ref], int] = {}  # (node, ref) -> how many of its pods use it

    def _put(self, kv: KeyValue) -> None:
        key = kv.key
        self._delete(key)
        try:
            pod = orjson.loads(kv.value)
        except orjson.JSONDecodeError:
            return  # not JSON: nothing a node may read through it
        node = as_dict(pod.get("spec")).get("nodeName")
        if not node:
            return
        refs = frozenset(pod_references(pod))
        self.pods[key] = (str(node), refs)
        for ref in refs:
            self.edges[str(node), ref] = self.edges.get((str(node), ref), 0) + 1

    def _delete(self, key: str) -> None:
        found = self.pods.pop(key, None)
        if found is None:
            return
        node, refs = found
        for ref in refs:
            left = self.edges.get((node, ref), 0) - 1
            if left > 0:
                self.edges[node, ref] = left
            else:
                self.edges.pop((node, ref), None)

    def has_path(self, node: str, kind: str, namespace: str, name: str) -> bool:
        self.sync()
        return (node, (kind, namespace, name)) in self.edges

    def pod_node(self, namespace: str, name: str) -> str | None:
        """The node a pod is bound to (None: unbound or unknown)."""
        self.sync()
        found = self.pods.get(f"{PREFIX}{namespace}/{name}")
        return found[0] if found else None
