"""Validation of the kinds and subresources real clients probe: ReplicationController, PodTemplate,
pods/ephemeralcontainers and events.k8s.io/v1 Events — kube's field paths, reasons and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestra.api.conversion.events import event_from_core, event_to_core
from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import validate

Obj = dict[str, Any]
QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
             "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
             "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def check(kind: str, obj: Obj, old: Obj | None = None, **how: str) -> list[tuple[str, str, str]]:
    obj = default(kind, copy.deepcopy(obj))
    old = default(kind, copy.deepcopy(old)) if old is not None else None
    return [(c.field, c.reason, c.message) for c in validate(kind, obj, old, **how)]


def rc(**spec: Any) -> Obj:
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    return {"kind": "ReplicationController", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"template": template, **spec}}


def rc_template(**pod_spec: Any) -> Obj:
    obj = rc()
    obj["spec"]["template"]["spec"].update(pod_spec)
    return obj


RC_CASES = [
    ("negative-replicas", rc(replicas=-1),
     ("spec.replicas", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0")),
    ("negative-min-ready", rc(minReadySeconds=-5),
     ("spec.minReadySeconds", "FieldValueInvalid", "Invalid value: -5: must be greater than or equal to 0")),
    ("selector-mismatch", rc(selector={"app": "db"}),
     ("spec.template.metadata.labels", "FieldValueInvalid",
      'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')),
    ("no-template",
     {"kind": "ReplicationController", "metadata": {"name": "x"}, "spec": {"selector": {"a": "b"}}},
     ("spec.template", "FieldValueRequired", "Required value")),
    ("no-selector-no-labels",
     {"kind": "ReplicationController", "metadata": {"name": "x"},
      "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     ("spec.selector", "FieldValueRequired", "Required value")),
    ("restart-never", rc_template(restartPolicy="Never"),
     ("spec.template.spec.restartPolicy", "FieldValueNotSupported",
      'Unsupported value: "Never": supported values: "Always"')),
    ("active-deadline", rc_template(activeDeadlineSeconds=10),
     ("spec.template.spec.activeDeadlineSeconds", "FieldValueInvalid",
      "Invalid value: 10: must not be specified")),
    ("no-image", rc_template(containers=[{"name": "c"}]),
     ("spec.template.spec.containers[0].image", "FieldValueRequired", "Required value")),
    ("bad-name", {**rc(), "metadata": {"name": "Web_1"}},
     ("metadata.name", "FieldValueInvalid",
      "Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
      "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
      "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in RC_CASES], ids=[c[0] for c in RC_CASES])
def test_replication_controller_rule(obj: Obj, expected: tuple[str, str, str]) -> None:
    assert expected in check("ReplicationController", obj)


def test_replication_controller_defaults_and_mutable_selector() -> None:
    obj = default("ReplicationController", rc())
    assert obj["spec"]["selector"] == {"app": "web"} and obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert check("ReplicationController", rc()) == []
    changed = rc(selector={"app": "web"})
    changed["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    changed["spec"]["selector"] = {"app": "web", "v": "2"}
    assert check("ReplicationController", changed, rc()) == []  # unlike a ReplicaSet's, it may change


def test_replication_controller_status_bounds() -> None:
    new = {**rc(), "status": {"replicas": 1, "readyReplicas": 2, "availableReplicas": 3}}
    assert check("ReplicationController", new, rc()) == [
        ("status.readyReplicas", "FieldValueInvalid",
         "Invalid value: 2: cannot be greater than status.replicas"),
        ("status.availableReplicas", "FieldValueInvalid",
         "Invalid value: 3: cannot be greater than status.replicas"),
        ("status.availableReplicas", "FieldValueInvalid",
         "Invalid value: 3: cannot be greater than readyReplicas"),
    ]


def test_pod_template() -> None:
    good = {"kind": "PodTemplate", "metadata": {"name": "t"},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    assert check("PodTemplate", good) == []
    assert check("PodTemplate", {"kind": "PodTemplate", "metadata": {"name": "t"}}) == [
        ("template.spec.containers", "FieldValueRequired", "Required value")]
    bad = copy.deepcopy(good)
    bad["template"]["metadata"]["labels"] = {"a": "b c"}
    assert check("PodTemplate", bad)[0][:2] == ("template.metadata.labels", "FieldValueInvalid")


# --- ephemeral containers -------------------------------------------------------------------------------


def pod(*ephemeral: Obj, **meta: Any) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "busybox"}],
                 "initContainers": [{"name": "setup", "image": "busybox"}]}
    if ephemeral:
        spec["ephemeralContainers"] = list(ephemeral)
    return {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", **meta}, "spec": spec}


def debugger(**fields: Any) -> Obj:
    return {"name": "debugger", "image": "busybox", "stdin": True, "tty": True, **fields}


CANNOT = "Forbidden: cannot be set for an Ephemeral Container"
EPHEMERAL_CASES = [
    ("valid", debugger(targetContainerName="app"), None),
    ("target-init", debugger(targetContainerName="setup"), None),
    ("unknown-target", debugger(targetContainerName="nope"),
     ("spec.ephemeralContainers[0].targetContainerName", "FieldValueNotFound", 'Not found: "nope"')),
    ("name-clash", debugger(name="app"),
     ("spec.ephemeralContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "app"')),
    ("ports", debugger(ports=[{"containerPort": 80}]),
     ("spec.ephemeralContainers[0].ports", "FieldValueForbidden", CANNOT)),
    ("empty-ports", debugger(ports=[]), ("spec.ephemeralContainers[0].ports", "FieldValueForbidden", CANNOT)),
    ("resources", debugger(resources={"limits": {"cpu": "1"}}),
     ("spec.ephemeralContainers[0].resources", "FieldValueForbidden", CANNOT)),
    ("liveness", debugger(livenessProbe={"exec": {"command": ["true"]}}),
     ("spec.ephemeralContainers[0].livenessProbe", "FieldValueForbidden", CANNOT)),
    ("readiness", debugger(readinessProbe={"tcpSocket": {"port": 1}}),
     ("spec.ephemeralContainers[0].readinessProbe", "FieldValueForbidden", CANNOT)),
    ("startup", debugger(startupProbe={"tcpSocket": {"port": 1}}),
     ("spec.ephemeralContainers[0].startupProbe", "FieldValueForbidden", CANNOT)),
    ("lifecycle", debugger(lifecycle={"preStop": {"exec": {"command": ["x"]}}}),
     ("spec.ephemeralContainers[0].lifecycle", "FieldValueForbidden", CANNOT)),
    ("restart-policy", debugger(restartPolicy="Always"),
     ("spec.ephemeralContainers[0].restartPolicy", "FieldValueForbidden", CANNOT)),
    ("sub-path", debugger(volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": "x"}]),
     ("spec.ephemeralContainers[0].volumeMounts[0].subPath", "FieldValueForbidden", CANNOT)),
    ("no-image", {"name": "debugger"},
     ("spec.ephemeralContainers[0].image", "FieldValueRequired", "Required value")),
]  # fmt: skip


@pytest.mark.parametrize(("container", "expected"), [c[1:] for c in EPHEMERAL_CASES],
                         ids=[c[0] for c in EPHEMERAL_CASES])
def test_ephemeral_container_rule(container: Obj, expected: tuple[str, str, str] | None) -> None:
    old = pod()
    new = pod(container)
    if "volumeMounts" in container:
        old["spec"]["volumes"] = new["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    got = check("Pod", new, old, subresource="ephemeralcontainers")
    assert got == [] if expected is None else expected in got


def test_ephemeral_containers_can_only_be_added() -> None:
    old = pod(debugger())
    removed = check("Pod", pod(), old, subresource="ephemeralcontainers")
    assert removed == [("spec.ephemeralContainers", "FieldValueForbidden",
                        'Forbidden: existing ephemeral containers "debugger" may not be removed\n')]
    changed = check("Pod", pod(debugger(image="alpine")), old, subresource="ephemeralcontainers")
    assert changed[0][:2] == ("spec.ephemeralContainers", "FieldValueForbidden")
    assert changed[0][2].startswith(
        'Forbidden: existing ephemeral containers "debugger" may not be changed\n')
    added = check("Pod", pod(debugger(), debugger(name="second")), old, subresource="ephemeralcontainers")
    assert added == []


def test_ephemeral_containers_not_on_static_pods_create_or_templates() -> None:
    static = pod(annotations={"kubernetes.io/config.mirror": "x"})
    assert check("Pod", pod(debugger(), annotations=static["metadata"]["annotations"]), static,
                 subresource="ephemeralcontainers") == [
        ("", "FieldValueForbidden", "Forbidden: static pods do not support ephemeral containers")]
    assert ("spec.ephemeralContainers", "FieldValueForbidden", "Forbidden: cannot be set on create") in check(
        "Pod", pod(debugger()))
    rs = {"kind": "ReplicaSet", "metadata": {"name": "r"},
          "spec": {"selector": {"matchLabels": {"a": "b"}},
                   "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod(debugger())["spec"]}}}
    assert ("spec.template.spec.ephemeralContainers", "FieldValueForbidden",
            "Forbidden: ephemeral containers not allowed in pod template") in check("ReplicaSet", rs)


def test_a_plain_pod_update_may_not_add_ephemeral_containers() -> None:
    got = check("Pod", pod(debugger()), pod())
    assert got and got[0][:2] == ("spec", "FieldValueForbidden")


# --- events.k8s.io/v1 --------------------------------------------------------------------------------------

V1 = "events.k8s.io/v1"


def event(**fields: Any) -> Obj:
    base = {"apiVersion": V1, "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2024-05-01T10:00:00.000000Z", "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1", "action": "Sync", "reason": "Synced", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}, "note": "done"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def check_v1(obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    return check("Event", event_to_core(obj), event_to_core(old) if old else None, version=V1)


EVENT_CASES = [
    ("valid", event(), None),
    ("no-event-time", event(eventTime=None), ("eventTime", "FieldValueRequired", "Required value")),
    ("bad-type", event(type="Info"),
     ("type", "FieldValueInvalid", 'Invalid value: "": has invalid value: Info')),
    ("no-controller", event(reportingController=None),
     ("reportingController", "FieldValueRequired", "Required value")),
    ("bad-controller", event(reportingController="a b"),
     ("reportingController", "FieldValueInvalid", f'Invalid value: "a b": {QNAME_MSG}')),
    ("no-instance", event(reportingInstance=None),
     ("reportingInstance", "FieldValueRequired", "Required value")),
    ("long-instance", event(reportingInstance="x" * 129),
     ("reportingInstance", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters')),
    ("no-action", event(action=None), ("action", "FieldValueRequired", "Required value")),
    ("no-reason", event(reason=None), ("reason", "FieldValueRequired", "Required value")),
    ("long-note", event(note="n" * 1025),
     ("message", "FieldValueInvalid", 'Invalid value: "": can have at most 1024 characters')),
    ("cluster-object-outside-default",
     event(metadata={"name": "e", "namespace": "apps"}, regarding={"kind": "Node", "name": "n"}),
     ("involvedObject.namespace", "FieldValueInvalid", 'Invalid value: "": does not match event.namespace')),
    ("cluster-object-in-kube-system",
     event(metadata={"name": "e", "namespace": "kube-system"}, regarding={"kind": "Node", "name": "n"}),
     None),
    ("deprecated-count", event(deprecatedCount=3),
     ("count", "FieldValueInvalid", 'Invalid value: "": needs to be unset')),
    ("deprecated-source", event(deprecatedSource={"component": "kubelet"}),
     ("source", "FieldValueInvalid", 'Invalid value: "": needs to be unset')),
    ("deprecated-first", event(deprecatedFirstTimestamp="2024-05-01T10:00:00Z"),
     ("firstTimestamp", "FieldValueInvalid", 'Invalid value: "": needs to be unset')),
    ("short-series", event(series={"count": 1, "lastObservedTime": "2024-05-01T10:00:00.000000Z"}),
     ("series.count", "FieldValueInvalid", 'Invalid value: "": should be at least 2')),
    ("series-no-time", event(series={"count": 2}),
     ("series.lastObservedTime", "FieldValueRequired", "Required value")),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES])
def test_events_v1_rule(obj: Obj, expected: tuple[str, str, str] | None) -> None:
    got = check_v1(obj)
    assert got == [] if expected is None else expected in got


def test_events_v1_update_keeps_the_event_immutable() -> None:
    old = event()
    assert check_v1(event(series={"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"}), old) == []
    assert ("message", "FieldValueInvalid", 'Invalid value: "changed": field is immutable') in check_v1(
        event(note="changed"), old)
    assert ("reportingController", "FieldValueInvalid",
            'Invalid value: "other": field is immutable') in check_v1(
        event(reportingController="other"), old)


def test_new_events_may_regard_objects_of_other_namespaces() -> None:
    # legacyValidateEvent checks a new-style event's involvedObject.namespace only when it is empty
    assert check_v1(event(regarding={"kind": "Pod", "name": "p", "namespace": "other"})) == []


def test_core_events_keep_their_legacy_rules() -> None:
    legacy = {"kind": "Event", "metadata": {"name": "e", "namespace": "default"}, "reason": "X",
              "involvedObject": {"kind": "Node", "name": "n"}, "message": "m", "count": 3}
    assert check("Event", legacy) == []  # no eventTime, no reporter: fine through core/v1


CONVERSION_CASES = [
    ("legacy", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "a"},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "Started", "message": "ok", "source": {"component": "kubelet", "host": "n1"},
                "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:05Z", "count": 2,
                "type": "Normal"},
     {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "a"},
      "regarding": {"kind": "Pod", "name": "p"},
      "reason": "Started", "note": "ok", "deprecatedSource": {"component": "kubelet", "host": "n1"},
      "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z", "deprecatedLastTimestamp": "2024-01-01T00:00:05Z",
      "deprecatedCount": 2, "type": "Normal", "eventTime": None}),
    ("new-style", event_to_core(event(related={"kind": "Node", "name": "n1"})),
     {**event(related={"kind": "Node", "name": "n1"}), "deprecatedSource": {},
      "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None}),
]  # fmt: skip


@pytest.mark.parametrize(("core", "v1"), [c[1:] for c in CONVERSION_CASES],
                         ids=[c[0] for c in CONVERSION_CASES])
def test_event_conversion(core: Obj, v1: Obj) -> None:
    assert event_from_core(core) == v1
    back = event_to_core(v1)
    assert {k: v for k, v in back.items() if v not in ("", None)} == {
        k: v for k, v in core.items() if v not in ("", None)}


# --- APIService ---------------------------------------------------------------------------------------


def api_service(name: str = "v1.example.com", **spec: Any) -> Obj:
    base = {"group": "example.com", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15}
    return {"kind": "APIService", "metadata": {"name": name}, "spec": {**base, **spec}}


API_SERVICE_CASES = [
    ("local", api_service(), None),
    ("core-group", api_service("v1.", group=""), None),
    ("wrong-name", api_service("v2.example.com"),
     ("metadata.name", "FieldValueInvalid",
      'Invalid value: "v2.example.com": must be `spec.version+"."+spec.group`: "v1.example.com"')),
    ("slash", api_service("v1.a/b", group="a/b"),
     ("metadata.name", "FieldValueInvalid", "Invalid value: \"v1.a/b\": may not contain '/'")),
    ("empty-group", api_service("v2.", group="", version="v2"),
     ("spec.group", "FieldValueRequired",
      "Required value: only v1 may have an empty group and it better be legacy kube")),
    ("bad-version", api_service("V1.example.com", version="V1"),
     ("spec.version", "FieldValueInvalid",
      "Invalid value: \"V1\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
      "start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
      "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")),
    ("group-priority", api_service(groupPriorityMinimum=20001),
     ("spec.groupPriorityMinimum", "FieldValueInvalid",
      "Invalid value: 20001: must be positive and less than 20000")),
    ("version-priority", api_service(versionPriority=0),
     ("spec.versionPriority", "FieldValueInvalid", "Invalid value: 0: must be positive and less than 1000")),
    ("local-ca", api_service(caBundle="AAAA"),
     ("spec.caBundle", "FieldValueInvalid",
      'Invalid value: "3 bytes": local APIServices may not have a caBundle')),
    ("local-insecure", api_service(insecureSkipTLSVerify=True),
     ("spec.insecureSkipTLSVerify", "FieldValueInvalid",
      "Invalid value: true: local APIServices may not have insecureSkipTLSVerify")),
    ("service-name", api_service(service={"namespace": "ns"}),
     ("spec.service.name", "FieldValueRequired", "Required value")),
    ("service-port", api_service(service={"namespace": "ns", "name": "s", "port": 70000}),
     ("spec.service.port", "FieldValueInvalid",
      "Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive")),
    ("insecure-with-ca",
     api_service(service={"namespace": "ns", "name": "s"}, caBundle="AAAA", insecureSkipTLSVerify=True),
     ("spec.insecureSkipTLSVerify", "FieldValueInvalid",
      "Invalid value: true: may not be true if caBundle is present")),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in API_SERVICE_CASES],
                         ids=[c[0] for c in API_SERVICE_CASES])
def test_api_service_rule(obj: Obj, expected: tuple[str, str, str] | None) -> None:
    got = check("APIService", obj)
    assert got == [] if expected is None else expected in got
