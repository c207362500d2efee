"""The `orchestra` command's entry point: signals are handled before the CLI's imports begin.

A SIGTERM or Ctrl-C that arrives while Python is still importing the CLI (a tenth of a second) ends
the process quietly, with the exit code kubectl-style tools use (130 for SIGINT, 143 for SIGTERM),
instead of a traceback or an unhandled death. `orchestra up` takes both signals over once its event
loop runs, and then stops the cluster cleanly.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

from orchestra.cli.signals import Terminated, exit_code, received


def _terminate(signum: int, frame: Any) -> NoReturn:
    received.append(signum)
    raise Terminated


def _interrupt(signum: int, frame: Any) -> NoReturn:
    received.append(signum)
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        from orchestra.cli.main import main as cli_main
    except KeyboardInterrupt as exc:
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    if received:  # raised where Python dropped it (an import lock's weakref callback): still ours to obey
        sys.exit(exit_code(received[-1]))
    cli_main()
