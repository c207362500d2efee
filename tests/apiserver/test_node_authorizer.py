"""The Node authorizer over its store-watched graph, and NodeRestriction: kube's decisions and wordings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orchestra.api.errors import Forbidden
from orchestra.api.policy.admission import Attributes
from orchestra.api.policy.noderestriction import NodeRestriction
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authz import Decision
from orchestra.apiserver.auth.node import NodeAuthorizer
from orchestra.apiserver.auth.nodegraph import NodeGraph
from orchestra.apiserver.requestinfo import RequestInfo
from orchestra.store import Store

N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
NO_REL = "no relationship found between node 'n1' and this object"


def _pod(name: str, node: str | None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {
            **({"nodeName": node} if node else {}),
            "serviceAccountName": "sa-" + name,
            "containers": [
                {
                    "name": "c",
                    "env": [
                        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-" + name, "key": "k"}}}
                    ],
                }
            ],
            **spec,
        },
    }


@pytest.fixture
def graph() -> NodeGraph:
    store = Store.open_memory()
    graph = NodeGraph(store)
    store.put(
        "/registry/core/pods/apps/mine",
        orjson.dumps(
            _pod(
                "mine",
                "n1",
                volumes=[
                    {"name": "s", "secret": {"secretName": "s-mine"}},
                    {"name": "v", "persistentVolumeClaim": {"claimName": "pvc-mine"}},
                ],
            )
        ),
    )
    store.put(
        "/registry/core/pods/apps/theirs",
        orjson.dumps(_pod("theirs", "n2", volumes=[{"name": "s", "secret": {"secretName": "s-theirs"}}])),
    )
    store.put(
        "/registry/core/pods/apps/pending",
        orjson.dumps(_pod("pending", None, volumes=[{"name": "s", "secret": {"secretName": "s-pending"}}])),
    )
    return graph


def _info(
    verb: str, resource: str, name: str = "", namespace: str = "apps", *, group: str = "", sub: str = ""
) -> RequestInfo:
    return RequestInfo(
        path="",
        verb=verb,
        resource_request=True,
        api_group=group,
        api_version="v1",
        namespace=namespace,
        resource=resource,
        subresource=sub,
        name=name,
    )


@pytest.mark.parametrize(
    ("info", "decision", "reason"),
    [
        pytest.param(_info("get", "secrets", "s-mine"), Decision.ALLOW, "", id="own-pod-secret"),
        pytest.param(
            _info("get", "secrets", "s-theirs"), Decision.NO_OPINION, NO_REL, id="other-node-secret"
        ),
        pytest.param(
            _info("get", "secrets", "s-pending"), Decision.NO_OPINION, NO_REL, id="unbound-pod-secret"
        ),
        pytest.param(
            _info("list", "secrets"), Decision.NO_OPINION, "No Object name found", id="list-secrets"
        ),
        pytest.param(
            _info("update", "secrets", "s-mine"),
            Decision.NO_OPINION,
            "can only read resources of this type",
            id="write-secret",
        ),
        pytest.param(
            _info("get", "secrets", "s-mine", namespace=""),
            Decision.NO_OPINION,
            "can only read namespaced object of this type",
            id="cluster-scope",
        ),
        pytest.param(_info("get", "configmaps", "cm-mine"), Decision.ALLOW, "", id="own-env-configmap"),
        pytest.param(
            _info("get", "configmaps", "cm-theirs"), Decision.NO_OPINION, NO_REL, id="other-configmap"
        ),
        pytest.param(_info("get", "persistentvolumeclaims", "pvc-mine"), Decision.ALLOW, "", id="own-pvc"),
        pytest.param(
            _info("list", "persistentvolumeclaims"),
            Decision.NO_OPINION,
            "can only get individual resources of this type",
            id="list-pvcs",
        ),
        pytest.param(
            _info("create", "serviceaccounts", "sa-mine", sub="token"), Decision.ALLOW, "", id="own-token"
        ),
        pytest.param(
            _info("create", "serviceaccounts", "sa-theirs", sub="token"),
            Decision.NO_OPINION,
            NO_REL,
            id="other-token",
        ),
        pytest.param(
            _info("get", "serviceaccounts", "sa-mine"),
            Decision.NO_OPINION,
            "can only create tokens for individual service accounts",
            id="get-serviceaccount",
        ),
        pytest.param(
            _info("update", "leases", "n1", "kube-node-lease", group="coordination.k8s.io"),
            Decision.ALLOW,
            "",
            id="own-lease",
        ),
        pytest.param(
            _info("update", "leases", "n2", "kube-node-lease", group="coordination.k8s.io"),
            Decision.NO_OPINION,
            "can only access node lease with the same name as the requesting node",
            id="other-lease",
        ),
        pytest.param(
            _info("get", "leases", "n1", "default", group="coordination.k8s.io"),
            Decision.NO_OPINION,
            'can only access leases in the "kube-node-lease" system namespace',
            id="lease-elsewhere",
        ),
        pytest.param(
            _info("list", "leases", "", "kube-node-lease", group="coordination.k8s.io"),
            Decision.NO_OPINION,
            "can only get, create, update, patch, or delete a node lease",
            id="list-leases",
        ),
        pytest.param(_info("patch", "nodes", "n1", ""), Decision.ALLOW, "", id="node-rules-nodes"),
        pytest.param(
            _info("patch", "pods", "mine", sub="status"), Decision.ALLOW, "", id="node-rules-pod-status"
        ),
        pytest.param(
            _info("delete", "namespaces", "apps", ""), Decision.NO_OPINION, "", id="not-a-node-rule"
        ),
    ],
)
def test_node_authorizer(graph: NodeGraph, info: RequestInfo, decision: Decision, reason: str) -> None:
    assert NodeAuthorizer(graph).authorize(N1, info) == (decision, reason)


@pytest.mark.parametrize(
    ("user", "decision", "reason"),
    [
        pytest.param(UserInfo("jane", groups=("devs",)), Decision.NO_OPINION, "", id="not-a-node"),
        pytest.param(
            UserInfo("system:node:n1", groups=("devs",)), Decision.NO_OPINION, "", id="not-in-system-nodes"
        ),
        pytest.param(
            UserInfo("system:node:", groups=("system:nodes",)),
            Decision.NO_OPINION,
            'unknown node for user "system:node:"',
            id="unidentifiable",
        ),
    ],
)
def test_only_nodes_are_its_business(
    graph: NodeGraph, user: UserInfo, decision: Decision, reason: str
) -> None:
    assert NodeAuthorizer(graph).authorize(user, _info("get", "secrets", "s-mine")) == (decision, reason)


def test_the_graph_follows_pods(graph: NodeGraph) -> None:
    assert graph.has_path("n1", "Secret", "apps", "s-mine")
    graph.store.put(
        "/registry/core/pods/apps/pending",
        orjson.dumps(_pod("pending", "n1", volumes=[{"name": "s", "secret": {"secretName": "s-pending"}}])),
    )
    assert graph.has_path("n1", "Secret", "apps", "s-pending")  # bound now
    graph.store.delete("/registry/core/pods/apps/mine")
    assert not graph.has_path("n1", "Secret", "apps", "s-mine")


def _attrs(
    kind: str,
    operation: str,
    name: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None = None,
    *,
    namespace: str | None = None,
    sub: str = "",
    user: UserInfo = N1,
) -> Attributes:
    return Attributes(operation, kind, namespace, name, obj, old, user, lambda *a: None, sub)


NODE = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {}}


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        pytest.param(_attrs("Node", "CREATE", "n1", NODE), None, id="own-node"),
        pytest.param(
            _attrs("Node", "CREATE", "n2", {**NODE, "metadata": {"name": "n2"}}),
            'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"',
            id="other-node",
        ),
        pytest.param(
            _attrs(
                "Node",
                "CREATE",
                "n1",
                {"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}}},
            ),
            'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
            "node-role.kubernetes.io/control-plane",
            id="role-label",
        ),
        pytest.param(
            _attrs("Node", "UPDATE", "n1", {**NODE, "spec": {"taints": [{"key": "k"}]}}, NODE),
            'nodes "n1" is forbidden: node "n1" is not allowed to modify taints',
            id="taints",
        ),
        pytest.param(_attrs("Node", "UPDATE", "n1", NODE, NODE, sub="status"), None, id="own-status"),
        pytest.param(  # what net/podroutes.py publishes: kube's plugin leaves a node's annotations alone
            _attrs("Node", "UPDATE", "n1", {**NODE, "metadata": {
                **NODE["metadata"], "annotations": {"orchestra.io/pod-networks": "10.244.1.0/24"}}}, NODE),
            None,
            id="own-annotations",
        ),
        pytest.param(
            _attrs("Node", "UPDATE", "n2", {"metadata": {"name": "n2", "annotations": {"a": "b"}}},
                   {"metadata": {"name": "n2"}}),
            'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"',
            id="other-node-annotations",
        ),
        pytest.param(
            _attrs("Lease", "CREATE", "n2", {}, namespace="kube-node-lease"),
            'leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name '
            "as the requesting node",
            id="other-lease",
        ),
        pytest.param(_attrs("Lease", "CREATE", "n1", {}, namespace="kube-node-lease"), None, id="own-lease"),
        pytest.param(
            _attrs(
                "Pod",
                "CREATE",
                "p",
                {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}},
                namespace="apps",
            ),
            'pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" '
            "can only create mirror pods",
            id="non-mirror-pod",
        ),
        pytest.param(
            _attrs("Pod", "UPDATE", "p", {}, {"spec": {"nodeName": "n2"}}, namespace="apps", sub="status"),
            'pods "p" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set '
            "to itself",
            id="other-pod-status",
        ),
        pytest.param(
            _attrs("Pod", "UPDATE", "p", {}, {"spec": {"nodeName": "n1"}}, namespace="apps", sub="status"),
            None,
            id="own-pod-status",
        ),
        pytest.param(
            _attrs("Node", "CREATE", "n2", {}, user=UserInfo("admin", groups=("system:masters",))),
            None,
            id="not-a-node",
        ),
    ],
)
async def test_node_restriction(attributes: Attributes, message: str | None) -> None:
    if message is None:
        await NodeRestriction().admit(attributes)
        return
    with pytest.raises(Forbidden) as refused:
        await NodeRestriction().admit(attributes)
    assert refused.value.message == message
