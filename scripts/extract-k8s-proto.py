#!/usr/bin/env python3
"""Extract the Kubernetes protobuf wire schema from a kubectl binary into src/orchestra/data/k8s-proto.json.

Why: `kubectl create namespace|configmap|secret|deployment|...` (the generator subcommands) POST their
bodies as `application/vnd.kubernetes.protobuf`. orchestra stores JSON, so
orchestra.apiserver.protobuf.decode_k8s_protobuf() turns such a body back into the JSON dict; to do that it
needs, for every message, which field number is which JSON field and of which type. This script makes
that table once, at development time. It is interface data (like a JSON schema), not code; the runtime
decoder is pure Python and does not depend on the `protobuf` package.

Where the schema comes from: kubectl is a Go binary built with gogo protobuf. Every generated.pb.go it
links registers its file's descriptor, a gzipped `google.protobuf.FileDescriptorProto`, so the binary
holds one gzip stream per k8s.io/api/<group>/<version>/generated.proto and per
k8s.io/apimachinery/.../generated.proto. This script

1. scans the binary for the gzip magic `1f 8b 08`, inflates each candidate stream (most candidates are
   not gzip at all and are skipped), and parses the result as a FileDescriptorProto;
2. keeps the files whose package starts with `k8s.io.api.` or `k8s.io.apimachinery.`;
3. walks, from the kinds orchestra serves (orchestra.api.registry.BUILTIN and its subresource kinds:
   Scale, Binding, Eviction, PodExecOptions, ...) plus meta/v1 DeleteOptions, every message they
   reference, and writes only those (commit size matters);
4. writes the compact table.

These descriptors are the ones protoc saw when it generated the Go code, so they still carry the
gogoproto field options that the published generated.proto files no longer show. Two of them matter
for JSON and are kept in the table:

* `(gogoproto.nullable) = false` (option 65001): the Go field is a value, not a pointer. gogo writes
  such a scalar on the wire even when it is zero (`generateName: ""`, `generation: 0`), and Go treats
  a zero value field exactly as an absent one; a nullable (pointer) field is on the wire only when set,
  and then even a zero (`replicas: 0`, `suspend: false`) means something.
* inline (`json:",inline"`) embedded structs: Probe.handler -> httpGet/exec/... at the Probe level,
  Volume.volumeSource -> configMap/secret/..., ConfigMapKeySelector.localObjectReference -> name.
  gogo's `embed` option is not used by Kubernetes, so such a field is recognised as: not nullable,
  its `(gogoproto.customname)` (option 65004, the Go field name) equal to its message type's name
  (Go names an embedded field after its type), and its proto name not a property of the parent in
  the Kubernetes 1.32 OpenAPI definitions that the kubernetes-validate package ships (that last test
  tells `ObjectMeta ... json:"metadata"` and `PodAffinityTerm PodAffinityTerm json:"podAffinityTerm"`
  apart from a real inline). The script also checks every other field name against those
  definitions, so a proto name that is not the JSON name would be reported.

One more flag comes from those OpenAPI definitions: `required`, the field is in its definition's
`required` list, i.e. its Go JSON tag has no `omitempty` (and no `+optional` marker), so Go's JSON
writes it even at its zero value (a PodDisruptionBudget status's counts, a PriorityClass's `value: 0`);
the decoder keeps such zeros instead of dropping them.

Output format (src/orchestra/data/k8s-proto.json):

    {"<message full name>": {"<field number>": [json name, type, message type or null,
                                                 repeated, map, nullable, inline, required]}}

type is the protobuf scalar type name ("string", "int32", "int64", "bool", "bytes", "double",
"float", "uint32", "uint64", ...), or "message"/"enum". For a map field (a repeated *Entry message with
`map_entry`), map is 1, repeated is 0, and type/message type describe the map's *value*; keys are
always strings in Kubernetes (checked here). Booleans are written as 0/1 to keep the file small.

Usage:  .venv/bin/pip install protobuf   # dev-time only
        .venv/bin/python scripts/extract-k8s-proto.py [/path/to/kubectl] [-o OUT]
Default kubectl: /usr/lib/google-cloud-sdk/bin/kubectl.1.32 (the API version orchestra serves).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

from google.protobuf import descriptor_pb2  # dev-time only; not a runtime dependency

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
DEFAULT_OUT = ROOT / "src" / "orchestra" / "data" / "k8s-proto.json"

GZIP_MAGIC = b"\x1f\x8b\x08"
GOGO_NULLABLE = 65001
GOGO_CUSTOMNAME = 65004

FD = descriptor_pb2.FieldDescriptorProto
TYPE_NAMES = {
    FD.TYPE_DOUBLE: "double",
    FD.TYPE_FLOAT: "float",
    FD.TYPE_INT64: "int64",
    FD.TYPE_UINT64: "uint64",
    FD.TYPE_INT32: "int32",
    FD.TYPE_FIXED64: "fixed64",
    FD.TYPE_FIXED32: "fixed32",
    FD.TYPE_BOOL: "bool",
    FD.TYPE_STRING: "string",
    FD.TYPE_GROUP: "group",
    FD.TYPE_MESSAGE: "message",
    FD.TYPE_BYTES: "bytes",
    FD.TYPE_UINT32: "uint32",
    FD.TYPE_ENUM: "enum",
    FD.TYPE_SFIXED32: "sfixed32",
    FD.TYPE_SFIXED64: "sfixed64",
    FD.TYPE_SINT32: "sint32",
    FD.TYPE_SINT64: "sint64",
}

# Kinds orchestra accepts in a request body beyond the registry's own resource kinds.
EXTRA_ROOTS = ("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def gogo_options(options: descriptor_pb2.FieldOptions) -> dict[int, int | bytes]:
    """The gogoproto extensions (unknown to descriptor_pb2) of a field's options: varints and bytes."""
    raw = options.SerializeToString()
    out: dict[int, int | bytes] = {}
    i = 0
    while i < len(raw):
        key, i = _varint(raw, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], i = _varint(raw, i)
        elif wt == 2:
            n, i = _varint(raw, i)
            out[num] = raw[i : i + n]
            i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError(f"unexpected wire type {wt} in field options")
    return out


def scan_descriptors(binary: bytes) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every k8s.io FileDescriptorProto embedded (gzipped) in the binary, first copy of each file."""
    found: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    i = binary.find(GZIP_MAGIC)
    while i >= 0:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[i : i + (4 << 20)])
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:  # not a gzip stream, or not a descriptor
            fd = None
        if fd is not None and fd.package.startswith(("k8s.io.api.", "k8s.io.apimachinery.")):
            found.setdefault(fd.name, fd)
        i = binary.find(GZIP_MAGIC, i + 1)
    return list(found.values())


def index_messages(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> dict[str, descriptor_pb2.DescriptorProto]:
    """Full name (no leading dot) -> DescriptorProto, nested types included."""
    out: dict[str, descriptor_pb2.DescriptorProto] = {}

    def add(prefix: str, msg: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{msg.name}"
        out[name] = msg
        for nested in msg.nested_type:
            add(name, nested)

    for fd in files:
        for msg in fd.message_type:
            add(fd.package, msg)
    return out


def roots() -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from orchestra.api.registry import BUILTIN

    def pkg(group: str, version: str) -> str:
        return f"k8s.io.api.{group.split('.')[0] if group else 'core'}.{version}"

    names: list[str] = list(EXTRA_ROOTS)
    for t in BUILTIN:
        if not t.definition.startswith("io.k8s.api."):  # kube-aggregator's APIService: not in kubectl
            continue
        names.append(f"{pkg(t.group, t.version)}.{t.kind}")
        for sub in t.subresources:
            if sub.kind == t.kind:  # status, log: the resource's own kind
                continue
            names.append(f"{pkg(sub.group or t.group, sub.version)}.{sub.kind}")
    return list(dict.fromkeys(names))


def openapi_definitions() -> dict[str, dict]:
    """The Kubernetes 1.32 OpenAPI definitions shipped by kubernetes-validate (a runtime dependency)."""
    import importlib.resources

    root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    doc = json.loads((root / "v1.32.0-local" / "_definitions.json").read_text())
    return doc.get("$defs") or doc["definitions"]


def openapi_properties(definitions: dict[str, dict], message: str) -> set[str] | None:
    d = definitions.get("io.k8s." + message.removeprefix("k8s.io."))
    return None if d is None or "properties" not in d else set(d["properties"])


def openapi_required(definitions: dict[str, dict], message: str) -> set[str]:
    d = definitions.get("io.k8s." + message.removeprefix("k8s.io.")) or {}
    return set(d.get("required") or ())


def build_table(messages: dict[str, descriptor_pb2.DescriptorProto], start: list[str]) -> dict:
    definitions = openapi_definitions()
    table: dict[str, dict[str, list]] = {}
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in table:
            continue
        if name not in messages:
            raise SystemExit(f"message {name} not found in the binary's descriptors")
        msg = messages[name]
        props = openapi_properties(definitions, name)
        required = openapi_required(definitions, name)
        fields: dict[str, list] = {}
        for f in msg.field:
            ftype, tname = f.type, f.type_name.lstrip(".") or None
            repeated = f.label == FD.LABEL_REPEATED
            is_map = False
            if ftype == FD.TYPE_MESSAGE and repeated and messages[tname].options.map_entry:
                entry = {ef.number: ef for ef in messages[tname].field}
                if entry[1].type != FD.TYPE_STRING:
                    raise SystemExit(f"{name}.{f.name}: non-string map key")
                value = entry[2]
                ftype, tname = value.type, value.type_name.lstrip(".") or None
                repeated, is_map = False, True
            if ftype == FD.TYPE_GROUP:
                raise SystemExit(f"{name}.{f.name}: groups are not supported")
            opts = gogo_options(f.options)
            nullable = opts.get(GOGO_NULLABLE, 1) != 0
            go_name = opts.get(GOGO_CUSTOMNAME, b"")
            embed = (
                ftype == FD.TYPE_MESSAGE
                and not nullable
                and not repeated
                and isinstance(go_name, bytes)
                and go_name.decode() == (tname or "").rsplit(".", 1)[-1]
                and props is not None
                and f.name not in props
            )
            json_name = f.name
            if props is not None and not embed and f.name not in props:
                # a few protos spell the field unlike its JSON tag (networking/v1's `aPIGroup` for
                # `apiGroup`): the JSON property with the same letters is the name
                same = [p for p in props if p.lower() == f.name.lower()]
                if len(same) == 1:
                    json_name = same[0]
                else:
                    print(f"warning: {name}.{f.name} is not a JSON property", file=sys.stderr)
            if ftype != FD.TYPE_MESSAGE:
                tname = None
            fields[str(f.number)] = [
                json_name,
                TYPE_NAMES[ftype],
                tname,
                int(repeated),
                int(is_map),
                int(nullable),
                int(embed),
                int(json_name in required),
            ]
            if tname:
                todo.append(tname)
        table[name] = fields
    return dict(sorted(table.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kubectl", nargs="?", default=DEFAULT_KUBECTL)
    ap.add_argument("-o", "--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()

    files = scan_descriptors(Path(args.kubectl).read_bytes())
    if not files:
        raise SystemExit(f"no k8s.io descriptors found in {args.kubectl}")
    messages = index_messages(files)
    table = build_table(messages, roots())
    text = json.dumps(table, separators=(",", ":"), sort_keys=False)
    # one message per line: compact, yet diffs stay readable
    text = (
        "{\n"
        + ",\n".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")) for k, v in table.items())
        + "\n}\n"
    )
    Path(args.out).write_text(text)
    print(
        f"{len(files)} descriptor files, {len(table)} messages, {len(text)} bytes -> {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
