"""What the keys do: the dashboard's UI state (view, selection, filters, prompts) and its transitions.

Owns: `Ui`, a plain state machine fed one key name at a time (`input.py` produces them), which
changes itself and returns an `Action` when the API must be called (delete, scale, restart, open a
detail pane that fetches logs, quit). No I/O here, so every key path is unit-testable.
Must not import: the server side; rich.
"""

from __future__ import annotations

from typing import Literal

import attrs

from orchestra.cli.dashboard.detail import Detail
from orchestra.cli.dashboard.views import Row, View, make_views

Mode = Literal["list", "filter", "confirm", "scale", "detail"]
SCALABLE = ("Deployment", "StatefulSet")
RESTARTABLE = ("Deployment", "StatefulSet", "DaemonSet")


@attrs.frozen
class Action:
    verb: Literal["quit", "delete", "scale", "restart", "detail"]
    row: Row | None = None
    replicas: int = 0
    detail: Detail | None = None


@attrs.define
class Ui:
    views: list[View] = attrs.field(factory=make_views)
    view: int = 1  # Pods
    mode: Mode = "list"
    text_filter: str = ""
    draft: str = ""  # the filter while it is being typed (applied live)
    namespace: str | None = None
    prompt: str = ""  # digits typed at the scale prompt
    target: Row | None = None  # what a confirm / scale prompt acts on
    detail: Detail | None = None
    message: str = ""
    message_error: bool = False
    page: int = 20  # rows per page (the renderer keeps it current)
    _selected: dict[int, str | None] = attrs.field(factory=dict)
    _index: dict[int, int] = attrs.field(factory=dict)
    offsets: dict[int, int] = attrs.field(factory=dict)

    @property
    def current(self) -> View:
        return self.views[self.view]

    @property
    def filter_text(self) -> str:
        return self.draft if self.mode == "filter" else self.text_filter

    def flash(self, message: str, *, error: bool = False) -> None:
        self.message, self.message_error = message, error

    # --- selection -----------------------------------------------------------------------------

    def selected_index(self, rows: list[Row]) -> int | None:
        """The selected row's index in `rows` (following its key when rows move), or None if empty."""
        if not rows:
            return None
        idx = self.current.index_of(self._selected.get(self.view))
        if idx is None or idx >= len(rows) or rows[idx].key != self._selected.get(self.view):
            idx = min(self._index.get(self.view, 0), len(rows) - 1)
        self._select(rows, idx)
        return idx

    def _select(self, rows: list[Row], idx: int) -> None:
        idx = max(0, min(idx, len(rows) - 1))
        self._index[self.view] = idx
        self._selected[self.view] = rows[idx].key

    def selected_row(self, rows: list[Row]) -> Row | None:
        idx = self.selected_index(rows)
        return rows[idx] if idx is not None else None

    # --- keys ----------------------------------------------------------------------------------

    def handle(self, key: str, rows: list[Row], namespaces: list[str]) -> Action | None:
        """Apply one key (`"up"`, `"enter"`, `"esc"`, `"a"`, ...) to the state; maybe return an Action."""
        if self.mode == "filter":
            return self._filter_key(key)
        if self.mode == "confirm":
            return self._confirm_key(key)
        if self.mode == "scale":
            return self._scale_key(key)
        if self.mode == "detail":
            return self._detail_key(key)
        return self._list_key(key, rows, namespaces)

    def _list_key(self, key: str, rows: list[Row], namespaces: list[str]) -> Action | None:
        if key in ("q", "ctrl-c"):
            return Action("quit")
        if len(key) == 1 and key.isdigit() and 1 <= int(key) <= len(self.views):
            self.view = int(key) - 1
        elif key == "tab":
            self.view = (self.view + 1) % len(self.views)
        elif key == "shift-tab":
            self.view = (self.view - 1) % len(self.views)
        elif key in ("up", "k", "down", "j", "pgup", "pgdn", "home", "g", "end", "G"):
            self._move(key, rows)
        elif key == "/":
            self.mode, self.draft = "filter", self.text_filter
        elif key == "n":
            self._cycle_namespace(namespaces)
        elif key == "esc":
            self.text_filter = ""
            self.flash("")
        elif key in ("enter", "d", "s", "r"):
            return self._act(key, self.selected_row(rows))
        return None

    def _move(self, key: str, rows: list[Row]) -> None:
        idx = self.selected_index(rows)
        if idx is None:
            return
        step = {"up": -1, "k": -1, "down": 1, "j": 1, "pgup": -self.page, "pgdn": self.page}
        if key in step:
            idx += step[key]
        elif key in ("home", "g"):
            idx = 0
        else:
            idx = len(rows) - 1
        self._select(rows, idx)

    def _cycle_namespace(self, namespaces: list[str]) -> None:
        order: list[str | None] = [None, *namespaces]
        try:
            pos = order.index(self.namespace)
        except ValueError:
            pos = 0
        self.namespace = order[(pos + 1) % len(order)]
        self.flash(f"namespace: {self.namespace or 'all'}")

    def _act(self, key: str, row: Row | None) -> Action | None:
        if row is None:
            self.flash("nothing selected", error=True)
            return None
        what = f"{row.kind} {row.namespace + '/' if row.namespace else ''}{row.name}"
        if key == "enter":
            self.mode = "detail"
            self.detail = Detail(row.kind, row.namespace, row.name)
            return Action("detail", row, detail=self.detail)
        if key == "d":
            self.mode, self.target = "confirm", row
            self.flash(f"Delete {what}? (y/n)")
        elif key == "s":
            if row.kind not in SCALABLE:
                self.flash(
                    f"{row.kind} cannot be scaled (select a Deployment or StatefulSet in Workloads)",
                    error=True,
                )
                return None
            self.mode, self.target, self.prompt = "scale", row, ""
        elif key == "r":
            if row.kind not in RESTARTABLE:
                self.flash(f"{row.kind} has no rollout to restart (select a Deployment)", error=True)
                return None
            return Action("restart", row)
        return None

    def _filter_key(self, key: str) -> Action | None:
        if key == "enter":
            self.text_filter, self.mode = self.draft, "list"
        elif key == "esc":
            self.text_filter = self.draft = ""
            self.mode = "list"
        elif key == "backspace":
            self.draft = self.draft[:-1]
        elif key == "ctrl-c":
            return Action("quit")
        elif len(key) == 1 and key.isprintable():
            self.draft += key
        return None

    def _confirm_key(self, key: str) -> Action | None:
        row, self.target, self.mode = self.target, None, "list"
        if key in ("y", "Y") and row is not None:
            return Action("delete", row)
        self.flash("delete cancelled")
        return None

    def _scale_key(self, key: str) -> Action | None:
        if key == "esc" or key == "ctrl-c":
            self.mode, self.target = "list", None
            self.flash("scale cancelled")
        elif key == "backspace":
            self.prompt = self.prompt[:-1]
        elif key.isdigit() and len(self.prompt) < 6:
            self.prompt += key
        elif key == "enter":
            row, self.target, self.mode = self.target, None, "list"
            if row is None or not self.prompt:
                self.flash("scale cancelled: no number given")
                return None
            return Action("scale", row, replicas=int(self.prompt))
        return None

    def _detail_key(self, key: str) -> Action | None:
        assert self.detail is not None
        if key in ("esc", "backspace"):
            self.mode, self.detail = "list", None
        elif key in ("q", "ctrl-c"):
            return Action("quit")
        elif key in ("up", "k"):
            self.detail.scroll = max(0, self.detail.scroll - 1)
        elif key in ("down", "j"):
            self.detail.scroll += 1
        elif key == "pgup":
            self.detail.scroll = max(0, self.detail.scroll - self.page)
        elif key in ("pgdn", " "):
            self.detail.scroll += self.page
        elif key in ("home", "g"):
            self.detail.scroll = 0
        return None
