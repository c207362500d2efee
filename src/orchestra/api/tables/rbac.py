"""Row printers of rbac.authorization.k8s.io/v1 (kube's printRoleBinding / printClusterRoleBinding).

Owns: `print_binding`: NAME, ROLE (`Kind/name`), AGE and the wide USERS, GROUPS, SERVICEACCOUNTS
(`namespace/name`) cells. Roles and ClusterRoles print with the generic NAME, CREATED AT.
Must not import: api/request, the store, or anything above the api layer.
"""

from __future__ import annotations

from datetime import datetime

from orchestra.api.tables.format import Cell, since
from orchestra.objects import Obj, as_dict, only_dicts


def print_binding(obj: Obj, now: datetime) -> list[Cell]:
    meta, ref = as_dict(obj.get("metadata")), as_dict(obj.get("roleRef"))
    kinds: dict[str, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in only_dicts(obj.get("subjects")):
        name, namespace = str(subject.get("name") or ""), str(subject.get("namespace") or "")
        if subject.get("kind") == "ServiceAccount" and namespace:
            name = f"{namespace}/{name}"
        kinds.get(str(subject.get("kind")), []).append(name)
    return [
        str(meta.get("name", "")),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        since(meta.get("creationTimestamp"), now),
        *(", ".join(v) for v in kinds.values()),
    ]
