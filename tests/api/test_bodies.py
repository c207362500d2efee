"""Request bodies decoded under limits (api/request/bodies.py, api/request/yamlbody.py,
apiserver/protobuf.py): JSON, YAML, protobuf."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from orchestra.api.request import bodies
from orchestra.api.request.bodies import (
    MAX_BYTES,
    MAX_DEPTH,
    STORED_DEPTH,
    DecodeError,
    decode_json,
    decode_yaml,
)
from orchestra.apiserver.protobuf import decode_protobuf

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protobuf"


def _nested(depth: int, opener: str = "[") -> bytes:
    closer = "]" if opener == "[" else "}"
    inner = "1" if opener == "[" else '"a":1'
    step = opener + ('"a":' if opener == "{" else "")
    return (step * (depth - 1) + opener + inner + closer * depth).encode()


def _laughs(levels: int, fanout: int = 10) -> bytes:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


# -- depth ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", "{"], ids=["arrays", "objects"])
def test_json_up_to_max_depth_decodes_and_one_more_is_refused_like_go(opener: str) -> None:
    assert bodies.depth_over(decode_json(_nested(MAX_DEPTH, opener)).value) is None
    for depth in (MAX_DEPTH + 1, 990, 5000):  # 990: RecursionError before; 5000: past orjson's own limit
        with pytest.raises(DecodeError) as info:
            decode_json(_nested(depth, opener))
        assert info.value.message == f"invalid character '{opener}' exceeded max depth of {MAX_DEPTH}"
        assert info.value.reason == "depth"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 5000])
def test_yaml_past_max_depth_is_refused_without_recursion_error(depth: int) -> None:
    with pytest.raises(DecodeError, match=f"yaml: line 1: exceeded max depth of {MAX_DEPTH}"):
        decode_yaml(b"x: " + b"[" * depth + b"]" * depth)
    assert decode_yaml(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH).value is not None


def test_aliases_can_make_yaml_deeper_than_its_text() -> None:
    half = MAX_DEPTH // 2 + 1
    text = f"a: &a {'[' * half}1{']' * half}\nb: {'[' * half}*a{']' * half}\n".encode()
    with pytest.raises(DecodeError, match="exceeded max depth"):
        decode_yaml(text)


# -- YAML aliases ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [4, 5, 6, 7, 9, 12], ids=lambda n: f"10^{n}")
def test_alias_bombs_are_refused_at_once_however_many_levels(levels: int) -> None:
    """go-yaml's rule: past 100 aliases and 1,000 decodes, 99% alias-driven decodes is too many.
    Each extra level multiplies the expansion by ten; the cost of refusing it does not grow."""
    start = time.monotonic()
    with pytest.raises(DecodeError) as info:
        decode_yaml(_laughs(levels))
    assert time.monotonic() - start < 1
    assert info.value.message == "yaml: line 3: document contains excessive aliasing"


def test_moderate_aliasing_is_fine() -> None:
    value = decode_yaml(_laughs(3)).value
    assert value["l2"] == [[["lol"] * 10] * 10] * 10
    value["l2"][0][0][0] = "changed"  # every alias use is a value of its own
    assert value["l2"][1][0][0] == "lol"


@pytest.mark.parametrize(
    "text", ["a: &a [*a]", "a: &a {b: *a}", "a: &a [1, {b: [*a]}]", "a: &a {<<: *a}"],
    ids=["list", "map", "nested", "merge"],
)
def test_an_anchor_that_contains_itself_is_refused(text: str) -> None:
    with pytest.raises(DecodeError, match="yaml: line 1: anchor 'a' value contains itself"):
        decode_yaml(text.encode())


def test_expansion_past_the_size_limit_is_too_large() -> None:
    text = b"x: &x " + b"y" * 200_000 + b"\nys: [" + b", ".join([b"*x"] * 20) + b"]\n"  # 200 kB -> 4 MB
    with pytest.raises(DecodeError) as info:
        decode_yaml(text)
    assert info.value.too_large and info.value.message == f"Request entity too large: limit is {MAX_BYTES}"


def test_yaml_values_follow_kube_s_conversion() -> None:
    doc = decode_yaml(b"t: 2001-12-14t21:59:43.10-05:00\nd: 2001-12-14\nb: !!binary aGk=\ni: 0x1f\nf: 1e3\n"
                      b"1: one\ntrue: yes\n~: z\nbase: &b {x: 1, y: 2}\nm: {<<: [*b, {x: 9, z: 3}], y: 0}\n"
                      b"s: !!set {a, b}\nbig: 99999999999999999999\nu64: 18446744073709551615\n")
    assert doc.value == {"t": "2001-12-14t21:59:43.10-05:00", "d": "2001-12-14", "b": "aGk=", "i": 31,
                         "f": 1000.0, "1": "one", "true": "yes", "null": "z", "base": {"x": 1, "y": 2},
                         "m": {"x": 1, "y": 0, "z": 3}, "s": {"a": None, "b": None}, "big": 1e20,
                         "u64": 2**64 - 1}  # an integer past 64 bits is a float, as when it comes as JSON
    assert bodies.stored_bytes(doc.value)
    assert doc.duplicates == ()


@pytest.mark.parametrize("text", [b"a: .nan", b"a: -.inf", b"? [a]\n: 1", b"a: !custom x", b"x: *nope",
                                  b"a: [1"])
def test_yaml_that_has_no_json_form_is_a_decode_error(text: bytes) -> None:
    with pytest.raises(DecodeError, match=r"^yaml: line 1: "):
        decode_yaml(text)


# -- duplicate fields -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duplicates"),
    [
        (b'{"a":1,"a":2,"b":1,"b":2}', ("a", "b")),
        (b'{"c":{"a":"1","a":"2"},"e":[{"f":1,"f":1}],"d":{"e":{"f":1,"f":1,"f":1}}}',
         ("c.a", "e[0].f", "d.e.f")),
        (b'{"a" : 1, "a"\n:\n2}', ("a",)),  # spaces before the colon
        (b'{"x\\u003ay":1,"x\\u003ay":2}', ("x:y",)),  # a colon written as an escape
        (b'{"a":"2024-01-01T00:00:00Z","b":"img:1","c":"{\\"k\\":1}"}', ()),  # colons in values only
        (b'{"a\\\\":1,"b":2}', ()),
    ],
    ids=["top", "nested-sigs-json-paths", "spaced", "escaped-colon", "colons-in-values", "backslash-key"],
)
def test_duplicate_fields_are_found_with_their_paths(text: bytes, duplicates: tuple[str, ...]) -> None:
    decoded = decode_json(text)
    assert decoded.duplicates == duplicates
    assert decoded.value == json.loads(text)  # the last value of a duplicate wins, as in Go
    assert decode_json(text, find_duplicates=False).duplicates == ()


json_text = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet=':"\\ab{}', max_size=4),
    lambda kids: st.lists(kids, max_size=3)
    | st.lists(st.tuples(st.sampled_from(["a", "b", ":", 'a"', "a\\"]), kids), max_size=4),
    max_leaves=10)


def _render(value: Any) -> str:
    """JSON text in which a list of pairs is an object that may repeat keys."""
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        return "{" + ",".join(f"{json.dumps(k)} : {_render(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render(v) for v in value) + "]"
    return json.dumps(value)


def _has_duplicates(value: Any) -> bool:
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        keys = [k for k, _ in value]
        return len(set(keys)) < len(keys) or any(_has_duplicates(v) for _, v in value)
    return isinstance(value, list) and any(_has_duplicates(v) for v in value)


@given(json_text)
def test_duplicate_detection_never_misses_one(value: Any) -> None:
    """The quick colon count must never hide a duplicate (it may only send clean bodies to the slow path)."""
    text = _render(value).encode()
    assert bool(decode_json(text).duplicates) == _has_duplicates(value)


# -- sizes, protobuf, threads ------------------------------------------------------------------------------


def test_json_that_grows_when_decoded_is_measured_after_decoding() -> None:
    text = b"[" + b",".join([b"1e9"] * (MAX_BYTES // 5)) + b"]"  # under 3 MiB as sent, ~8 MiB as stored
    assert len(text) < MAX_BYTES
    with pytest.raises(DecodeError) as info:
        decode_json(text)
    assert info.value.too_large and "the decoded object is" in info.value.message


def test_protobuf_bodies_keep_the_limits() -> None:
    body = (FIXTURES / "configmap.bin").read_bytes()
    assert decode_protobuf(body).value["kind"] == "ConfigMap"
    with pytest.raises(DecodeError):
        decode_protobuf(body[:-3])


async def test_big_bodies_are_decoded_in_a_worker_thread() -> None:
    seen: list[str] = []

    def decode(data: bytes) -> bodies.Decoded:
        seen.append(threading.current_thread().name)
        return decode_json(data)

    with trio.fail_after(10):
        await bodies.decode_off_loop(decode, b"[1]")
        await bodies.decode_off_loop(decode, b"[" + b"1," * bodies.OFF_LOOP_BYTES + b"1]")
    assert seen[0] == threading.current_thread().name and seen[1] != seen[0]


TOO_DEEP = f"the object is nested too deeply: exceeded max depth of {STORED_DEPTH}"


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"a": "x" * (MAX_BYTES + 1)},
         "Request entity too large: limit is 3145728 (the decoded object is 3145737 bytes)"),
        ({"a": json.loads(_nested(STORED_DEPTH))}, TOO_DEEP),
        ({"a": json.loads(_nested(300))}, TOO_DEEP),
        ({"a": json.loads(_nested(STORED_DEPTH - 1))}, None),
    ],
    ids=["too-big", "one-too-deep", "past-orjson", "deepest"],
)
def test_stored_objects_keep_the_limits(obj: dict[str, Any], error: str | None) -> None:
    if error is None:
        assert json.loads(bodies.stored_bytes(obj)) == obj
        return
    with pytest.raises(bodies.ObjectLimitError) as info:
        bodies.stored_bytes(obj)
    assert info.value.message == error
