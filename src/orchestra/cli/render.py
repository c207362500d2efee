"""Output formats of `get`: server-side Tables as kubectl prints them, YAML, JSON and names.

Owns: the tabwriter-like column layout (kubectl: minimum width 6, padding 3), cell formatting,
human ages (`5m`, `3d4h`), and YAML/JSON serialization of objects.
Must not import: the HTTP client; everything here is pure functions of dicts.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Sequence
from typing import Any

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.emitter import Emitter
from ruamel.yaml.representer import SafeRepresenter

from orchestra.api.registry import ResourceType
from orchestra.objects import human_duration, parse_time

MIN_WIDTH = 6  # kubectl's tabwriter: minwidth 6, padding 3, pad char ' '
PADDING = 3


def kind_prefix(rt: ResourceType) -> str:
    """`deployment.apps` / `pod`: how kubectl names a type in `TYPE/NAME` and in messages."""
    return f"{rt.kind.lower()}.{rt.group}" if rt.group else rt.kind.lower()


def format_cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


class TableLayout:
    """Lays out rows in columns; widths only grow, so watch rows stay aligned with the header."""

    def __init__(self) -> None:
        self.widths: list[int] = []

    def lines(self, rows: Sequence[Sequence[str]]) -> list[str]:
        for row in rows:
            for i, cell in enumerate(row[:-1]):
                want = max(len(cell) + PADDING, MIN_WIDTH)
                if i >= len(self.widths):
                    self.widths.append(want)
                elif want > self.widths[i]:
                    self.widths[i] = want
        out = []
        for row in rows:
            cells = [cell.ljust(self.widths[i]) for i, cell in enumerate(row[:-1])]
            out.append("".join(cells) + (row[-1] if row else ""))
        return out

    def lines_for_row(self, row: Sequence[str]) -> str:
        """One row aligned to the widths seen so far, widening only this line where needed."""
        cells = [cell.ljust(max(self.widths[i] if i < len(self.widths) else MIN_WIDTH,
                                len(cell) + PADDING)) for i, cell in enumerate(row[:-1])]
        return "".join(cells) + (row[-1] if row else "")


def table_rows(
    table: dict[str, Any],
    *,
    wide: bool = False,
    with_namespace: bool = False,
    name_prefix: str = "",
    headers: bool = True,
) -> list[list[str]]:
    """A meta.k8s.io/v1 Table -> header row (upper case) + one list of cell strings per row."""
    columns = table.get("columnDefinitions") or []
    shown = [i for i, c in enumerate(columns) if wide or not c.get("priority")]
    out: list[list[str]] = []
    if headers:
        head = [str(columns[i].get("name", "")).upper() for i in shown]
        out.append((["NAMESPACE"] if with_namespace else []) + head)
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        text = [format_cell(cells[i]) if i < len(cells) else "" for i in shown]
        if name_prefix and shown and _is_name_column(columns[shown[0]]):
            text[0] = f"{name_prefix}/{text[0]}"
        if with_namespace:
            meta = (row.get("object") or {}).get("metadata") or {}
            text.insert(0, str(meta.get("namespace", "")))
        out.append(text)
    return out


def _is_name_column(column: dict[str, Any]) -> bool:
    return column.get("format") == "name" or str(column.get("name", "")).lower() == "name"


def render_table(table: dict[str, Any], **kwargs: Any) -> str:
    """The whole table as text (no trailing newline), like `kubectl get`."""
    return "\n".join(TableLayout().lines(table_rows(table, **kwargs)))


# -- ages -----------------------------------------------------------------------------------------


def age(timestamp: Any, now: datetime.datetime | None = None) -> str:
    when = parse_time(timestamp)
    if when is None:
        return "<unknown>"
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration(max(0.0, (now - when).total_seconds()))  # a future time shows as 0s, not <invalid>


# -- YAML / JSON ----------------------------------------------------------------------------------


def _sorted(value: Any) -> Any:
    """kubectl's output goes through Go maps, so keys come out sorted at every level."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def to_json(obj: Any) -> str:
    import json

    return json.dumps(_sorted(obj), indent=4, ensure_ascii=False)


class _Representer(SafeRepresenter):
    """Multi-line strings as `|` blocks, as kubectl prints them (a subclass: ruamel's registry is global)."""


# Plain words that YAML 1.1 readers (Go's yaml, so kubectl) would take for booleans or null.
_YAML11_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"])


def _represent_str(representer: SafeRepresenter, data: str) -> Any:
    if "\n" in data:
        return representer.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    if data.lower() in _YAML11_WORDS:
        return representer.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return representer.represent_str(data)


_Representer.add_representer(str, _represent_str)


class _Emitter(Emitter):
    """Go's YAML (and so kubectl) quotes with double quotes: `resourceVersion: "7"`."""

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def to_yaml(obj: Any) -> str:
    """Block-style YAML like kubectl's: 2-space indent, list dashes at the parent's indent."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _Representer
    yaml.Emitter = _Emitter
    yaml.default_flow_style = False
    yaml.width = 1_000_000
    yaml.indent(mapping=2, sequence=2, offset=0)
    buf = io.StringIO()
    yaml.dump(_sorted(obj), buf)
    return buf.getvalue()


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """kubectl hides metadata.managedFields unless --show-managed-fields."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def as_list(items: list[dict[str, Any]], resource_version: str = "") -> dict[str, Any]:
    """Several objects as kubectl prints them: `kind: List` with `items`."""
    return {
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": resource_version},
    }
