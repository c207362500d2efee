"""The StaticSite operator: kopf handlers that turn a StaticSite into a ConfigMap, a Deployment and a
Service (owned by the StaticSite, so deleting it deletes them) and keep status up to date.

Run it against orchestra (or any cluster) as the ServiceAccount rbac.yaml makes for it, with a
kubeconfig holding that account's token (README.md):

    KUBECONFIG=operator.kubeconfig kopf run --standalone --all-namespaces examples/operator/operator.py
"""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "sites.orchestra.dev", "v1", "staticsites"
MANAGED = {"app.kubernetes.io/managed-by": "staticsite-operator"}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Progress in annotations: the status schema holds only what the site reports.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.posting.level = 30  # warnings and errors only, as events
    config.load_kube_config()


def children(name: str, namespace: str, content: str, replicas: int) -> list[dict[str, Any]]:
    labels = {"app": name, **MANAGED}
    page = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-content", "labels": labels},
            "data": {"index.html": content}}
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "httpd", "image": "localhost/busybox:latest",
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                                "ports": [{"containerPort": 8080}],
                                "volumeMounts": [{"name": "content", "mountPath": "/www"}]}],
                "volumes": [{"name": "content", "configMap": {"name": f"{name}-content"}}]}},
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
               "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
    return [page, deploy, service]


def apply(obj: dict[str, Any], namespace: str) -> None:
    """Create, or replace what changed (merge patch): the handler is level-based."""
    core, apps = client.CoreV1Api(), client.AppsV1Api()
    name = obj["metadata"]["name"]
    create, patch = {
        "ConfigMap": (core.create_namespaced_config_map, core.patch_namespaced_config_map),
        "Deployment": (apps.create_namespaced_deployment, apps.patch_namespaced_deployment),
        "Service": (core.create_namespaced_service, core.patch_namespaced_service),
    }[obj["kind"]]
    try:
        create(namespace, obj)
    except ApiException as exc:
        if exc.status != 409:
            raise
        patch(name, namespace, obj)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
def reconcile(spec: kopf.Spec, name: str, namespace: str, patch: kopf.Patch, **_: Any) -> None:
    replicas = int(spec.get("replicas", 1))
    for obj in children(name, namespace, spec["content"], replicas):
        kopf.adopt(obj)  # an owner reference to the StaticSite: the garbage collector deletes them with it
        apply(obj, namespace)
    patch.status["replicas"] = replicas
    patch.status["service"] = f"{name}.{namespace}.svc"
    patch.status.setdefault("phase", "Pending")


@kopf.on.field("apps", "v1", "deployments", field="status.readyReplicas", labels=MANAGED)
def ready_changed(new: Any, name: str, namespace: str, **_: Any) -> None:
    sites = client.CustomObjectsApi()
    ready = int(new or 0)
    try:
        site = sites.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        phase = "Ready" if ready >= int(site["spec"].get("replicas", 1)) else "Pending"
        sites.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": {"readyReplicas": ready, "phase": phase}})
    except ApiException as exc:
        if exc.status != 404:  # the site is gone (its deployment goes with it): nothing to report
            raise
