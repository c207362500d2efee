"""Drawing a list view: only the visible window of its rows, as fixed-width `Text` lines (no rich
Table: measuring 1,000 cells every frame is what makes dashboards slow), and the scroll window that
keeps the selection on screen. Ages are computed at draw time, for visible rows only.
Must not import: the server side.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from orchestra.cli.dashboard.views import GAP, Row, View
from orchestra.objects import human_duration


def fit(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: max(width - 1, 0)] + "…" if width > 0 else ""
    return text.rjust(width) if right else text.ljust(width)


def age_of(since: datetime | None, now: datetime) -> str:
    return human_duration((now - since).total_seconds()) if since is not None else "<unknown>"


def draw_table(view: View, rows: list[Row], *, selected: int | None, offset: int, height: int, width: int,
               now: datetime) -> Text:
    """The column header plus rows[offset:offset+height-1], one line each, `selected` highlighted."""
    widths = view.widths(width - 2)  # two columns for the selection marker
    out = Text(no_wrap=True, overflow="crop", end="")
    out.append(
        "  " + GAP.join(fit(c.name, w, c.right) for c, w in zip(view.columns, widths, strict=True)).rstrip(),
        style="bold",
    )
    age = view.age_index
    last = len(view.columns) - 1
    for i in range(offset, min(len(rows), offset + max(height - 1, 0))):
        row = rows[i]
        out.append("\n")
        start = len(out)
        out.append("▶ " if i == selected else "  ", style="bold" if i == selected else None)
        for j, (col, w) in enumerate(zip(view.columns, widths, strict=True)):
            cell = age_of(row.since, now) if j == age else row.cells[j]
            text = fit(cell, w, col.right) if j < last else fit(cell, w).rstrip()
            out.append(text, style=row.styles[j] or None)
            if j < last:
                out.append(GAP)
        if i == selected:
            out.append(" " * max(0, width - (len(out) - start)))
            out.stylize("reverse", start, len(out))
    if not rows:
        out.append("\n")
        out.append("  (nothing to show)", style="dim")
    return out


def scroll_offset(selected: int | None, offset: int, visible: int, total: int) -> int:
    """Keep the selection on screen, moving the window as little as possible."""
    if visible <= 0 or total <= visible:
        return 0
    offset = max(0, min(offset, total - visible))
    if selected is None:
        return offset
    if selected < offset:
        return selected
    if selected >= offset + visible:
        return selected - visible + 1
    return offset
