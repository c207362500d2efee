"""A port of Go's text/tabwriter (left-aligned, space padding): how kubectl lines up its output.

Owns: `tabwrite(text, minwidth=, padding=)`. Cells end with a tab; the text after a line's last tab
is not part of any column. A column block is a run of consecutive lines that have a cell in that
column, so a line without tabs ends the alignment above it (that is why `kubectl describe`
sections align independently).
Must not import: anything else of orchestra.
"""

from __future__ import annotations


def tabwrite(text: str, *, minwidth: int = 0, padding: int = 2) -> str:
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _format(lines, 0, len(lines), [], out, minwidth, padding)
    return "\n".join(out)


def _format(
    lines: list[list[str]],
    line0: int,
    line1: int,
    widths: list[int],
    out: list[str],
    minwidth: int,
    padding: int,
) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write(lines, line0, this, widths, out)  # lines above this block, at the outer widths
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format(lines, line0, this, [*widths, width], out, minwidth, padding)
        line0 = this
    _write(lines, line0, line1, widths, out)


def _write(lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
    for cells in lines[line0:line1]:
        text = "".join(c.ljust(widths[j]) if j < len(widths) else c for j, c in enumerate(cells[:-1]))
        out.append(text + cells[-1])
