"""Semantic validation: kube's field paths, reasons and messages, rule by rule."""

import copy

import pytest

from orchestra.api.errors import Cause, invalid
from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import cron_error, validate

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def pod(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **spec}}  # fmt: skip


def deployment(labels=None, selector=None, **spec):
    labels = {"app": "web"} if labels is None else labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
            **spec,
        },
    }


def job(restart="Never"):
    return {
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": restart, "containers": [{"name": "a", "image": "busybox"}]}
            }
        },
    }


def cronjob(schedule="*/5 * * * *"):
    tmpl = {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "busybox"}]}}
    return {
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": tmpl}}},
    }


def service(**spec):
    return {
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec},
    }


def check(kind, obj, old=None):
    obj = default(kind, copy.deepcopy(obj))
    old = default(kind, copy.deepcopy(old)) if old is not None else None
    return [(c.field, c.reason, c.message) for c in validate(kind, obj, old)]


def with_container(obj, **fields):
    obj = copy.deepcopy(obj)
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    spec["containers"][0].update(fields)
    return obj


@pytest.mark.parametrize("kind,obj", [("Pod", pod()), ("Deployment", deployment()), ("Job", job()),
                                      ("CronJob", cronjob()), ("Service", service()),
                                      ("ConfigMap", {"metadata": {"name": "c"}, "data": {"a.b": "c"}})],
                         ids=lambda v: v if isinstance(v, str) else "")  # fmt: skip
def test_valid_objects_have_no_causes(kind, obj):
    assert check(kind, obj) == []


# kube-apiserver 1.32 refuses no quantity for its size (ValidateResourceQuantityValue checks the sign
# and, for extended resources, wholeness): these are all valid, as they are in kube.
LARGE = [
    {"requests": {"cpu": "1e20"}}, {"requests": {"cpu": "1e400"}}, {"requests": {"cpu": "9223372036854776k"}},
    {"requests": {"memory": "100Ei"}}, {"limits": {"memory": "1e30"}},
    {"requests": {"example.com/foo": "1e30"}, "limits": {"example.com/foo": "1e30"}},
    {"requests": {"ephemeral-storage": "1e25"}},
]


@pytest.mark.parametrize("resources", LARGE, ids=lambda r: str(r)[:60])
def test_large_quantities_are_valid_like_kube(resources):
    assert check("Pod", with_container(pod(), resources=resources)) == []
    assert check("Pod", pod(overhead={"cpu": "1e20"})) == []
    assert check("Deployment", with_container(deployment(), resources=resources)) == []


CASES = [
    # metadata
    ("Pod", {**pod(), "metadata": {}},
     ("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")),
    ("Deployment", {**deployment(), "metadata": {"name": "Web_1"}},
     ("metadata.name", "FieldValueInvalid", f'Invalid value: "Web_1": {SUBDOMAIN_MSG}')),
    ("Namespace", {"metadata": {"name": "a.b"}},
     ("metadata.name", "FieldValueInvalid", f'Invalid value: "a.b": {LABEL_MSG}')),
    ("Service", {**service(), "metadata": {"name": "1web"}},
     ("metadata.name", "FieldValueInvalid", f'Invalid value: "1web": {DNS1035_MSG}')),
    ("Pod", {**pod(), "metadata": {"name": "p", "labels": {"app": "we b"}}},
     ("metadata.labels", "FieldValueInvalid",
      "Invalid value: \"we b\": a valid label must be an empty string or consist of alphanumeric characters, "
      "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
      "'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
    ("Pod", {**pod(), "metadata": {"name": "p", "labels": {"-bad": "x"}}},
     ("metadata.labels", "FieldValueInvalid",
      "Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must "
      "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
      "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")),
    ("Pod", {**pod(), "metadata": {"name": "p", "annotations": {"a/b/c": "x"}}},
     ("metadata.annotations", "FieldValueInvalid",
      "Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
      "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
      "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
      "subdomain prefix and '/' (e.g. 'example.com/MyName')")),
    # pod spec
    ("Pod", pod(containers=[]), ("spec.containers", "FieldValueRequired", "Required value")),
    ("Pod", with_container(pod(), name="Web"),
     ("spec.containers[0].name", "FieldValueInvalid", f'Invalid value: "Web": {LABEL_MSG}')),
    ("Pod", pod(containers=[{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]),
     ("spec.containers[1].name", "FieldValueDuplicate", 'Duplicate value: "a"')),
    ("Pod", pod(initContainers=[{"name": "web", "image": "busybox"}]),
     ("spec.initContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "web"')),
    ("Deployment", with_container(deployment(), image=""),
     ("spec.template.spec.containers[0].image", "FieldValueRequired", "Required value")),
    ("Pod", with_container(pod(), ports=[{"containerPort": 70000}]),
     ("spec.containers[0].ports[0].containerPort", "FieldValueInvalid",
      "Invalid value: 70000: must be between 1 and 65535, inclusive")),
    ("Pod", with_container(pod(), ports=[{"containerPort": 80, "name": "http"},
                                         {"containerPort": 81, "name": "http"}]),
     ("spec.containers[0].ports[1].name", "FieldValueDuplicate", 'Duplicate value: "http"')),
    ("Pod", with_container(pod(), ports=[{"containerPort": 80, "protocol": "ICMP"}]),
     ("spec.containers[0].ports[0].protocol", "FieldValueNotSupported",
      'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"')),
    ("Pod", pod(restartPolicy="Sometimes"),
     ("spec.restartPolicy", "FieldValueNotSupported",
      'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')),
    ("Pod", pod(dnsPolicy="Custom"),
     ("spec.dnsPolicy", "FieldValueNotSupported",
      'Unsupported value: "Custom": supported values: '
      '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"')),
    ("Pod", with_container(pod(), imagePullPolicy="Sometimes"),
     ("spec.containers[0].imagePullPolicy", "FieldValueNotSupported",
      'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')),
    ("Pod", with_container(pod(), env=[{"value": "x"}]),
     ("spec.containers[0].env[0].name", "FieldValueRequired", "Required value")),
    ("Pod", with_container(pod(), env=[{"name": "A=B"}]),
     ("spec.containers[0].env[0].name", "FieldValueInvalid",
      "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII "
      "characters other than '='")),
    ("Pod", pod(volumes=[{"name": "data"}, {"name": "data"}]),
     ("spec.volumes[1].name", "FieldValueDuplicate", 'Duplicate value: "data"')),
    ("Pod", with_container(pod(), volumeMounts=[{"name": "nope", "mountPath": "/x"}]),
     ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound", 'Not found: "nope"')),
    ("Pod", with_container(pod(), resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
     ("spec.containers[0].resources.requests", "FieldValueInvalid",
      'Invalid value: "2": must be less than or equal to cpu limit of 1')),
    ("Pod", with_container(pod(), resources={"requests": {"memory": "-1Gi"}}),
     ("spec.containers[0].resources.requests[memory]", "FieldValueInvalid",
      'Invalid value: "-1Gi": must be greater than or equal to 0')),
    ("Pod", with_container(pod(), resources={"requests": {"cpu": "1e21"}, "limits": {"cpu": "1e20"}}),
     ("spec.containers[0].resources.requests", "FieldValueInvalid",
      'Invalid value: "1e21": must be less than or equal to cpu limit of 100e18')),
    ("Pod", with_container(pod(), resources={"limits": {"example.com/foo": "1500m"}}),
     ("spec.containers[0].resources.limits[example.com/foo]", "FieldValueInvalid",
      'Invalid value: "1500m": must be an integer')),
    ("Pod", with_container(pod(), resources={"requests": {"example.com/foo": "1"}}),
     ("spec.containers[0].resources.limits", "FieldValueRequired",
      "Required value: Limit must be set for non overcommitable resources")),
    ("Pod", with_container(pod(), resources={"requests": {"example.com/foo": "1"},
                                             "limits": {"example.com/foo": "2"}}),
     ("spec.containers[0].resources.requests", "FieldValueInvalid",
      'Invalid value: "1": must be equal to example.com/foo limit of 2')),
    ("Pod", pod(overhead={"cpu": "-1"}),
     ("spec.overhead.limits[cpu]", "FieldValueInvalid",
      'Invalid value: "-1": must be greater than or equal to 0')),
    ("Deployment", {**deployment(), "spec": {**deployment()["spec"], "template": {
        **deployment()["spec"]["template"],
        "spec": {"overhead": {"pods": "1"}, "containers": [{"name": "a", "image": "b"}]}}}},
     ("spec.template.spec.overhead.limits[pods]", "FieldValueInvalid",
      'Invalid value: "pods": must be a standard resource for containers')),
    ("Pod", with_container(pod(), livenessProbe={"periodSeconds": 5}),
     ("spec.containers[0].livenessProbe", "FieldValueRequired",
      "Required value: must specify a handler type")),
    ("Pod", with_container(pod(), readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
     ("spec.containers[0].readinessProbe.tcpSocket", "FieldValueForbidden",
      "Forbidden: may not specify more than 1 handler type")),
    ("Pod", with_container(pod(), livenessProbe={"tcpSocket": {"port": 80}, "successThreshold": 2}),
     ("spec.containers[0].livenessProbe.successThreshold", "FieldValueInvalid",
      "Invalid value: 2: must be 1")),
    # workloads
    ("Deployment", deployment(replicas=-1),
     ("spec.replicas", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0")),
    ("Deployment", deployment(labels={"app": "x"}),
     ("spec.template.metadata.labels", "FieldValueInvalid",
      'Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`')),
    ("Deployment", deployment(selector={}),
     ("spec.selector", "FieldValueInvalid",
      "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment")),
    ("Deployment",
     {**deployment(), "spec": {k: v for k, v in deployment()["spec"].items() if k != "selector"}},
     ("spec.selector", "FieldValueRequired", "Required value")),
    ("Deployment", deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     ("spec.strategy.rollingUpdate", "FieldValueForbidden",
      "Forbidden: may not be specified when strategy `type` is 'Recreate'")),
    ("Deployment", deployment(strategy={"type": "Blue"}),
     ("spec.strategy", "FieldValueNotSupported",
      'Unsupported value: apps.DeploymentStrategy{Type:"Blue", '
      'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"')),
    ("Deployment",
     deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     ("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid",
      "Invalid value: 0: may not be 0 when `maxSurge` is 0")),
    ("ReplicaSet", {**deployment(), "kind": "ReplicaSet", "spec": {**deployment()["spec"], "template": {
        **deployment()["spec"]["template"],
        "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}}}},
     ("spec.template.spec.restartPolicy", "FieldValueNotSupported",
      'Unsupported value: "Never": supported values: "Always"')),
    ("DaemonSet", {**deployment(selector={}), "kind": "DaemonSet"},
     ("spec.selector", "FieldValueInvalid",
      "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset")),
    ("StatefulSet", {**deployment(labels={"app": "db"}), "kind": "StatefulSet"},
     ("spec.template.metadata.labels", "FieldValueInvalid",
      'Invalid value: map[string]string{"app":"db"}: `selector` does not match template `labels`')),
    ("Job", job("Always"),
     ("spec.template.spec.restartPolicy", "FieldValueNotSupported",
      'Unsupported value: "Always": supported values: "OnFailure", "Never"')),
    ("CronJob", cronjob(""), ("spec.schedule", "FieldValueRequired", "Required value")),
    ("CronJob", cronjob("* * *"),
     ("spec.schedule", "FieldValueInvalid",
      'Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]')),
    ("CronJob", cronjob("61 * * * *"),
     ("spec.schedule", "FieldValueInvalid",
      'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61')),
    ("CronJob", cronjob("@sometimes"),
     ("spec.schedule", "FieldValueInvalid",
      'Invalid value: "@sometimes": unrecognized descriptor: @sometimes')),
    # services
    ("Service", service(ports=[]), ("spec.ports", "FieldValueRequired", "Required value")),
    ("Service", service(ports=[{"port": 0}]),
     ("spec.ports[0].port", "FieldValueInvalid", "Invalid value: 0: must be between 1 and 65535, inclusive")),
    ("Service", service(ports=[{"port": 80, "protocol": "HTTP"}]),
     ("spec.ports[0].protocol", "FieldValueNotSupported",
      'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')),
    ("Service", service(type="Internal"),
     ("spec.type", "FieldValueNotSupported",
      'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
      '"NodePort"')),
    ("Service", service(ports=[{"port": 80, "name": "web"}, {"port": 81}]),
     ("spec.ports[1].name", "FieldValueRequired", "Required value")),
    ("Service", service(ports=[{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]),
     ("spec.ports[1].name", "FieldValueDuplicate", 'Duplicate value: "web"')),
    ("Service", service(type="NodePort", ports=[{"port": 80, "nodePort": 80}]),
     ("spec.ports[0].nodePort", "FieldValueInvalid",
      "Invalid value: 80: provided port is not in the valid range. The range of valid ports is "
      "30000-32767")),
    ("Service", service(ports=[{"port": 80, "nodePort": 30080}]),
     ("spec.ports[0].nodePort", "FieldValueForbidden",
      "Forbidden: may not be used when `type` is 'ClusterIP'")),
    # config
    ("ConfigMap", {"metadata": {"name": "c"}, "data": {"a b": "x"}},
     ("data[a b]", "FieldValueInvalid",
      "Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
      "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")),
    ("Secret", {"metadata": {"name": "s"}, "data": {"..x": "eA=="}},
     ("data[..x]", "FieldValueInvalid", "Invalid value: \"..x\": must not start with '..'")),
    ("Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}},
     ("data[tls.key]", "FieldValueRequired", "Required value")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "obj", "expected"), CASES, ids=[f"{c[0]}:{c[2][0]}:{c[2][2][:40]}" for c in CASES]
)
def test_rule(kind, obj, expected):
    assert expected in check(kind, obj)


UPDATE_CASES = [
    ("Deployment",
     deployment(selector={"matchLabels": {"app": "web", "v": "2"}}, labels={"app": "web", "v": "2"}),
     deployment(),
     ("spec.selector", "FieldValueInvalid",
      'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, '
      'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable')),
    ("Service", service(clusterIP="10.96.0.9", clusterIPs=["10.96.0.9"]),
     service(clusterIP="10.96.0.5", clusterIPs=["10.96.0.5"]),
     ("spec.clusterIPs[0]", "FieldValueInvalid",
      'Invalid value: []string{"10.96.0.9"}: may not change once set')),
    ("Job", {**job(), "spec": {**job()["spec"], "selector": {"matchLabels": {"a": "2"}}}},
     {**job(), "spec": {**job()["spec"], "selector": {"matchLabels": {"a": "1"}}}},
     ("spec.selector", "FieldValueInvalid",
      'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"2"}, '
      'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable')),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "new", "old", "expected"), UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_update_rule(kind, new, old, expected):
    assert expected in check(kind, new, old)


def test_job_template_is_immutable():
    old = job()
    new = with_container(job(), image="busybox:2")
    assert (
        "spec.template",
        "FieldValueInvalid",
        "Invalid value: core.PodTemplateSpec{...}: field is immutable",
    ) in check("Job", new, old)


def test_service_cluster_ip_may_be_omitted_on_update():
    assert check("Service", service(), service(clusterIP="10.96.0.5", clusterIPs=["10.96.0.5"])) == []


def test_pod_update_allows_image_and_labels_only():
    old = pod()
    new = with_container(pod(), image="nginx:1.28")
    new["metadata"]["labels"] = {"tier": "web"}
    assert check("Pod", new, old) == []
    causes = check("Pod", pod(restartPolicy="Never"), old)
    assert len(causes) == 1
    path, reason, message = causes[0]
    assert (path, reason) == ("spec", "FieldValueForbidden")
    assert message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    )
    assert "restartPolicy" in message


def test_pod_update_allows_added_tolerations_but_not_removed_ones():
    old = pod()
    added = pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}])
    assert check("Pod", added, old) == []
    assert check("Pod", old, added)[0][0] == "spec"


def test_invalid_renders_kube_message():
    causes = validate("Deployment", default("Deployment", deployment(labels={"app": "x"})), None)
    err = invalid("Deployment", "web", causes, group="apps")
    assert err.message == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"x"}: `selector` does not match template `labels`'
    )
    assert all(isinstance(c, Cause) for c in causes)


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("*/5 * * * *", ""),
        ("0 0 * * MON-FRI", ""),
        ("@hourly", ""),
        ("@every 5m", ""),
        ("0 0 1 jan *", ""),
        ("", "empty spec string"),
        ("0 0 * * 7", "end of range (7) above maximum (6): 7"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ],
)
def test_cron_parser(schedule, error):
    assert cron_error(schedule) == error


# --- policy/v1 PodDisruptionBudget ------------------------------------------------------------------


def pdb(name="web", **spec):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}  # fmt: skip


PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
    "regex used for validation is '[0-9]+%')"
)
PDB_CASES = [
    ("both-set", pdb(minAvailable=1, maxUnavailable="10%"), [(
        "spec", "FieldValueInvalid",
        "Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(0xc000000000), "
        "Selector:(*v1.LabelSelector)(0xc000000000), MaxUnavailable:(*intstr.IntOrString)(0xc000000000), "
        "UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}: "
        "minAvailable and maxUnavailable cannot be both set")]),
    ("negative-int", pdb(minAvailable=-1), [(
        "spec.minAvailable", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0")]),
    ("over-100-percent", pdb(maxUnavailable="120%"), [(
        "spec.maxUnavailable", "FieldValueInvalid",
        'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"120%"}: '
        'must not be greater than 100%')]),
    ("not-a-percent", pdb(minAvailable="half"), [(
        "spec.minAvailable", "FieldValueInvalid",
        f'Invalid value: intstr.IntOrString{{Type:1, IntVal:0, StrVal:"half"}}: {PERCENT_MSG}')]),
    ("bad-policy", pdb(minAvailable=1, unhealthyPodEvictionPolicy="Sometimes"), [(
        "spec.unhealthyPodEvictionPolicy", "FieldValueNotSupported",
        'Unsupported value: "Sometimes": supported values: "AlwaysAllow", "IfHealthyBudget"')]),
    ("bad-selector",
     pdb(minAvailable=1, selector={"matchExpressions": [{"key": "app", "operator": "In"}]}), [(
        "spec.selector.matchExpressions[0].values", "FieldValueRequired",
        "Required value: must be specified when `operator` is 'In' or 'NotIn'")]),
    ("negative-status", {**pdb(minAvailable=1), "status": {"disruptionsAllowed": -1, "currentHealthy": 0,
                                                           "desiredHealthy": 0, "expectedPods": 0}},
     [("status.disruptionsAllowed", "FieldValueInvalid",
       "Invalid value: -1: must be greater than or equal to 0")]),
    ("bad-condition", {**pdb(minAvailable=1), "status": {"conditions": [{
        "type": "DisruptionAllowed", "status": "Maybe", "reason": "9lives",
        "lastTransitionTime": "2024-01-01T00:00:00Z", "message": ""}]}},
     [("status.conditions[0].status", "FieldValueNotSupported",
       'Unsupported value: "Maybe": supported values: "False", "True", "Unknown"'),
      ("status.conditions[0].reason", "FieldValueInvalid",
       "Invalid value: \"9lives\": a condition reason must start with alphabetic character, optionally "
       "followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric "
       "character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or "
       "'ReasonA:ReasonB', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')")]),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in PDB_CASES], ids=[c[0] for c in PDB_CASES])
def test_pdb_rule(obj, expected):
    assert check("PodDisruptionBudget", obj) == expected


@pytest.mark.parametrize("spec", [{"minAvailable": 0}, {"minAvailable": "100%"}, {"maxUnavailable": 2},
                                  {"maxUnavailable": "0%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}, {}])
def test_valid_pdbs(spec):
    assert check("PodDisruptionBudget", pdb(**spec)) == []


def test_pdb_names_are_path_segments_checked_after_the_spec():
    """The generic registry checks names as path segments (uppercase is fine) and only once the
    strategy's validation passed."""
    assert check("PodDisruptionBudget", pdb("Web_Budget", minAvailable=1)) == []
    assert check("PodDisruptionBudget", pdb("a%b", minAvailable=1)) == [
        ("metadata.name", "FieldValueInvalid", "Invalid value: \"a%b\": may not contain '%'")]
    assert [c[0] for c in check("PodDisruptionBudget", pdb("a%b", minAvailable=-1))] == ["spec.minAvailable"]
    causes = validate("PodDisruptionBudget", default("PodDisruptionBudget", pdb(minAvailable=-1)), None)
    assert invalid("PodDisruptionBudget", "web", causes, group="policy").message == (
        'PodDisruptionBudget.policy "web" is invalid: spec.minAvailable: Invalid value: -1: '
        'must be greater than or equal to 0'
    )
