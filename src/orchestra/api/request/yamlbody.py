"""YAML documents read under limits: no alias bomb, recursive anchor or deep nesting gets through.

Owns: `BoundedComposer` (a ruamel.yaml composer that checks each composed document before anything
is built from it) and `load_yaml_value` (one document to plain JSON values, for request bodies).
The CLI's manifest loader uses the same composer with ruamel's round-trip constructor.
Must not import: anything above the api layer.

Why a check on the node graph: ruamel composes an alias as the very node its anchor names, so
composing costs no more than the text; the cost of aliases comes when a value is built or copied
for every use. The check walks the graph once, in document order, and keeps for every node how
many decode steps, JSON bytes and levels its full expansion has (memoized, so an alias costs O(1)):
* go-yaml's rule (the YAML decoder kube-apiserver uses): past 100 alias decodes and 1,000 decodes,
  a document whose alias-driven share of the decodes exceeds 99% (scaling down to 10% between
  400,000 and 4,000,000 decodes) is refused: "document contains excessive aliasing";
* an anchor reached again while its own value is being composed: "anchor 'a' value contains itself";
* the expanded document deeper than `max_depth` levels, or larger than `max_bytes` as JSON.
"""

from __future__ import annotations

from typing import Any

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scanner import Scanner

__all__ = ["BoundedComposer", "YamlLimitError", "YamlValue", "bound_flow_depth", "load_yaml_value",
           "yaml_problem"]

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
# kept as written, as go-yaml does
_AS_TEXT = {_STR, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_ALIAS_LOW, _ALIAS_HIGH = 400_000, 4_000_000


class YamlLimitError(MarkedYAMLError):
    """A document over one of the limits; `too_large` when it is its expanded size."""

    def __init__(self, problem: str, node: Node | None, *, too_large: bool = False) -> None:
        super().__init__(problem=problem, problem_mark=node.start_mark if node is not None else None)
        self.too_large = too_large


def yaml_problem(exc: YAMLError) -> str:
    """A one-line description in go-yaml's style: `line 3: found undefined alias 'x'`."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "malformed YAML").split())
        return f"line {mark.line + 1}: {problem}" if mark is not None else problem
    return " ".join(str(exc).split()) or type(exc).__name__


def _excessive_aliasing(decodes: int, aliases: int) -> bool:
    """go-yaml's allowedAliasRatio check (decode.go)."""
    if aliases <= 100 or decodes <= 1000:
        return False
    if decodes <= _ALIAS_LOW:
        allowed = 0.99
    elif decodes >= _ALIAS_HIGH:
        allowed = 0.10
    else:
        allowed = 0.99 - 0.89 * (decodes - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)
    return aliases / decodes > allowed


class _Open:
    """A node being walked: its children still to visit and the totals of those visited."""

    __slots__ = ("children", "decodes", "depth", "node", "size")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.decodes = 1
        self.depth = 0
        self.size = 2 if not isinstance(node, ScalarNode) else len(str(node.value)) + 2
        if isinstance(node, SequenceNode):
            self.children = iter(node.value)
            self.size += max(0, len(node.value) - 1)  # commas
        elif isinstance(node, MappingNode):
            self.children = iter([n for pair in node.value for n in pair])
            self.size += max(0, 2 * len(node.value) - 1)  # colons and commas
        else:
            self.children = iter(())


def check_graph(root: Node, *, max_depth: int, max_bytes: int) -> None:
    """Raise YamlLimitError if the document at `root` breaks a limit once its aliases are expanded."""
    done: dict[int, tuple[int, int, int]] = {}  # id(node) -> decodes, JSON bytes, depth when expanded
    opened: set[int] = set()
    decodes = aliases = 0
    stack = [_Open(root)]
    opened.add(id(root))
    while stack:
        top = stack[-1]
        child = next(top.children, None)
        if child is None:
            stack.pop()
            own_depth = top.depth + (0 if isinstance(top.node, ScalarNode) else 1)
            if own_depth > max_depth:
                raise YamlLimitError(f"exceeded max depth of {max_depth}", top.node)
            done[id(top.node)] = (top.decodes, top.size, own_depth)
            opened.discard(id(top.node))
            if stack:
                _add(stack[-1], top.decodes, top.size, own_depth, max_bytes)
            continue
        key = id(child)
        if key in done:  # an alias: go-yaml decodes the alias node, then its anchor's whole value
            count, size, depth = done[key]
            decodes += 1 + count
            aliases += count
            _add(top, 1 + count, size, depth, max_bytes)
        elif key in opened:
            raise YamlLimitError(f"anchor '{child.anchor}' value contains itself", child)
        else:
            decodes += 1
            opened.add(key)
            stack.append(_Open(child))
        if _excessive_aliasing(decodes, aliases):
            raise YamlLimitError("document contains excessive aliasing", child)


def _add(parent: _Open, decodes: int, size: int, depth: int, max_bytes: int) -> None:
    parent.decodes += decodes
    parent.size += size
    parent.depth = max(parent.depth, depth)
    if parent.size > max_bytes:
        raise YamlLimitError(f"the document expands to more than {max_bytes} bytes", parent.node,
                             too_large=True)


class BoundedComposer(Composer):  # type: ignore[misc]
    """Composes documents as ruamel does, refusing any that `check_graph` refuses.

    `max_depth` and `max_bytes` are class attributes so a subclass can set other limits."""

    max_depth = 200
    max_bytes = 3 * 1024 * 1024

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # go-yaml lets a later anchor of the same name win, silently
        self._nesting = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # ruamel composes recursively; stop before Python's recursion limit would (a scalar sits
        # one level below its innermost collection)
        self._nesting += 1
        try:
            if self._nesting > self.max_depth + 1:
                raise _depth_error(self.max_depth, self.parser.peek_event())
            return super().compose_node(parent, index)
        finally:
            self._nesting -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            check_graph(node, max_depth=self.max_depth, max_bytes=self.max_bytes)
        return node


def bound_flow_depth(yaml: YAML, max_depth: int) -> None:
    """Make `yaml` refuse flow collections (`[`, `{`) nested deeper than the composer allows while
    scanning: ruamel's scanner keeps a possible simple key per open flow collection and re-checks
    them all on every token, so 5,000 nested `[` took seconds (quadratic) before the composer ever
    counted a level."""
    base = yaml.Scanner or Scanner  # None means ruamel's pure scanner (typ="safe", pure=True)

    class FlowBounded(base):  # type: ignore[misc,valid-type]
        def fetch_flow_collection_start(self, token_class: Any, to_push: Any) -> None:
            if self.flow_level > max_depth:
                err = YamlLimitError(f"exceeded max depth of {max_depth}", None)
                err.problem_mark = self.reader.get_mark()
                raise err
            super().fetch_flow_collection_start(token_class, to_push)

    yaml.Scanner = FlowBounded


def _depth_error(max_depth: int, event: Any) -> YamlLimitError:
    err = YamlLimitError(f"exceeded max depth of {max_depth}", None)
    err.problem_mark = getattr(event, "start_mark", None)
    return err


class YamlValue:
    """One decoded YAML document: the JSON value and the mapping keys it gave more than once."""

    __slots__ = ("duplicates", "value")

    def __init__(self, value: Any, duplicates: list[str]) -> None:
        self.value = value
        self.duplicates = duplicates


def load_yaml_value(text: str, *, max_depth: int, max_bytes: int) -> YamlValue:
    """The single document in `text` as JSON values (YAMLError on bad YAML or a broken limit).

    Values follow kube-apiserver's YAML-to-JSON conversion: timestamps stay the text written,
    mapping keys become strings, a key given twice keeps its last value (and is reported in
    `duplicates` as `a.b` paths), `<<` merges mappings."""
    yaml = YAML(typ="safe", pure=True)

    class Limited(BoundedComposer):
        pass

    Limited.max_depth, Limited.max_bytes = max_depth, max_bytes
    yaml.Composer = Limited
    bound_flow_depth(yaml, max_depth)
    node = yaml.compose(text)
    builder = _Builder(yaml)
    value = builder.value(node, "") if node is not None else None
    return YamlValue(value, builder.duplicates)


class _Builder:
    """Plain values from a checked node graph (aliases expanded into copies: the check bounded them)."""

    def __init__(self, yaml: YAML) -> None:
        self.constructor = yaml.constructor
        self.duplicates: list[str] = []
        self._reported: set[str] = set()

    def value(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return [self.value(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        out: dict[str, Any] = {}
        own: set[str] = set()
        assert isinstance(node, MappingNode)
        for key_node, value_node, merged in self.pairs(node):
            key = self.key(key_node)
            here = f"{path}.{key}" if path else key
            if not merged:
                if key in own and here not in self._reported:
                    self._reported.add(here)
                    self.duplicates.append(here)
                own.add(key)
            out[key] = self.value(value_node, here)
        return out

    def pairs(self, node: MappingNode) -> list[tuple[Node, Node, bool]]:
        """Key/value nodes with `<<` merges expanded first (so the mapping's own keys win)."""
        merged: list[tuple[Node, Node, bool]] = []
        own: list[tuple[Node, Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in reversed(sources):  # the first mapping listed wins, so it goes last
                if not isinstance(source, MappingNode):
                    raise YamlLimitError("map merge requires map or sequence of maps as the value", source)
                merged.extend((k, v, True) for k, v, _ in self.pairs(source))
        return merged + own

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag in _AS_TEXT:
            return node.value
        if tag == _NULL:
            return None
        if tag == _FLOAT and ":" not in node.value:
            # float() reads every YAML float but the 1.1 sexagesimal ones; ruamel would also warn
            # (a Python warning) about a YAML 1.1 float like 1e3
            value = float(node.value.replace("_", "").lower().replace(".inf", "inf").replace(".nan", "nan"))
        else:
            value = self.constructor.construct_object(node)
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise YamlLimitError(f"json: unsupported value: {node.value}", node)
        if isinstance(value, bytes | set | tuple):  # not a JSON value
            raise YamlLimitError(f"json: unsupported type for {tag}", node)
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            return float(value)  # as a JSON number this long decodes (kube: past int64; orjson: past uint64)
        return value

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise YamlLimitError("invalid map key: a mapping key must be a scalar", node)
        value = self.scalar(node)
        if isinstance(value, str):
            return value
        return orjson.dumps(value).decode()  # true, null, 1.5: the JSON text, as kube writes it
