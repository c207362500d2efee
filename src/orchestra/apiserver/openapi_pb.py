"""The OpenAPI v2 document in protobuf: gnostic's `openapi.v2.Document` message (google/gnostic
openapiv2/OpenAPIv2.proto), the form kubectl asks `/openapi/v2` for
(`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and the only one it reads.

Owns: `encode_document(doc)`, the JSON (swagger 2.0) document as the protobuf wire bytes gnostic's
compiler would make of it: fields by the .proto's numbers, maps as ordered (name, value) pairs,
`x-` keys as vendor extensions whose values are `Any{yaml}` text (JSON is YAML; kubectl reads them with
a YAML decoder). It encodes what orchestra's document holds (openapi.py builds it) and raises
ValueError for anything else, so a new kind of field is noticed in tests rather than dropped.
Must not import: third-party protobuf libraries (the message is small enough to write by hand; no
maintained Python package ships gnostic's generated classes).
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

_VARINT, _FIXED64, _BYTES = 0, 1, 2


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


class _Message:
    """A message being written: fields appended in the order given (protobuf readers accept any)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def raw(self, number: int, data: bytes) -> None:
        self.parts.append(_varint(number << 3 | _BYTES) + _varint(len(data)) + data)

    def string(self, number: int, value: str) -> None:
        if value:
            self.raw(number, value.encode())

    def strings(self, number: int, values: list[str]) -> None:
        for value in values:
            self.raw(number, value.encode())

    def boolean(self, number: int, value: bool) -> None:
        if value:
            self.parts.append(_varint(number << 3 | _VARINT) + b"\x01")

    def double(self, number: int, value: float) -> None:
        if value:
            self.parts.append(_varint(number << 3 | _FIXED64) + struct.pack("<d", value))

    def message(self, number: int, sub: _Message) -> None:
        self.raw(number, sub.bytes())

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _any(value: Any) -> _Message:
    """gnostic's Any: field 2 holds the value as YAML text (here JSON, which YAML reads)."""
    m = _Message()
    m.string(2, orjson.dumps(value).decode() + "\n")
    return m


def _named(name: str, value: _Message) -> _Message:
    m = _Message()
    m.string(1, name)
    m.message(2, value)
    return m


def _extensions(m: _Message, number: int, obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        if key.startswith("x-"):
            m.message(number, _named(key, _any(value)))


# --- Schema ---------------------------------------------------------------------------------------

_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_INTS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17,
                "minProperties": 18}


def schema(obj: dict[str, Any]) -> _Message:
    m = _Message()
    for key, value in obj.items():
        if key.startswith("x-"):
            continue
        if key in _SCHEMA_STRINGS:
            m.string(_SCHEMA_STRINGS[key], value)
        elif key in _SCHEMA_BOOLS:
            m.boolean(_SCHEMA_BOOLS[key], value)
        elif key in _SCHEMA_DOUBLES:
            m.double(_SCHEMA_DOUBLES[key], float(value))
        elif key in _SCHEMA_INTS:
            m.parts.append(_varint(_SCHEMA_INTS[key] << 3 | _VARINT) + _varint(int(value)))
        elif key == "default":
            m.message(5, _any(value))
        elif key == "required":
            m.strings(19, list(value))
        elif key == "enum":
            for item in value:
                m.message(20, _any(item))
        elif key == "additionalProperties":
            m.message(21, _additional(value))
        elif key == "type":
            m.message(22, _strings_message([value] if isinstance(value, str) else list(value)))
        elif key == "items":
            items = _Message()
            for sub in value if isinstance(value, list) else [value]:
                items.message(1, schema(sub))
            m.message(23, items)
        elif key == "allOf":
            for sub in value:
                m.message(24, schema(sub))
        elif key == "properties":
            props = _Message()
            for name, sub in value.items():
                props.message(1, _named(name, schema(sub)))
            m.message(25, props)
        elif key == "example":
            m.message(30, _any(value))
        else:
            raise ValueError(f"no protobuf encoding for the schema field {key!r}")
    _extensions(m, 31, obj)
    return m


def _additional(value: Any) -> _Message:
    m = _Message()
    if isinstance(value, bool):
        m.parts.append(_varint(2 << 3 | _VARINT) + (b"\x01" if value else b"\x00"))
    else:
        m.message(1, schema(value))
    return m


def _strings_message(values: list[str]) -> _Message:
    m = _Message()
    m.strings(1, values)
    return m


# --- paths ----------------------------------------------------------------------------------------

_OPERATIONS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}
_NON_BODY = {"header": 1, "formData": 2, "query": 3, "path": 4}


def _parameter(param: dict[str, Any]) -> _Message:
    """ParametersItem{parameter: Parameter{body_parameter | non_body_parameter{<in>_sub_schema}}}."""
    p = _Message()
    if param["in"] == "body":
        body = _Message()
        body.string(1, param.get("description", ""))
        body.string(2, param["name"])
        body.string(3, "body")
        body.boolean(4, param.get("required", False))
        body.message(5, schema(param.get("schema") or {}))
        _extensions(body, 6, param)
        p.message(1, body)
    else:
        # Query (and path) sub-schemas share these numbers up to `type`; path's is one lower after it.
        sub = _Message()
        sub.boolean(1, param.get("required", False))
        sub.string(2, param["in"])
        sub.string(3, param.get("description", ""))
        sub.string(4, param["name"])
        shift = 0 if param["in"] in ("query", "formData") else -1
        sub.string(6 + shift, param.get("type", ""))
        sub.boolean(20 + shift, param.get("uniqueItems", False))
        non_body = _Message()
        non_body.message(_NON_BODY[param["in"]], sub)
        p.message(2, non_body)
    item = _Message()
    item.message(1, p)
    return item


def _operation(op: dict[str, Any]) -> _Message:
    m = _Message()
    m.strings(1, op.get("tags", []))
    m.string(3, op.get("description", ""))
    m.string(5, op.get("operationId", ""))
    m.strings(6, op.get("produces", []))
    m.strings(7, op.get("consumes", []))
    for param in op.get("parameters", []):
        m.message(8, _parameter(param))
    responses = _Message()
    for code, resp in (op.get("responses") or {}).items():
        response = _Message()
        response.string(1, resp.get("description", ""))
        if "schema" in resp:
            item = _Message()
            item.message(1, schema(resp["schema"]))
            response.message(2, item)
        value = _Message()
        value.message(1, response)
        responses.message(1, _named(code, value))
    m.message(9, responses)
    m.strings(10, op.get("schemes", []))
    _extensions(m, 13, op)
    return m


def _path_item(item: dict[str, Any]) -> _Message:
    m = _Message()
    for verb, number in _OPERATIONS.items():
        if verb in item:
            m.message(number, _operation(item[verb]))
    for param in item.get("parameters", []):
        m.message(9, _parameter(param))
    _extensions(m, 10, item)
    return m


def encode_document(doc: dict[str, Any]) -> bytes:
    """A swagger 2.0 document (swagger, info, paths, definitions) as gnostic's Document message."""
    m = _Message()
    m.string(1, doc["swagger"])
    info = _Message()
    info.string(1, doc["info"].get("title", ""))
    info.string(2, doc["info"].get("version", ""))
    m.message(2, info)
    paths = _Message()
    for path, item in doc.get("paths", {}).items():
        paths.message(2, _named(path, _path_item(item)))
    m.message(8, paths)
    definitions = _Message()
    for name, sub in doc.get("definitions", {}).items():
        definitions.message(1, _named(name, schema(sub)))
    m.message(9, definitions)
    _extensions(m, 16, doc)
    return m.bytes()
