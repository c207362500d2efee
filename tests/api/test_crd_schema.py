"""Custom resource schemas as kube-apiserver 1.32 applies them: validation (kube-openapi's messages,
as apiextensions turns them into field errors), defaulting, pruning, list types and CEL rules.
Pure functions over JSON, one table each."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestra.api.policy.crd import pruning, values
from orchestra.api.policy.crd.cel import compile_rules
from orchestra.api.policy.crd.defaulting import default, default_errors
from orchestra.api.policy.crd.listtype import list_errors
from orchestra.api.policy.crd.structural import Structural


def obj_schema(**props: Any) -> Structural:
    return Structural({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})


def rendered(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


VALUE_CASES = [
    (
        "type",
        {"n": {"type": "integer"}},
        {"n": "x"},
        ['spec.n: Invalid value: "string": spec.n in body must be of type integer: "string"'],
    ),
    (
        "null",
        {"n": {"type": "string"}},
        {"n": None},
        ['spec.n: Invalid value: "null": spec.n in body must be of type string: "null"'],
    ),
    ("nullable", {"n": {"type": "string", "nullable": True}}, {"n": None}, []),
    ("integral float is an integer", {"n": {"type": "integer"}}, {"n": 3.0}, []),
    (
        "int-or-string",
        {"n": {"x-kubernetes-int-or-string": True}},
        {"n": True},
        ['spec.n: Invalid value: "boolean": spec.n in body must be of type integer,string: "boolean"'],
    ),
    (
        "enum",
        {"c": {"type": "string", "enum": ["red", "blue"]}},
        {"c": "green"},
        ['spec.c: Unsupported value: "green": supported values: "red", "blue"'],
    ),
    (
        "maxLength",
        {"s": {"type": "string", "maxLength": 3}},
        {"s": "abcd"},
        ["spec.s: Too long: may not be more than 3 bytes"],
    ),
    (
        "minLength",
        {"s": {"type": "string", "minLength": 3}},
        {"s": "ab"},
        ['spec.s: Invalid value: "ab": spec.s in body should be at least 3 chars long'],
    ),
    (
        "pattern",
        {"s": {"type": "string", "pattern": "^[a-z]+$"}},
        {"s": "A1"},
        ["spec.s: Invalid value: \"A1\": spec.s in body should match '^[a-z]+$'"],
    ),
    (
        "maximum",
        {"n": {"type": "integer", "maximum": 10}},
        {"n": 11},
        ["spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10"],
    ),
    (
        "exclusiveMaximum",
        {"n": {"type": "number", "maximum": 10, "exclusiveMaximum": True}},
        {"n": 10},
        ["spec.n: Invalid value: 10: spec.n in body should be less than 10"],
    ),
    (
        "minimum",
        {"n": {"type": "integer", "minimum": 1}},
        {"n": 0},
        ["spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1"],
    ),
    (
        "exclusiveMinimum",
        {"n": {"type": "integer", "minimum": 1, "exclusiveMinimum": True}},
        {"n": 1},
        ["spec.n: Invalid value: 1: spec.n in body should be greater than 1"],
    ),
    (
        "multipleOf",
        {"n": {"type": "integer", "multipleOf": 5}},
        {"n": 7},
        ["spec.n: Invalid value: 7: spec.n in body should be a multiple of 5"],
    ),
    (
        "maxItems",
        {"l": {"type": "array", "maxItems": 1, "items": {"type": "string"}}},
        {"l": ["a", "b"]},
        ["spec.l: Too many: 2: must have at most 1 items"],
    ),
    (
        "minItems",
        {"l": {"type": "array", "minItems": 2, "items": {"type": "string"}}},
        {"l": ["a"]},
        ["spec.l: Invalid value: 1: spec.l in body should have at least 2 items"],
    ),
    (
        "item type",
        {"l": {"type": "array", "items": {"type": "string"}}},
        {"l": ["a", 1]},
        ['spec.l[1]: Invalid value: "integer": spec.l[1] in body must be of type string: "integer"'],
    ),
    (
        "maxProperties",
        {"m": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}}},
        {"m": {"a": "1", "b": "2"}},
        ["spec.m: Too many: 2: must have at most 1 items"],
    ),
    (
        "minProperties",
        {"m": {"type": "object", "minProperties": 2, "additionalProperties": {"type": "string"}}},
        {"m": {"a": "1"}},
        ["spec.m: Invalid value: 1: spec.m in body should have at least 2 properties"],
    ),
    (
        "map values",
        {"m": {"type": "object", "additionalProperties": {"type": "integer"}}},
        {"m": {"a": "x"}},
        ['spec.m.a: Invalid value: "string": spec.m.a in body must be of type integer: "string"'],
    ),
    (
        "format email",
        {"e": {"type": "string", "format": "email"}},
        {"e": "not-an-email"},
        ['spec.e: Invalid value: "not-an-email": spec.e in body must be of type email: "not-an-email"'],
    ),
    (
        "format uuid",
        {"u": {"type": "string", "format": "uuid"}},
        {"u": "123e4567-e89b-12d3-a456-426614174000"},
        [],
    ),
    (
        "format ipv4",
        {"i": {"type": "string", "format": "ipv4"}},
        {"i": "10.0.0.300"},
        ['spec.i: Invalid value: "10.0.0.300": spec.i in body must be of type ipv4: "10.0.0.300"'],
    ),
    ("format ipv6", {"i": {"type": "string", "format": "ipv6"}}, {"i": "::1"}, []),
    (
        "format cidr",
        {"c": {"type": "string", "format": "cidr"}},
        {"c": "10.0.0.0/33"},
        ['spec.c: Invalid value: "10.0.0.0/33": spec.c in body must be of type cidr: "10.0.0.0/33"'],
    ),
    ("format mac", {"m": {"type": "string", "format": "mac"}}, {"m": "00:1a:2b:3c:4d:5e"}, []),
    (
        "format hostname",
        {"h": {"type": "string", "format": "hostname"}},
        {"h": "-bad-"},
        ['spec.h: Invalid value: "-bad-": spec.h in body must be of type hostname: "-bad-"'],
    ),
    ("format uri", {"u": {"type": "string", "format": "uri"}}, {"u": "https://example.com/x"}, []),
    (
        "format date",
        {"d": {"type": "string", "format": "date"}},
        {"d": "2024-02-30"},
        ['spec.d: Invalid value: "2024-02-30": spec.d in body must be of type date: "2024-02-30"'],
    ),
    ("format date-time", {"d": {"type": "string", "format": "date-time"}}, {"d": "2024-01-01T00:00:00Z"}, []),
    (
        "format byte",
        {"b": {"type": "string", "format": "byte"}},
        {"b": "***"},
        ['spec.b: Invalid value: "***": spec.b in body must be of type byte: "***"'],
    ),
    ("format password accepts anything", {"p": {"type": "string", "format": "password"}}, {"p": "x"}, []),
    (
        "int32 is not enforced (kube strips the format)",
        {"n": {"type": "integer", "format": "int32"}},
        {"n": 2**40},
        [],
    ),
    (
        "required",
        {"o": {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}},
        {"o": {}},
        ["spec.o.a: Required value"],
    ),
    (
        "anyOf",
        {"n": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}},
        {"n": 3},
        [],
    ),
    (
        "not",
        {"s": {"type": "string", "not": {"enum": ["x"]}}},
        {"s": "x"},
        ['<nil>: Invalid value: "": "spec.s" must not validate the schema (not)'],
    ),
]


@pytest.mark.parametrize(
    ("props", "spec", "want"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES]
)
def test_values(props: dict[str, Any], spec: dict[str, Any], want: list[str]) -> None:
    schema = obj_schema(**props)
    assert rendered(values.validate({"spec": spec}, schema)) == want


def test_status_subresource_paths_are_relative_in_messages() -> None:
    """kube validates status with the status schema: the field is status.x, the message names x."""
    status = Structural({"type": "object", "properties": {"replicas": {"type": "integer"}}})
    assert rendered(values.validate({"replicas": "x"}, status, field="status")) == [
        'status.replicas: Invalid value: "string": replicas in body must be of type integer: "string"']


PRUNE_CASES = [
    ("unknown field", {"spec": {"a": 1, "b": 2}}, {"spec": {"a": 1}}, ["spec.b"]),
    ("unknown top level", {"foo": 1, "spec": {}}, {"spec": {}}, ["foo"]),
    (
        "metadata kept at the root",
        {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}},
        {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}},
        [],
    ),
    ("list items", {"spec": {"l": [{"n": 1, "z": 2}]}}, {"spec": {"l": [{"n": 1}]}}, ["spec.l[0].z"]),
    (
        "preserve unknown",
        {"spec": {"free": {"anything": {"x": 1}}}},
        {"spec": {"free": {"anything": {"x": 1}}}},
        [],
    ),
    (
        "embedded resource keeps its meta",
        {"spec": {"tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "junk": 1}}},
        {"spec": {"tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}},
        ["spec.tpl.junk"],
    ),
    (
        "map values keep their keys",
        {"spec": {"m": {"k": {"v": 1, "w": 2}}}},
        {"spec": {"m": {"k": {"v": 1}}}},
        ["spec.m.k.w"],
    ),
]
PRUNE_SCHEMA = Structural(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer"},
                    "l": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"n": {"type": "integer"}}},
                    },
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "tpl": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}},
                    "m": {
                        "type": "object",
                        "additionalProperties": {"type": "object", "properties": {"v": {"type": "integer"}}},
                    },
                },
            }
        },
    }
)


@pytest.mark.parametrize(
    ("obj", "want", "paths"), [c[1:] for c in PRUNE_CASES], ids=[c[0] for c in PRUNE_CASES]
)
def test_pruning(obj: dict[str, Any], want: dict[str, Any], paths: list[str]) -> None:
    got = copy.deepcopy(obj)
    assert pruning.prune(got, PRUNE_SCHEMA) == paths
    assert got == want


def test_pruning_drops_disallowed_nulls_only() -> None:
    s = obj_schema(a={"type": "string"}, b={"type": "string", "nullable": True},
                   c={"type": "string", "default": "d"})
    obj = {"spec": {"a": None, "b": None, "c": None}}
    pruning.prune_nulls(obj, s)
    assert obj == {"spec": {"b": None, "c": None}}


DEFAULT_CASES = [
    ("missing field", {"r": {"type": "integer", "default": 1}}, {}, {"r": 1}),
    ("set field kept", {"r": {"type": "integer", "default": 1}}, {"r": 3}, {"r": 3}),
    ("null, not nullable", {"r": {"type": "integer", "default": 1}}, {"r": None}, {"r": 1}),
    ("null, nullable", {"r": {"type": "integer", "nullable": True, "default": 1}}, {"r": None}, {"r": None}),
    (
        "nested object default then its defaults",
        {"o": {"type": "object", "default": {}, "properties": {"x": {"type": "string", "default": "y"}}}},
        {},
        {"o": {"x": "y"}},
    ),
    (
        "list items",
        {
            "l": {
                "type": "array",
                "items": {"type": "object", "properties": {"p": {"type": "integer", "default": 80}}},
            }
        },
        {"l": [{}, {"p": 1}]},
        {"l": [{"p": 80}, {"p": 1}]},
    ),
    (
        "map values",
        {
            "m": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"v": {"type": "string", "default": "d"}},
                },
            }
        },
        {"m": {"k": {}}},
        {"m": {"k": {"v": "d"}}},
    ),
]


@pytest.mark.parametrize(
    ("props", "spec", "want"), [c[1:] for c in DEFAULT_CASES], ids=[c[0] for c in DEFAULT_CASES]
)
def test_defaulting(props: dict[str, Any], spec: dict[str, Any], want: dict[str, Any]) -> None:
    obj = {"spec": spec}
    default(obj, obj_schema(**props))
    assert obj == {"spec": want}


def test_defaults_are_copies() -> None:
    s = obj_schema(o={"type": "object", "default": {"a": 1}, "properties": {"a": {"type": "integer"}}})
    first, second = {"spec": {}}, {"spec": {}}
    default(first, s)
    default(second, s)
    first["spec"]["o"]["a"] = 2
    assert second["spec"]["o"] == {"a": 1}


DEFAULT_ERROR_CASES = [
    (
        "wrong type",
        {"type": "object", "properties": {"r": {"type": "integer", "default": "x"}}},
        ['s.properties[r].default: Invalid value: "string":  in body must be of type integer: "string"'],
    ),
    (
        "unknown field",
        {
            "type": "object",
            "properties": {
                "o": {"type": "object", "default": {"z": 1}, "properties": {"a": {"type": "integer"}}}
            },
        },
        [
            's.properties[o].default: Invalid value: map[string]interface {}{"z":1}: must not have unknown '
            'fields'
        ],
    ),
    ("valid", {"type": "object", "properties": {"r": {"type": "integer", "default": 2, "minimum": 1}}}, []),
]


@pytest.mark.parametrize(
    ("raw", "want"), [c[1:] for c in DEFAULT_ERROR_CASES], ids=[c[0] for c in DEFAULT_ERROR_CASES]
)
def test_crd_defaults_must_validate(raw: dict[str, Any], want: list[str]) -> None:
    assert rendered(default_errors(Structural(raw), "s")) == want


LIST_CASES = [
    (
        "set duplicates",
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        ["a", "b", "a", "a"],
        ['spec.l[2]: Duplicate value: "a"'],
    ),
    (
        "set unique",
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        ["a", "b"],
        [],
    ),
    (
        "map duplicate key",
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        [{"name": "a"}, {"name": "a"}],
        ['spec.l[1]: Duplicate value: map[string]interface {}{"name":"a"}'],
    ),
    (
        "map two keys",
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["p", "q"],
            "items": {"type": "object", "properties": {"p": {"type": "integer"}, "q": {"type": "string"}}},
        },
        [{"p": 1, "q": "a"}, {"p": 1, "q": "b"}],
        [],
    ),
    ("atomic allows duplicates", {"type": "array", "items": {"type": "string"}}, ["a", "a"], []),
]


@pytest.mark.parametrize(
    ("raw", "items", "want"), [c[1:] for c in LIST_CASES], ids=[c[0] for c in LIST_CASES]
)
def test_list_types(raw: dict[str, Any], items: list[Any], want: list[str]) -> None:
    assert rendered(list_errors({"spec": {"l": items}}, obj_schema(l=raw))) == want


CEL_CASES = [
    ("passes", [{"rule": "self.replicas <= 5"}], {"replicas": 3}, None, []),
    (
        "default message",
        [{"rule": "self.replicas <= 5"}],
        {"replicas": 9},
        None,
        ['spec: Invalid value: "object": failed rule: self.replicas <= 5'],
    ),
    (
        "message",
        [{"rule": "self.replicas <= 5", "message": "at most 5 replicas"}],
        {"replicas": 9},
        None,
        ['spec: Invalid value: "object": at most 5 replicas'],
    ),
    (
        "messageExpression",
        [{"rule": "self.replicas <= 5", "messageExpression": "'replicas is ' + string(self.replicas)"}],
        {"replicas": 9},
        None,
        ['spec: Invalid value: "object": replicas is 9'],
    ),
    (
        "reason Forbidden",
        [{"rule": "self.replicas <= 5", "message": "no", "reason": "FieldValueForbidden"}],
        {"replicas": 9},
        None,
        ["spec: Forbidden: no"],
    ),
    (
        "reason Required",
        [{"rule": "has(self.name)", "message": "name please", "reason": "FieldValueRequired"}],
        {"replicas": 1},
        None,
        ["spec: Required value: name please"],
    ),
    (
        "fieldPath",
        [{"rule": "self.replicas <= 5", "message": "no", "fieldPath": ".replicas"}],
        {"replicas": 9},
        None,
        ['spec.replicas: Invalid value: "object": no'],
    ),
    (
        "transition rule",
        [{"rule": "self.replicas >= oldSelf.replicas", "message": "no scaling down"}],
        {"replicas": 1},
        {"replicas": 3},
        ['spec: Invalid value: "object": no scaling down'],
    ),
    (
        "transition rule skipped on create",
        [{"rule": "self.replicas >= oldSelf.replicas"}],
        {"replicas": 1},
        None,
        [],
    ),
    (
        "string extension",
        [{"rule": "self.name.lowerAscii() == self.name", "message": "lower case"}],
        {"name": "Abc"},
        None,
        ['spec: Invalid value: "object": lower case'],
    ),
    (
        "list extension",
        [{"rule": "self.tags.isSorted()"}],
        {"tags": ["b", "a"]},
        None,
        ['spec: Invalid value: "object": failed rule: self.tags.isSorted()'],
    ),
    (
        "quantity",
        [{"rule": "quantity(self.size).isLessThan(quantity('1Gi'))"}],
        {"size": "2Gi"},
        None,
        ["spec: Invalid value: \"object\": failed rule: quantity(self.size).isLessThan(quantity('1Gi'))"],
    ),
    (
        "runtime error",
        [{"rule": "self.missing == 1"}],
        {"replicas": 1},
        None,
        ['spec: Invalid value: "object": no such key: missing evaluating rule: self.missing == 1'],
    ),
]
CEL_SPEC = {"type": "object", "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"},
                                             "size": {"type": "string"},
                                             "tags": {"type": "array", "items": {"type": "string"}}}}


@pytest.mark.parametrize(
    ("rules", "spec", "old", "want"), [c[1:] for c in CEL_CASES], ids=[c[0] for c in CEL_CASES]
)
def test_cel_rules(rules: list[dict[str, Any]], spec: dict[str, Any], old: dict[str, Any] | None,
                   want: list[str]) -> None:
    schema = Structural(
        {"type": "object", "properties": {"spec": {**CEL_SPEC, "x-kubernetes-validations": rules}}}
    )
    compiled, errs = compile_rules(schema, "s")
    assert errs == []
    got = compiled.evaluate({"spec": spec}, {"spec": old} if old is not None else None, schema)
    assert rendered(got) == want


CEL_COMPILE_CASES = [
    ("syntax", {"rule": "self.replicas <="}, "s.properties[spec].x-kubernetes-validations[0].rule",
     "compilation failed: ERROR: <input>:1:"),
    ("undeclared function", {"rule": "self.replicas.frobnicate()"},
     "s.properties[spec].x-kubernetes-validations[0].rule",
     "compilation failed: ERROR: <input>:1:15: undeclared reference to 'frobnicate' (in container '')"),
    ("undeclared variable", {"rule": "other.x == 1"}, "s.properties[spec].x-kubernetes-validations[0].rule",
     "compilation failed: ERROR: <input>:1:1: undeclared reference to 'other' (in container '')"),
]


@pytest.mark.parametrize(("rule", "field", "detail"), [c[1:] for c in CEL_COMPILE_CASES],
                         ids=[c[0] for c in CEL_COMPILE_CASES])
def test_cel_compile_errors(rule: dict[str, Any], field: str, detail: str) -> None:
    schema = Structural(
        {"type": "object", "properties": {"spec": {**CEL_SPEC, "x-kubernetes-validations": [rule]}}}
    )
    _, errs = compile_rules(schema, "s")
    assert [e.field for e in errs] == [field]
    assert errs[0].message.startswith("Invalid value: apiextensions.ValidationRule{Rule:")
    assert detail in errs[0].message


def test_old_self_refused_under_a_list() -> None:
    schema = Structural({"type": "object", "properties": {"l": {"type": "array", "items": {
        "type": "object", "properties": {"a": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a"}]}}}})
    _, errs = compile_rules(schema, "s")
    assert rendered(errs) == [
        "s.properties[l].items.x-kubernetes-validations[0].rule: Invalid value: "
        '"self.a == oldSelf.a": oldSelf cannot be used on the uncorrelatable portion of '
        "the schema within s.properties[l]"
    ]
