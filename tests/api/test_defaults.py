"""Server-side defaults: kube-apiserver 1.32's values, never overwriting what the user set."""

import base64
import copy
import warnings

import pytest

from orchestra.api import conversion
from orchestra.api.policy.defaults import default, image_pull_policy, qos_class
from orchestra.api.registry import BUILTIN
from tests.csrs import request_pem


def _pod_spec(**extra):
    return {"containers": [{"name": "web", "image": "nginx:1.27", **extra}]}


def _template(labels=None, **spec):
    return {"metadata": {"labels": labels or {"app": "web"}}, "spec": {**_pod_spec(), **spec}}


def test_pod_spec_and_container_defaults():
    pod = default("Pod", {"metadata": {"name": "p"}, "spec": _pod_spec(ports=[{"containerPort": 80}])})
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert "priority" not in spec and "preemptionPolicy" not in spec  # the Priority admission plugin's job
    assert spec["serviceAccountName"] == "default"
    c = spec["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"] == {}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_defaulting_adds_no_tolerations():
    """They are the DefaultTolerationSeconds admission plugin's (tests/api/test_toleration_seconds.py)."""
    assert "tolerations" not in default("Pod", {"spec": _pod_spec()})["spec"]
    rs = default("ReplicaSet", {"spec": {"template": _template()}})
    assert "tolerations" not in rs["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:v1", "IfNotPresent"),
        ("nginx@sha256:abcd", "IfNotPresent"),
        ("", "Always"),
    ],
)
def test_image_pull_policy(image, policy):
    assert image_pull_policy(image) == policy


def test_probe_and_volume_defaults():
    probe = {"httpGet": {"port": 80}}
    spec = {
        "containers": [
            {"name": "a", "image": "x", "livenessProbe": probe, "readinessProbe": {"tcpSocket": {"port": 1}}}
        ],
        "initContainers": [{"name": "i", "image": "busybox"}],
        "volumes": [
            {"name": "c", "configMap": {"name": "cm"}},
            {"name": "s", "secret": {"secretName": "s"}},
            {"name": "e"},
        ],
    }
    pod = default("Pod", {"spec": spec})
    live = pod["spec"]["containers"][0]["livenessProbe"]
    assert live == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert pod["spec"]["initContainers"][0]["imagePullPolicy"] == "Always"
    assert pod["spec"]["volumes"] == [
        {"name": "c", "configMap": {"name": "cm", "defaultMode": 420}},
        {"name": "s", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "e", "emptyDir": {}},
    ]


def test_requests_default_to_limits_and_qos():
    spec = _pod_spec(resources={"limits": {"cpu": "500m", "memory": "128Mi"}})
    pod = default("Pod", {"spec": spec})
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "128Mi"}
    assert pod["status"]["qosClass"] == "Guaranteed"
    assert qos_class(_pod_spec(resources={"requests": {"cpu": "1"}})) == "Burstable"


def test_templates_get_pod_spec_defaults_but_no_admission():
    dep = default(
        "Deployment", {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _template()}}
    )
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and tspec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    for admission_field in ("tolerations", "priority", "enableServiceLinks", "serviceAccountName"):
        assert admission_field not in tspec


def test_recreate_strategy_gets_no_rolling_update():
    dep = default("Deployment", {"spec": {"strategy": {"type": "Recreate"}, "template": _template()}})
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("ReplicaSet", {"replicas": 1}),
        (
            "DaemonSet",
            {
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
                },
                "revisionHistoryLimit": 10,
            },
        ),
        (
            "StatefulSet",
            {
                "replicas": 1,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            },
        ),
    ],
)
def test_workload_defaults(kind, expected):
    obj = default(kind, {"spec": {"template": _template()}})
    for key, value in expected.items():
        assert obj["spec"][key] == value


@pytest.mark.parametrize(
    ("given", "completions", "parallelism"),
    [
        ({}, 1, 1),
        ({"parallelism": 3}, None, 3),
        ({"completions": 5}, 5, 1),
        ({"completions": 2, "parallelism": 2}, 2, 2),
    ],
)
def test_job_completions_and_parallelism(given, completions, parallelism):
    job = default(
        "Job", {"metadata": {"name": "j"}, "spec": {**given, "template": _template(restartPolicy="Never")}}
    )
    assert job["spec"].get("completions") == completions
    assert job["spec"]["parallelism"] == parallelism


def test_job_defaults():
    job = default(
        "Job",
        {"metadata": {"name": "j"}, "spec": {"template": _template({"app": "batch"}, restartPolicy="Never")}},
    )
    spec = job["spec"]
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec and "selector" not in spec
    assert job["metadata"]["labels"] == {"app": "batch"}


def test_cronjob_defaults_only_pod_template_inside():
    cj = default(
        "CronJob",
        {
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": _template(restartPolicy="OnFailure")}},
            }
        },
    )
    spec = cj["spec"]
    assert (
        spec["concurrencyPolicy"],
        spec["suspend"],
        spec["successfulJobsHistoryLimit"],
        spec["failedJobsHistoryLimit"],
    ) == ("Allow", False, 3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_service_defaults():
    svc = default(
        "Service",
        {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}},
    )
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [
        {"port": 80, "protocol": "TCP", "targetPort": 80},
        {"port": 443, "targetPort": "https", "protocol": "TCP"},
    ]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert "clusterIP" not in spec and "nodePort" not in spec["ports"][0]
    assert svc["status"] == {"loadBalancer": {}}


@pytest.mark.parametrize("svc_type", ["NodePort", "LoadBalancer"])
def test_external_services_get_external_traffic_policy(svc_type):
    svc = default("Service", {"spec": {"type": svc_type, "ports": [{"port": 80}]}})
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"


def test_namespace_secret_and_endpointslice_defaults():
    ns = default("Namespace", {"metadata": {"name": "team"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    labels = {"kubernetes.io/metadata.name": "x"}
    forged = default("Namespace", {"metadata": {"name": "team", "labels": labels}})
    assert forged["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    secret = default("Secret", {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"password": "aHVudGVyMg=="} and "stringData" not in secret
    eps = default("EndpointSlice", {"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]})
    assert eps["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


# Every field below is set by the user to a non-default value; defaulting must keep each one.
USER_SET = {
    "Pod": {
        "spec": {
            "restartPolicy": "Never",
            "dnsPolicy": "Default",
            "schedulerName": "mine",
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsUser": 1000},
            "enableServiceLinks": False,
            "priority": 7,
            "serviceAccountName": "robot",
            "containers": [
                {
                    "name": "a",
                    "image": "nginx",
                    "imagePullPolicy": "Never",
                    "terminationMessagePath": "/tmp/x",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "ports": [{"containerPort": 53, "protocol": "UDP"}],
                    "livenessProbe": {
                        "exec": {"command": ["true"]},
                        "timeoutSeconds": 9,
                        "periodSeconds": 3,
                        "failureThreshold": 1,
                    },
                }
            ],
            "volumes": [{"name": "c", "configMap": {"name": "cm", "defaultMode": 256}}],
        }
    },
    "Deployment": {
        "spec": {
            "replicas": 0,
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": 60,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": _template(),
        }
    },
    "StatefulSet": {
        "spec": {
            "replicas": 3,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "template": _template(),
        }
    },
    "Job": {
        "spec": {
            "backoffLimit": 0,
            "completions": 3,
            "parallelism": 2,
            "suspend": True,
            "completionMode": "Indexed",
            "template": _template(restartPolicy="Never"),
        }
    },
    "CronJob": {
        "spec": {
            "schedule": "@hourly",
            "concurrencyPolicy": "Forbid",
            "suspend": True,
            "successfulJobsHistoryLimit": 0,
            "failedJobsHistoryLimit": 0,
            "jobTemplate": {"spec": {"template": _template()}},
        }
    },
    "Service": {
        "spec": {
            "type": "NodePort",
            "sessionAffinity": "ClientIP",
            "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Local",
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "UDP"}],
        }
    },
    "Secret": {"type": "kubernetes.io/tls", "data": {}},
    "Namespace": {"metadata": {"name": "n"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}},
}


def _contains(actual, expected, path="$"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} dropped"
            _contains(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) >= len(expected), path
        for i, value in enumerate(expected):
            _contains(actual[i], value, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("kind", sorted(USER_SET))
def test_never_overwrites_user_fields(kind):
    given = copy.deepcopy(USER_SET[kind])
    _contains(default(kind, copy.deepcopy(given)), given)


def test_defaulting_is_idempotent_for_every_kind():
    for kind, obj in USER_SET.items():
        once = default(kind, copy.deepcopy(obj))
        assert default(kind, copy.deepcopy(once)) == once, kind


# --- the official Python client must accept defaulted objects of every kind ---------------------------

META = {
    "name": "x",
    "namespace": "default",
    "uid": "u-1",
    "resourceVersion": "5",
    "creationTimestamp": "2024-05-01T10:00:00Z",
}
SAMPLES = {
    "Namespace": {"metadata": {"name": "x"}},
    "Pod": {
        "spec": _pod_spec(ports=[{"containerPort": 80}], livenessProbe={"httpGet": {"port": 80}}),
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.1"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2024-05-01T10:00:01Z"}},
                }
            ],
        },
    },
    "Service": {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
    "Endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "Node": {
        "status": {
            "capacity": {"cpu": "4"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}],
        }
    },
    "ConfigMap": {"data": {"a": "b"}},
    "Secret": {"stringData": {"a": "b"}},
    "Event": {
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
        "reason": "Started",
        "type": "Normal",
        "count": 1,
    },
    "ServiceAccount": {},
    "Deployment": {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _template()}},
    "ReplicaSet": {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _template()}},
    "DaemonSet": {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _template()}},
    "StatefulSet": {
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "serviceName": "web",
            "template": _template(),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        }
    },
    "Job": {"spec": {"template": _template(restartPolicy="Never")}},
    "CronJob": {
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": _template(restartPolicy="OnFailure")}},
        }
    },
    "Lease": {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
    "PriorityClass": {"value": 1000, "description": "batch work"},
    "PodDisruptionBudget": {"spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}},
    "HorizontalPodAutoscaler": {"spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
    "ControllerRevision": {"data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1},
    "PersistentVolumeClaim": {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    },
    "PersistentVolume": {
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/tmp/pv"},
        }
    },
    "StorageClass": {"provisioner": "orchestra.io/local-path"},
    "TokenReview": {"spec": {"token": "a-token"}},
    "SelfSubjectReview": {},
    "ResourceQuota": {
        "spec": {"hard": {"pods": "2"}, "scopes": ["NotTerminating"]},
        "status": {"hard": {"pods": "2"}, "used": {"pods": "0"}},
    },
    "LimitRange": {"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "100m"}}]}},
    "Role": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    "ClusterRole": {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}},
    "RoleBinding": {"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}]},
    "ClusterRoleBinding": {"roleRef": {"kind": "ClusterRole", "name": "view"},
                           "subjects": [{"kind": "ServiceAccount", "name": "s", "namespace": "n"}]},
    "SubjectAccessReview": {"spec": {"user": "u", "resourceAttributes": {"verb": "get"}}},
    "LocalSubjectAccessReview": {"spec": {"user": "u", "resourceAttributes": {"verb": "get"}}},
    "SelfSubjectAccessReview": {"spec": {"nonResourceAttributes": {"path": "/api", "verb": "get"}}},
    "SelfSubjectRulesReview": {"spec": {"namespace": "default"}},
    "CertificateSigningRequest": {"spec": {"request": base64.b64encode(request_pem("jane")).decode(),
                                           "signerName": "example.com/s", "usages": ["client auth"]}},
    "EndpointSlice": {
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"]}],
        "ports": [{"port": 80}],
    },
    "ReplicationController": {"spec": {"template": _template()}},
    "PodTemplate": {"template": _template()},
    "ComponentStatus": {"conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]},
    "APIService": {"metadata": {"name": "v1.apps"},
                   "spec": {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800,
                            "versionPriority": 15}},
    "Ingress": {"spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}},
    }]}}]}},
    "IngressClass": {"spec": {"controller": "orchestra.io/ingress-controller",
                              "parameters": {"kind": "Params", "name": "p"}}},
    "CustomResourceDefinition": {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    },
    "NetworkPolicy": {"spec": {"ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                            "ports": [{"port": 80, "endPort": 90}]}],
                               "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}},
    # the types served over another type's stored objects (`stored_as`)
    "Event events.k8s.io/v1": {
        "eventTime": "2024-05-01T10:00:00.000000Z", "reportingController": "kubelet",
        "reportingInstance": "kubelet-n1", "action": "Start", "reason": "Started", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "x", "namespace": "default"},
    },
    "HorizontalPodAutoscaler autoscaling/v1": {"spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 70}},
}
MODEL = {"Event": "CoreV1Event", "Event events.k8s.io/v1": "EventsV1Event", "APIService": "V1APIService",
         "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
         "HorizontalPodAutoscaler autoscaling/v1": "V1HorizontalPodAutoscaler"}


def _key(rt):
    """A type served over another type's stored objects has a sample of its own: `<kind> <apiVersion>`."""
    return f"{rt.kind} {rt.api_version}" if rt.stored_as else rt.kind


def test_pdb_defaults_nothing():
    """policy/v1 has no defaulting: unhealthyPodEvictionPolicy stays unset (IfHealthyBudget by behaviour)."""
    obj = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"maxUnavailable": 1, "selector": {}}}
    assert default("PodDisruptionBudget", copy.deepcopy(obj)) == obj


def test_samples_cover_every_registered_kind():
    assert {_key(rt) for rt in BUILTIN} == set(SAMPLES)


@pytest.mark.parametrize("rt", BUILTIN, ids=_key)
def test_defaulted_objects_deserialize_with_official_client(rt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kubernetes.client import ApiClient

        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **copy.deepcopy(SAMPLES[_key(rt)])}
        obj["metadata"] = {**META, **obj.get("metadata", {})}
        if not rt.namespaced:
            obj["metadata"].pop("namespace")
        # a type served over another's stored objects: defaulted in the stored form, served converted
        obj = conversion.served(rt, default(rt.kind, conversion.stored(rt, obj)))
        model = ApiClient()._ApiClient__deserialize(obj, MODEL.get(_key(rt), f"V1{rt.kind}"))
    assert model.metadata.name == obj["metadata"]["name"]


@pytest.mark.parametrize("rt", BUILTIN, ids=_key)
def test_defaulted_samples_pass_validation_on_create_and_noop_update(rt):
    from orchestra.api.policy.validation import validate

    obj = {"apiVersion": rt.api_version, "kind": rt.kind, **copy.deepcopy(SAMPLES[_key(rt)])}
    obj["metadata"] = {**META, **obj.get("metadata", {})}
    # validated in the stored form, with the rules of the version it was written in (as the API core does)
    obj = default(rt.kind, conversion.stored(rt, obj))
    assert validate(rt.kind, obj, None, version=rt.api_version) == []
    assert validate(rt.kind, obj, copy.deepcopy(obj), version=rt.api_version) == []
