"""Raw keyboard input on trio: the terminal in cbreak mode, key presses as names.

Owns: putting stdin's terminal into cbreak mode (no echo, no line buffering; signals still work)
and restoring it on every exit path; waiting for input with `trio.lowlevel.wait_readable` (the fd
stays blocking, so stdout — often the same open file — is never switched to non-blocking); and
decoding bytes into key names: "up", "down", "left", "right", "pgup", "pgdn", "home", "end",
"enter", "esc", "tab", "shift-tab", "backspace", "ctrl-c", or the character itself.
Must not import: the server side.
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import tty
from collections.abc import AsyncIterator, Iterator

import trio

ESC_TIMEOUT = 0.05  # a lone ESC byte is the Esc key unless more of a sequence follows this quickly

_SEQUENCES = {
    "[A": "up",
    "[B": "down",
    "[C": "right",
    "[D": "left",
    "OA": "up",
    "OB": "down",
    "OC": "right",
    "OD": "left",
    "[H": "home",
    "[F": "end",
    "OH": "home",
    "OF": "end",
    "[1~": "home",
    "[4~": "end",
    "[7~": "home",
    "[8~": "end",
    "[5~": "pgup",
    "[6~": "pgdn",
    "[3~": "delete",
    "[2~": "insert",
    "[Z": "shift-tab",
}
_CONTROL = {
    "\r": "enter",
    "\n": "enter",
    "\t": "tab",
    "\x7f": "backspace",
    "\x08": "backspace",
    "\x03": "ctrl-c",
    "\x04": "ctrl-d",
    "\x0c": "ctrl-l",
}


def is_interactive() -> bool:
    """True when the dashboard can run: stdin and stdout are terminals and TERM is not `dumb`.
    Callers (`orchestra up`) check this and fall back to plain logs otherwise."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """cbreak mode on `fd` for the duration; the saved settings come back even on Ctrl-C."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        attrs = termios.tcgetattr(fd)
        attrs[3] &= ~termios.ISIG  # Ctrl-C arrives as a key (\x03), so quitting restores the screen cleanly
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def decode(data: str) -> tuple[list[str], str]:
    """Split typed text into key names; returns (keys, an unfinished escape sequence to keep)."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        ch = data[i]
        if ch != "\x1b":
            keys.append(_CONTROL.get(ch, ch))
            i += 1
            continue
        rest = data[i + 1:]
        if not rest:
            return keys, "\x1b"
        if rest[0] not in "[O":
            keys.append("esc")  # ESC followed by a plain key (or alt-key): treat as Esc then the key
            i += 1
            continue
        end = 1
        while end < len(rest) and not (rest[end].isalpha() or rest[end] == "~"):
            end += 1
        if end >= len(rest):
            return keys, data[i:]  # the sequence continues in the next read
        keys.append(_SEQUENCES.get(rest[: end + 1], "unknown"))
        i += end + 2
    return keys, ""


async def read_keys(fd: int) -> AsyncIterator[str]:
    """Key names typed on terminal `fd` (already in cbreak mode), until end of input."""
    pending = ""
    while True:
        if pending:
            with trio.move_on_after(ESC_TIMEOUT) as scope:
                await trio.lowlevel.wait_readable(fd)
            if scope.cancelled_caught:  # nothing followed: a lone Esc, or a cut-off sequence
                yield "esc"
                pending = ""
                continue
        else:
            await trio.lowlevel.wait_readable(fd)
        data = os.read(fd, 1024)  # readable, so this returns at once with what is there
        if not data:
            return
        keys, pending = decode(pending + data.decode(errors="replace"))
        for key in keys:
            yield key
