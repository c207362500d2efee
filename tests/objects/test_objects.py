"""The object vocabulary (orchestra.objects): kube's semantics for tolerations, conditions, owner
references, times and durations, and the accessors every layer reads objects with."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from orchestra.objects import (
    Obj,
    as_dict,
    as_dicts,
    as_list,
    condition_true,
    controller_ref,
    format_time,
    get_condition,
    go_duration,
    go_duration_seconds,
    human_duration,
    is_pod_ready,
    is_terminating,
    labels_match,
    meta,
    min_toleration_seconds,
    new_controller_ref,
    object_key,
    only_dicts,
    owner_uids,
    parse_time,
    remove_condition,
    scaled_value,
    set_condition,
    set_status_condition,
    spec,
    split_key,
    tolerates,
    tolerations_tolerate,
    untolerated_taint,
)
from orchestra.objects.quantity import Quantity, parse_or_none

TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, TAINT, True),
        ({"key": "dedicated", "value": "gpu"}, TAINT, True),  # empty operator is Equal, empty effect any
        ({"key": "dedicated", "operator": "Equal", "value": "cpu"}, TAINT, False),
        ({"key": "dedicated", "operator": "Exists"}, TAINT, True),
        ({"key": "other", "operator": "Exists"}, TAINT, False),
        ({"operator": "Exists"}, TAINT, True),  # empty key with Exists matches every taint
        ({"operator": "Exists", "effect": "NoExecute"}, TAINT, False),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, TAINT, True),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, TAINT, False),
        ({"key": "dedicated", "operator": "Gt", "value": "gpu"}, TAINT, False),  # unknown operator
        ({"key": "k", "operator": "Equal", "value": None}, {"key": "k", "effect": "NoSchedule"}, True),
        ({"key": "k"}, {"key": "k", "value": "", "effect": "NoExecute"}, True),
    ],
    ids=["equal", "defaults", "other-value", "exists", "other-key", "empty-key-exists", "effect-mismatch",
         "exists-effect", "exists-other-effect", "unknown-operator", "null-value", "empty-value"],
)
def test_tolerates_is_kubes_tolerates_taint(toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected
    assert tolerations_tolerate([{"key": "x", "operator": "Exists"}, toleration], taint) is expected


def test_untolerated_taint_only_looks_at_the_given_effects() -> None:
    soft = {"key": "a", "effect": "PreferNoSchedule"}
    hard = {"key": "b", "effect": "NoExecute"}
    assert untolerated_taint([soft, hard], [], ("NoSchedule", "NoExecute")) == hard
    tolerations = [{"key": "b", "operator": "Exists"}]
    assert untolerated_taint([soft, hard], tolerations, ("NoSchedule", "NoExecute")) is None


@pytest.mark.parametrize(
    ("tolerations", "expected"),
    [
        ([], None),
        ([{"key": "a", "operator": "Exists"}], None),  # the second taint is not tolerated
        ([{"operator": "Exists"}], math.inf),
        ([{"operator": "Exists", "tolerationSeconds": 30},
          {"key": "b", "operator": "Exists", "tolerationSeconds": 10}], 10.0),
        ([{"operator": "Exists", "tolerationSeconds": -5}], 0.0),
    ],
    ids=["none", "one-untolerated", "forever", "shortest", "negative-is-zero"],
)
def test_min_toleration_seconds(tolerations: list[Obj], expected: float | None) -> None:
    taints = [{"key": "a", "effect": "NoExecute"}, {"key": "b", "effect": "NoExecute"}]
    assert min_toleration_seconds(tolerations, taints) == expected


def test_accessors_read_absent_and_malformed_parts_as_empty() -> None:
    assert meta(None) == {} and spec({"spec": None}) == {} and meta({"metadata": ["x"]}) == {}
    obj: Obj = {}
    meta(obj)["name"] = "x"
    assert obj == {}  # read-only: an absent part is not created
    assert as_dict(3) == {} and as_list("ab") == []
    assert as_dicts([{"a": 1}, 2]) == [{"a": 1}, {}] and only_dicts([{"a": 1}, 2]) == [{"a": 1}]
    assert is_terminating({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}})
    assert not is_terminating(None)


@pytest.mark.parametrize(
    ("obj", "key"),
    [({"metadata": {"namespace": "ns", "name": "a"}}, "ns/a"), ({"metadata": {"name": "n1"}}, "n1")],
    ids=["namespaced", "cluster-scoped"],
)
def test_object_key_round_trips(obj: Obj, key: str) -> None:
    assert object_key(obj) == key
    m = meta(obj)
    assert split_key(key) == (m.get("namespace"), m["name"])


def test_labels_match_is_a_set_selector() -> None:
    assert labels_match({"app": "web"}, {"app": "web", "tier": "x"})
    assert not labels_match({"app": "web"}, {"app": "db"}) and not labels_match({"app": "web"}, {})
    assert labels_match({}, {"app": "web"})  # an empty set selects everything


def test_controller_ref_and_new_controller_ref() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "uid": "u1"}}
    ref = new_controller_ref(owner)
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                   "controller": True, "blockOwnerDeletion": True}
    pod = {"metadata": {"ownerReferences": [{"uid": "u0", "kind": "Node"}, ref]}}
    assert controller_ref(pod) == ref and controller_ref({"metadata": {}}) is None
    assert owner_uids(pod) == ["u0", "u1"]
    svc = {"metadata": {"name": "s", "uid": "u2"}}  # objects from a cache may lack apiVersion/kind
    assert new_controller_ref(svc, api_version="v1", kind="Service")["kind"] == "Service"


def test_conditions_lookup_and_pod_readiness() -> None:
    pod = {"status": {"conditions": [{"type": "PodScheduled", "status": "True"},
                                     {"type": "Ready", "status": "True"}]}}
    assert get_condition(pod["status"], "Ready") == {"type": "Ready", "status": "True"}
    assert is_pod_ready(pod) and condition_true(pod, "PodScheduled") and not condition_true(pod, "Other")
    assert not is_pod_ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert not is_pod_ready({"status": {"conditions": "junk"}}) and not is_pod_ready(None)
    # podutil.IsPodReady reads the first Ready condition (GetPodCondition), as the endpoints and
    # disruption controllers do in kube
    assert not is_pod_ready({"status": {"conditions": [{"type": "Ready", "status": "False"},
                                                       {"type": "Ready", "status": "True"}]}})


def test_set_condition_keeps_the_transition_time_while_the_status_holds() -> None:
    st: Obj = {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": "t0"},
                              {"type": "Progressing", "status": "True", "lastTransitionTime": "t0"}]}
    set_condition(st, {"type": "Available", "status": "True", "reason": "R", "lastTransitionTime": "t1"})
    assert st["conditions"][-1] == {"type": "Available", "status": "True", "reason": "R",
                                    "lastTransitionTime": "t0"}
    set_condition(st, {"type": "Available", "status": "False", "lastTransitionTime": "t2"})
    assert st["conditions"][-1]["lastTransitionTime"] == "t2"
    remove_condition(st, "Available")
    remove_condition(st, "Progressing")
    assert "conditions" not in st


def test_set_status_condition_is_apimachinerys() -> None:
    st: Obj = {}
    set_status_condition(st, {"message": "", "reason": "A", "status": "True", "type": "Ok"}, "t0")
    assert list(st["conditions"][0]) == ["type", "status", "lastTransitionTime", "reason", "message"]
    set_status_condition(st, {"type": "Ok", "status": "True", "reason": "B"}, "t1")
    assert st["conditions"] == [{"type": "Ok", "status": "True", "lastTransitionTime": "t0", "reason": "B"}]
    set_status_condition(st, {"type": "Ok", "status": "False"}, "t2")
    assert st["conditions"][0]["lastTransitionTime"] == "t2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T10:00:00Z", datetime(2025, 1, 1, 10, tzinfo=UTC)),
        ("2025-01-01T10:00:00.5Z", datetime(2025, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2025-01-01T12:00:00+02:00", datetime(2025, 1, 1, 10, tzinfo=UTC)),
        ("2025-01-01T10:00:00", datetime(2025, 1, 1, 10, tzinfo=UTC)),  # no offset: UTC
        ("yesterday", None),
        ("", None),
        (None, None),
        (12, None),
    ],
    ids=["z", "fraction", "offset", "naive", "malformed", "empty", "none", "number"],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_format_time_is_utc_whole_seconds() -> None:
    local = datetime(2025, 1, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(local) == "2025-01-01T10:00:00Z"
    assert parse_time(format_time(local)) == datetime(2025, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (45, "45s"), (310, "5m10s"), (600, "10m"), (3 * 3600, "3h"),
     (7 * 3600 + 60, "7h1m"), (52 * 3600, "2d4h"), (400 * 86400, "400d"),
     (3 * 365 * 86400 + 12 * 86400, "3y12d")],
    ids=["future", "skew", "seconds", "minutes-seconds", "minutes", "hours", "hours-minutes", "days-hours",
         "days", "years-days"],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (10, "10s"), (80, "1m20s"), (300, "5m0s"), (3600, "1h0m0s"), (1.5, "1.5s"), (0.15, "150ms")],
    ids=["zero", "seconds", "minutes", "whole-minutes", "hour", "fraction", "millis"],
)
def test_go_duration_seconds(seconds: float, text: str) -> None:
    assert go_duration_seconds(seconds) == text
    assert go_duration(round(seconds * 1_000_000_000)) == text


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [(None, 10, True, 0), (3, 10, True, 3), ("3", 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2)],
    ids=["none", "int", "int-string", "percent-up", "percent-down"],
)
def test_scaled_value(value: Any, total: int, round_up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up=round_up) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("100m", Quantity.parse("100m")), (2, Quantity.parse("2")), ("1Gib", None), (None, None), ([1], None)],
    ids=["milli", "int", "bad-suffix", "none", "list"],
)
def test_parse_or_none(value: Any, expected: Quantity | None) -> None:
    assert parse_or_none(value) == expected
