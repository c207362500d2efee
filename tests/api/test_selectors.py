"""labelSelector / fieldSelector query strings: parsed, refused (400 with apimachinery's message) and
matched the way kube-apiserver 1.32 does."""

from __future__ import annotations

import pytest

from orchestra.api.errors import BadRequest
from orchestra.api.machinery.selectors import parse_field_selector, parse_label_selector

QNAME = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

BAD_LABEL_SELECTORS = [
    ("non-ascii-key", "ñ=ü", f'unable to parse requirement: <nil>: Invalid value: "ñ": name part {QNAME}'),
    ("non-ascii-value", "a=ü", f'unable to parse requirement: values[0][a]: Invalid value: "ü": {VALUE}'),
    (
        "long-key",
        "k" * 70,
        f'unable to parse requirement: <nil>: Invalid value: "{"k" * 70}": '
        "name part must be no more than 63 characters",
    ),
    (
        "long-value",
        "a=" + "v" * 64,
        f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": '
        "must be no more than 63 characters",
    ),
    (
        "prefix",
        "Bad_Prefix/a=b",
        'unable to parse requirement: <nil>: Invalid value: "Bad_Prefix/a": prefix '
        "part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
        "'.', and "
        "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ),
    ("trailing-comma", "a=b,", "found '', expected: identifier after ','"),
    ("unclosed-set", "a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("set-without-paren", "a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("bad-operator", "a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
    ("not-with-value", "!a=b", "found '=', expected: ',' or 'end of string'"),
    ("two-words", "a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("operator-first", "=x", "found '=', expected: !, identifier, or 'end of string'"),
    (
        "gt-not-integer",
        "n>x",
        "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
        "operators, the value must be an integer",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_LABEL_SELECTORS], ids=[c[0] for c in BAD_LABEL_SELECTORS]
)
def test_bad_label_selector_is_a_400_with_kubes_message(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_label_selector(text)
    assert info.value.code == 400 and info.value.message == message


MATCHES = [
    # (selector, labels, matches)
    ("empty-set-holds-the-empty-value", "a in ()", {"a": ""}, True),
    ("empty-set-not-other-values", "a in ()", {"a": "x"}, False),
    ("notin-empty-set", "a notin ()", {"a": "x"}, True),
    ("set-with-empty-member", "a in (x,,y)", {"a": ""}, True),
    ("keywords-are-values-in-sets", "a in (in,notin)", {"a": "notin"}, True),
    ("spaces-around-operators", " a = b , c ", {"a": "b", "c": "1"}, True),
    ("double-equals", "a==b", {"a": "b"}, True),
    ("exact-empty-value", "a=", {"a": ""}, True),
    ("not-exists", "!a", {}, True),
    ("gt", "n>5", {"n": "6"}, True),
    ("gt-equal", "n>5", {"n": "5"}, False),
    ("lt-negative", "n<0", {"n": "-3"}, True),
    ("gt-non-integer-label", "n>5", {"n": "six"}, False),
    ("gt-missing-label", "n>5", {}, False),
]


@pytest.mark.parametrize(
    ("text", "labels", "expected"), [c[1:] for c in MATCHES], ids=[c[0] for c in MATCHES]
)
def test_label_selector_matches_like_kube(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


BAD_FIELD_SELECTORS = [
    ("no-operator", "metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    (
        "second-term",
        "metadata.name=a,status.phase",
        "invalid selector: 'metadata.name=a,status.phase'; can't understand 'status.phase'",
    ),
    ("unescaped-equals", "metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    ("bad-escape", "metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("trailing-backslash", "metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ("unknown-field", "spec.bogus=1", "field label not supported: spec.bogus"),
    ("spaces-are-part-of-the-field", "metadata.name = a", "field label not supported: metadata.name "),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_FIELD_SELECTORS], ids=[c[0] for c in BAD_FIELD_SELECTORS]
)
def test_bad_field_selector_is_a_400_with_kubes_message(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_field_selector(text, "Pod")
    assert info.value.message == message


def test_field_selector_escapes_and_operators() -> None:
    sel = parse_field_selector("status.phase!=Running,metadata.name==a\\,b", "Pod")
    assert sel.terms == (("metadata.name", "=", "a,b"), ("status.phase", "!=", "Running"))
    pod = {"metadata": {"name": "a,b"}, "status": {"phase": "Pending"}}
    assert sel.matches(pod)
    assert not sel.matches({**pod, "status": {"phase": "Running"}})
