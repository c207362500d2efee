"""How a signal ends the `orchestra` command: `Terminated`, SIGTERM raised like Ctrl-C's KeyboardInterrupt.

Its own module so that both the entry point (cli/entry.py, which installs the handler before the
CLI's imports begin) and the click group (cli/main.py, which turns either into its exit code) can
import it without importing each other.
Must not import: anything but the standard library (it is imported before the CLI itself).
"""

from __future__ import annotations


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so every handler of that one applies."""


# The signals the entry point's handlers raised for, in order. Python drops an exception raised where it
# cannot propagate (a weakref callback of the import machinery, a __del__: "Exception ignored in ..."),
# so a signal arriving there would be lost; whoever takes over the signals later looks here first.
received: list[int] = []


def exit_code(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM: 128 + the signal's number, as shells report it."""
    return 128 + signum
