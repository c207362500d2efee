"""RBAC end to end with kubectl 1.32 against `orchestra up --no-network`: three identities — the admin,
a certificate user from `orchestra kubeconfig` bound to `edit` in one namespace, a ServiceAccount token
bound to a Role that may only read pods — an allow/deny matrix over verbs x resources x namespaces,
`kubectl auth can-i` agreeing with it, `can-i --list`, refused escalations, impersonation with and
without the right (and its audit record), `kubectl auth reconcile`, and a chart-like manifest."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL

pytestmark = pytest.mark.kubectl

TEAM, OTHER = "team", "other"
SETUP = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {TEAM}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {OTHER}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: jane-edit, namespace: {TEAM}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: robot, namespace: {TEAM}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pod-reader, namespace: {TEAM}}}
rules: [{{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: robot-reads, namespace: {TEAM}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}}
subjects: [{{kind: ServiceAccount, name: robot, namespace: {TEAM}}}]
"""
CHART = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: chart-operator, namespace: chart}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: chart-operator, namespace: chart}
rules:
- {apiGroups: [""], resources: [configmaps, pods], verbs: [get, list, watch, create, update, patch, delete]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, create, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: chart-operator, namespace: chart}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: chart-operator}
subjects: [{kind: ServiceAccount, name: chart-operator, namespace: chart}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: chart-crontabs-view
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules: [{apiGroups: [stable.example.com], resources: [crontabs], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: chart-operator}
rules: [{apiGroups: [""], resources: [namespaces, nodes], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: chart-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: chart-operator}
subjects: [{kind: ServiceAccount, name: chart-operator, namespace: chart}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: chart-operator, namespace: chart}
spec:
  replicas: 1
  selector: {matchLabels: {app: chart-operator}}
  template:
    metadata: {labels: {app: chart-operator}}
    spec:
      serviceAccountName: chart-operator
      containers: [{name: operator, image: localhost/busybox:latest, command: [sleep, "3600"]}]
"""
FORBIDDEN = "Error from server (Forbidden)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Identities:
    def __init__(self, state: Path, home: Path) -> None:
        self.state, self.home = state, home
        self.configs: dict[str, list[str]] = {
            "admin": [],
            "jane": ["--kubeconfig", str(state / "jane.kubeconfig")],
        }

    def kubectl(
        self,
        who: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.state / "kubeconfig"), "HOME": str(self.home)}
        proc = subprocess.run(
            [KUBECTL, *self.configs[who], *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl as {who} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Identities]:
    state, home = tmp_path_factory.mktemp("rbac-state"), tmp_path_factory.mktemp("rbac-home")
    port = _free_port()
    log = (state / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestra",
            "up",
            "--memory",
            "--no-podman",
            "--no-network",
            "--simulate-nodes",
            "1",
            "--state-dir",
            str(state),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"},
    )
    try:
        identities = Identities(state, home)
        _wait_ready(proc, identities)
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestra",
                "kubeconfig",
                "--user",
                "jane",
                "--group",
                "devs",
                "--out",
                str(state / "jane.kubeconfig"),
                "--state-dir",
                str(state),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        identities.kubectl("admin", "apply", "-f", "-", input=SETUP)
        _wait_for_aggregation(identities)
        token = identities.kubectl(
            "admin", "create", "token", "robot", "-n", TEAM, "--duration", "1h"
        ).stdout.strip()
        identities.configs["robot"] = ["--token", token]
        yield identities
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        output = (state / "server.log").read_text(errors="replace")
        assert "Traceback" not in output, output


def _wait_ready(proc: subprocess.Popen[bytes], identities: Identities) -> None:
    deadline = time.monotonic() + 30  # wall-clock: a real process starts
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"orchestra up exited:\n{(identities.state / 'server.log').read_text()}")
        if (identities.state / "kubeconfig").exists() and identities.kubectl(
            "admin", "get", "--raw", "/readyz", check=False
        ).returncode == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"orchestra up not ready:\n{(identities.state / 'server.log').read_text()}")


def _wait_for_aggregation(identities: Identities) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        edit = json.loads(identities.kubectl("admin", "get", "clusterrole", "edit", "-o", "json").stdout)
        if edit.get("rules"):
            return
        time.sleep(0.1)
    pytest.fail("the edit ClusterRole was never aggregated")


RESOURCES = {
    "pods": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {"containers": [{"name": "c", "image": "localhost/busybox:latest"}]},
    },
    "secrets": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "probe"},
        "stringData": {"k": "v"},
    },
    "deployments.apps": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "localhost/busybox:latest"}]},
            },
        },
    },
    "roles.rbac.authorization.k8s.io": {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "probe"},
        "rules": [],
    },
}
VERBS = ("get", "list", "create", "delete")


def _allowed(who: str, verb: str, resource: str, namespace: str) -> bool:
    if who == "admin":
        return True
    if namespace != TEAM:
        return False
    if who == "jane":
        return not resource.startswith("roles.")
    return resource == "pods" and verb in ("get", "list")  # robot


MATRIX = [
    (who, verb, res, ns)
    for who in ("admin", "jane", "robot")
    for verb in VERBS
    for res in RESOURCES
    for ns in (TEAM, OTHER)
]


def _attempt(
    ids: Identities, who: str, verb: str, resource: str, namespace: str
) -> subprocess.CompletedProcess[str]:
    if verb == "list":
        return ids.kubectl(who, "get", resource, "-n", namespace, check=False)
    if verb == "get":
        return ids.kubectl(who, "get", resource, "missing", "-n", namespace, check=False)
    if verb == "delete":
        return ids.kubectl(who, "delete", resource, "missing", "-n", namespace, check=False)
    return ids.kubectl(
        who,
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(RESOURCES[resource]),
        check=False,
    )


@pytest.mark.parametrize(("who", "verb", "resource", "namespace"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_the_allow_deny_matrix_and_can_i_agree(
    ids: Identities, who: str, verb: str, resource: str, namespace: str
) -> None:
    allowed = _allowed(who, verb, resource, namespace)
    done = _attempt(ids, who, verb, resource, namespace)
    output = done.stdout + done.stderr
    if allowed:
        assert FORBIDDEN not in output and "forbidden" not in output, output
    else:
        assert done.returncode == 1 and "forbidden: User" in output, output
        user = {"jane": "jane", "robot": f"system:serviceaccount:{TEAM}:robot"}[who]
        kind = resource.split(".")[0]
        group = ".".join(resource.split(".")[1:])
        assert (
            f'User "{user}" cannot {verb} resource "{kind}" in API group "{group}" in the namespace '
            f'"{namespace}"' in output
        )
    can_i = ids.kubectl(who, "auth", "can-i", verb, resource, "-n", namespace, check=False)
    assert can_i.stdout.strip().split()[0] == ("yes" if allowed else "no"), can_i.stdout + can_i.stderr
    assert can_i.returncode == (0 if allowed else 1)


def test_cluster_scope_is_refused_with_kubes_wording(ids: Identities) -> None:
    listed = ids.kubectl("jane", "get", "pods", "-A", check=False)
    assert listed.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "jane" cannot list '
        'resource "pods" in API group "" at the cluster scope'
    )
    logs = ids.kubectl("robot", "get", "--raw", f"/api/v1/namespaces/{TEAM}/pods/missing/log", check=False)
    assert 'cannot get resource "pods/log" in API group "" in the namespace "team"' in logs.stderr


def test_can_i_list(ids: Identities) -> None:
    listed = ids.kubectl("robot", "auth", "can-i", "--list", "-n", TEAM).stdout
    rows = {line.split()[0]: line for line in listed.splitlines()[1:] if line.strip()}
    assert "[get list watch]" in rows["pods"]
    assert "secrets" not in rows and "[create]" in rows["selfsubjectaccessreviews.authorization.k8s.io"]
    assert any("/api/*" in line for line in listed.splitlines())
    elsewhere = ids.kubectl("robot", "auth", "can-i", "--list", "-n", OTHER).stdout
    assert not any(line.startswith("pods ") for line in elsewhere.splitlines())
    admin = ids.kubectl("admin", "auth", "can-i", "--list").stdout
    assert any(line.split()[:1] == ["*.*"] and "[*]" in line for line in admin.splitlines())


def test_escalation_is_refused(ids: Identities) -> None:
    manager = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: rbac-manager, namespace: {TEAM}}}
rules: [{{apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings],
  verbs: [create, get, update]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: jane-rbac, namespace: {TEAM}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-manager}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}}]
"""
    ids.kubectl("admin", "apply", "-f", "-", input=manager)
    groups = '(groups=["devs" "system:authenticated"])'
    sneaky = ids.kubectl(
        "jane", "create", "role", "sneaky", "-n", TEAM, "--verb=*", "--resource=secrets", check=False
    )
    assert sneaky.returncode == 1
    assert sneaky.stderr.strip() == (
        'Error from server (Forbidden): roles.rbac.authorization.k8s.io "sneaky" is forbidden: '
        f'user "jane" {groups} is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}'
    )
    evil = ids.kubectl(
        "jane",
        "create",
        "rolebinding",
        "evil",
        "-n",
        TEAM,
        "--clusterrole=cluster-admin",
        "--user=jane",
        check=False,
    )
    assert evil.returncode == 1
    assert (
        f'rolebindings.rbac.authorization.k8s.io "evil" is forbidden: user "jane" {groups} is attempting to '
        'grant RBAC permissions not currently held:\n{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n'
        '{NonResourceURLs:["*"], Verbs:["*"]}'
    ) in evil.stderr
    cluster_wide = ids.kubectl(
        "jane",
        "create",
        "clusterrolebinding",
        "evil",
        "--clusterrole=cluster-admin",
        "--user=jane",
        check=False,
    )
    assert (
        'cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the '
        "cluster scope" in cluster_wide.stderr
    )
    # within her rights: a role and a binding of what she holds
    ids.kubectl("jane", "create", "role", "readers", "-n", TEAM, "--verb=get,list", "--resource=pods,secrets")
    ids.kubectl("jane", "create", "rolebinding", "bob-reads", "-n", TEAM, "--role=readers", "--user=bob")
    assert (
        ids.kubectl("admin", "auth", "can-i", "list", "secrets", "-n", TEAM, "--as", "bob").stdout.strip()
        == "yes"
    )


def test_impersonation(ids: Identities) -> None:
    refused = ids.kubectl("jane", "get", "pods", "-n", TEAM, "--as", "bob", check=False)
    assert refused.stderr.strip() == (
        'Error from server (Forbidden): users "bob" is forbidden: User "jane" cannot '
        'impersonate resource "users" in API group "" at the cluster scope'
    )
    group = ids.kubectl("admin", "get", "pods", "-n", TEAM, "--as", "bob", "--as-group", "system:masters")
    assert FORBIDDEN not in group.stderr
    as_jane = ids.kubectl("admin", "get", "pods", "-n", OTHER, "--as", "jane", check=False)
    assert (
        'User "jane" cannot list resource "pods" in API group "" in the namespace "other"' in as_jane.stderr
    )
    who = json.loads(
        ids.kubectl("admin", "auth", "whoami", "--as", "jane", "--as-group", "devs", "-o", "json").stdout
    )
    assert who["status"]["userInfo"] == {"username": "jane", "groups": ["devs", "system:authenticated"]}
    # edit may impersonate the namespace's ServiceAccounts (kube's aggregate-to-edit)
    as_robot = ids.kubectl(
        "jane", "get", "secrets", "-n", TEAM, "--as", f"system:serviceaccount:{TEAM}:robot", check=False
    )
    assert f'User "system:serviceaccount:{TEAM}:robot" cannot list resource "secrets"' in as_robot.stderr
    time.sleep(1.2)  # the audit log is written every half second
    events = [json.loads(line) for line in (ids.state / "audit.log").read_bytes().splitlines()]
    impersonated = [
        e
        for e in events
        if e.get("impersonatedUser", {}).get("username") == "jane"
        and e["user"]["username"] == "orchestra-admin"
        and e.get("objectRef", {}).get("namespace") == OTHER
    ]
    assert impersonated and impersonated[-1]["responseStatus"]["code"] == 403
    assert impersonated[-1]["annotations"]["authorization.k8s.io/decision"] == "forbid"
    refused_as = [
        e
        for e in events
        if e["user"]["username"] == "jane"
        and e["responseStatus"]["code"] == 403
        and 'cannot impersonate resource "users"' in e["responseStatus"].get("message", "")
    ]
    assert refused_as and "impersonatedUser" not in refused_as[-1]


def test_auth_reconcile(ids: Identities) -> None:
    manifest = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: reconciled}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reconciled, namespace: {TEAM}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reconciled}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}}]
"""
    for _ in range(2):
        out = ids.kubectl("admin", "auth", "reconcile", "-f", "-", input=manifest).stdout
        assert "clusterrole.rbac.authorization.k8s.io/reconciled reconciled" in out
    assert (
        ids.kubectl("admin", "auth", "can-i", "get", "configmaps", "-n", TEAM, "--as", "carol").stdout.strip()
        == "yes"
    )


def test_a_chart_like_manifest_applies_as_admin(ids: Identities) -> None:
    ids.kubectl("admin", "create", "namespace", "chart")
    applied = ids.kubectl("admin", "apply", "-f", "-", input=CHART).stdout
    for made in (
        "serviceaccount/chart-operator",
        "role.rbac.authorization.k8s.io/chart-operator",
        "rolebinding.rbac.authorization.k8s.io/chart-operator",
        "clusterrole.rbac.authorization.k8s.io/chart-crontabs-view",
        "clusterrolebinding.rbac.authorization.k8s.io/chart-operator",
        "deployment.apps/chart-operator",
    ):
        assert f"{made} created" in applied
    again = ids.kubectl("admin", "apply", "-f", "-", input=CHART).stdout
    assert again.count("unchanged") == 7, again
    operator = "system:serviceaccount:chart:chart-operator"
    for args, answer in (
        (("create", "configmaps", "-n", "chart"), "yes"),
        (("list", "nodes"), "yes"),
        (("list", "secrets", "-n", "chart"), "no"),
        (("create", "pods", "-n", "default"), "no"),
    ):
        got = ids.kubectl("admin", "auth", "can-i", *args, "--as", operator, check=False).stdout.strip()
        assert got == answer, args
    table = ids.kubectl("admin", "get", "rolebinding", "chart-operator", "-n", "chart", "-o", "wide").stdout
    assert table.split("\n")[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert "Role/chart-operator" in table and "chart/chart-operator" in table


def _rules(ids: Identities, name: str) -> Any:
    return (
        json.loads(ids.kubectl("admin", "get", "clusterrole", name, "-o", "json").stdout).get("rules") or []
    )


def test_aggregated_roles_follow_new_labels(ids: Identities) -> None:
    crontabs = {
        "apiGroups": ["stable.example.com"],
        "resources": ["crontabs"],
        "verbs": ["get", "list", "watch"],
    }
    ids.kubectl("admin", "apply", "-f", "-", input=CHART)
    deadline = time.monotonic() + 20
    while crontabs not in _rules(ids, "view") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert crontabs in _rules(ids, "view") and crontabs in _rules(ids, "admin")
