"""Loading manifests: files, directories and stdin; multi-document YAML with a line per document.

Owns: `Document` (one object plus where it came from), reading YAML/JSON with ruamel.yaml, and the
client-side checks `apply`/`delete -f` run before talking to the server (syntax, apiVersion, kind,
name), each error naming file, document index and line. YAML is read with the server's limits
(api/request/yamlbody.py: no alias bomb, recursive anchor or nesting past MAX_DEPTH), JSON within MAX_DEPTH.
Must not import: the HTTP client or anything of the server side.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from orchestra.api.registry import DEFAULT_REGISTRY, Registry, ResourceType
from orchestra.api.request.bodies import MAX_DEPTH, depth_over
from orchestra.api.request.yamlbody import BoundedComposer, bound_flow_depth
from orchestra.cli.errors import CliError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@attrs.frozen
class Document:
    """One object from a manifest: `source` is the file name as given, `index` counts from 1."""

    source: str
    index: int
    line: int
    body: Any

    @property
    def where(self) -> str:
        return f"{self.source}: document {self.index} (line {self.line})"

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "")) if isinstance(self.body, dict) else ""

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""


@attrs.frozen
class CheckedDocument:
    """A document that passed the client-side checks, with its resource type resolved."""

    doc: Document
    rt: ResourceType

    @property
    def body(self) -> dict[str, Any]:
        return self.doc.body  # type: ignore[no-any-return]


class ManifestError(CliError):
    """One or more problems in the manifests; `errors` are full lines (without `error: `)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))

    def format_message(self) -> str:
        return "\n".join(f"error: {e}" for e in self.errors)


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files as given; a directory becomes its .yaml/.yml/.json files, sorted; `-` is stdin."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if p == "-":
            out.append(p)
        elif path.is_dir():
            found = sorted(str(f) for f in path.iterdir() if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
            if not found:
                raise CliError(f"{p}: no .yaml, .yml or .json files in this directory")
            out.extend(found)
        elif path.exists():
            out.append(p)
        else:
            raise CliError(f'the path "{p}" does not exist')
    return out


def load_paths(paths: Iterable[str]) -> list[Document]:
    """Read every file (all of them, so every syntax error is reported), then raise if any failed."""
    docs: list[Document] = []
    errors: list[str] = []
    for name in expand_paths(paths):
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{name}: cannot read: {exc}")
            continue
        try:
            docs.extend(load_text(text, "STDIN" if name == "-" else name))
        except ManifestError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ManifestError(errors)
    return docs


def load_text(text: str, source: str) -> list[Document]:
    """Parse one file's text; JSON files (by name) with the JSON parser, everything else as YAML."""
    if source.endswith(".json"):
        return _load_json(text, source)
    return list(_load_yaml(text, source))


def _load_json(text: str, source: str) -> list[Document]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError([f"{source}: document 1 (line {exc.lineno}): invalid JSON: {exc.msg}"]) from None
    except RecursionError:  # json's C parser recurses per level: this is far past MAX_DEPTH anyway
        body = None
        deep = True
    else:
        deep = depth_over(body) is not None
    if deep:
        line = _deep_line(text)
        raise ManifestError([f"{source}: document 1 (line {line}): invalid JSON: exceeded max depth of "
                             f"{MAX_DEPTH}"])
    return list(_expand_lists(Document(source, 1, 1, body)))


def _deep_line(text: str) -> int:
    """The line where JSON `text` first opens a container past MAX_DEPTH (1 if it never does)."""
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return text.count("\n", 0, m.start()) + 1
        elif token in "]}":
            depth -= 1
    return 1


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _load_yaml(text: str, source: str) -> Iterator[Document]:
    yaml = YAML(typ="rt")
    yaml.Composer = BoundedComposer  # the server's limits, before anything is built from a document
    bound_flow_depth(yaml, BoundedComposer.max_depth)
    index = 0  # counts non-empty documents, the way a reader of the file counts them
    try:
        for node in yaml.load_all(text):
            if node is None:
                continue  # an empty document (e.g. a trailing `---`), skipped like kubectl does
            index += 1
            line = node.lc.line + 1 if hasattr(node, "lc") and node.lc.line is not None else 1
            yield from _expand_lists(Document(source, index, line, to_plain(node)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        doc_index = _document_at_line(text, line) if line else index + 1
        problem = exc.problem or exc.context or "malformed YAML"
        raise ManifestError(
            [f"{source}: document {doc_index} (line {line}): invalid YAML: {problem}"]
        ) from None
    except YAMLError as exc:
        raise ManifestError([f"{source}: document {index + 1}: invalid YAML: {exc}"]) from None


def _document_at_line(text: str, line: int) -> int:
    """Which document a 1-based line falls in, counting `---` separators before it."""
    index = 1
    seen_content = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if lineno >= line:
            break
        if raw.startswith("---"):
            if seen_content:
                index += 1
            seen_content = False
        elif raw.strip() and not raw.lstrip().startswith("#"):
            seen_content = True
    return index


def _expand_lists(doc: Document) -> Iterator[Document]:
    """A `kind: List` document stands for its items (kubectl accepts these too)."""
    body = doc.body
    if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
        for item in body["items"]:
            yield attrs.evolve(doc, body=item)
    else:
        yield doc


def to_plain(node: Any) -> Any:
    """ruamel's round-trip nodes -> plain JSON-compatible Python values."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime.datetime | datetime.date):
        return node.isoformat()
    return str(node)


def check_documents(docs: Iterable[Document], registry: Registry = DEFAULT_REGISTRY) -> list[CheckedDocument]:
    """Client-side checks before any request; raises one ManifestError listing every problem."""
    checked: list[CheckedDocument] = []
    errors: list[str] = []
    for doc in docs:
        problem = _problem(doc, registry)
        if isinstance(problem, str):
            errors.append(f"{doc.where}: {problem}")
        else:
            checked.append(CheckedDocument(doc, problem))
    if errors:
        raise ManifestError(errors)
    return checked


def _problem(doc: Document, registry: Registry) -> str | ResourceType:
    body = doc.body
    if not isinstance(body, dict):
        return f"expected an object (a YAML mapping), got {_type_name(body)}"
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if not api_version:
        return "missing apiVersion" if kind else "missing apiVersion and kind"
    if not isinstance(api_version, str):
        return f"apiVersion must be a string, got {_type_name(api_version)}"
    if not kind:
        return "missing kind"
    if not isinstance(kind, str):
        return f"kind must be a string, got {_type_name(kind)}"
    rt = registry.by_api_version_kind(api_version, kind)
    if rt is None:
        known = registry.by_kind(kind)
        if known is not None:
            return (
                f'unknown kind "{kind}" for apiVersion "{api_version}" '
                f'(did you mean apiVersion "{known.api_version}"?)'
            )
        return f'unknown kind "{kind}" for apiVersion "{api_version}"'
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return f"metadata must be an object, got {_type_name(meta)}"
    if not doc.name:
        return f"{kind}: missing metadata.name"
    return rt


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )
