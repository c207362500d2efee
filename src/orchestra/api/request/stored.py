"""The API core's side of objects: their stored encoding and the metadata the server sets.

Owns: the wire encoding of stored objects (orjson: `encode`/`decode`/`exact_bytes`), uids and
generated name suffixes, `meta(obj)` for writing (creates metadata when absent; readers use
orchestra.objects.meta), `spec_part` (what a generation bump is computed from), resourceVersion
parsing (`parse_rv`, a BadRequest for a bad one) and `with_rv`.
The object vocabulary every layer shares (`Obj`, accessors, timestamps, `deep_copy`) lives in
orchestra.objects.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import orjson

from orchestra.api.errors import BadRequest
from orchestra.objects import Obj

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # kube's utilrand alphabet (no vowels, no 0/1/3)


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(n))


def meta(obj: Obj) -> Obj:
    """The object's metadata dict, created if absent."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def encode(obj: Obj) -> bytes:
    """The stored form of `obj`, exactly as long as its JSON.

    orjson hands back its working buffer as the bytes object without shrinking it (at least 4 KiB,
    whatever the length), so a stored value kept as is costs 4 KiB even for a 700-byte Event: at
    30,000 pods and their history that is most of the process. One copy (~0.4 us) trims it."""
    return exact_bytes(orjson.dumps(obj))


def exact_bytes(data: bytes) -> bytes:
    """A copy of `data` in an allocation of its own length: for orjson output that is kept."""
    return memoryview(data).tobytes()


def decode(data: bytes) -> Obj:
    obj = orjson.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("stored value is not an object")
    return obj


def spec_part(obj: Obj) -> Obj:
    """Everything except metadata and status: what a generation bump is computed from."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def with_rv(obj: Obj, kv: Any) -> Obj:
    """`obj` with metadata.resourceVersion set from a store KeyValue's mod_revision."""
    meta(obj)["resourceVersion"] = str(kv.mod_revision)
    return obj


def parse_rv(value: str | None, what: str = "resourceVersion") -> int | None:
    if value in (None, ""):
        return None
    try:
        rv = int(value)  # type: ignore[arg-type]
    except ValueError:
        raise BadRequest(f'invalid {what}: "{value}"') from None
    if rv < 0:
        raise BadRequest(f'invalid {what}: "{value}"')
    return rv
