"""Run a command that must not outlive the process that started it.

    python reaper.py [--grace SECONDS] -- podman system service --time=0 unix:///...

Owns: one child process and its fate. The parent keeps the write end of this process's stdin
(a pipe); when the parent exits for any reason — SIGKILL included — the pipe closes, stdin reads EOF,
and the child gets SIGTERM (SIGKILL `--grace` seconds later, 5 by default). SIGTERM/SIGINT sent to
this process are passed on the same way. This process exits with the child's status.

Why not PR_SET_PDEATHSIG: it fires when the *thread* that forked the child exits, and trio starts
processes from its worker threads, which end when idle — the child would die with an idle thread.
Runs as a plain script (no orchestra imports, stdlib only), so it starts in a few milliseconds.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys

KILL_AFTER = 5.0


def _stop(child: subprocess.Popen[bytes], grace: float) -> int:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            return child.wait(grace)
        except subprocess.TimeoutExpired:
            child.kill()
    return child.wait()


def main(argv: list[str]) -> int:
    grace = KILL_AFTER
    if len(argv) >= 2 and argv[0] == "--grace":
        try:
            grace = float(argv[1])
        except ValueError:
            grace = -1.0
        argv = argv[2:] if grace >= 0 else []
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: reaper.py [--grace SECONDS] -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, lambda *_: None)  # handled through the wake-up fd below
    child = subprocess.Popen(argv[1:], stdin=subprocess.DEVNULL)
    with selectors.DefaultSelector() as sel:
        sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "parent")
        sel.register(wake_r, selectors.EVENT_READ, "signal")
        while child.poll() is None:
            for key, _ in sel.select(timeout=1.0):
                if key.data == "signal":
                    got = os.read(wake_r, 64)
                    if {signal.SIGTERM, signal.SIGINT} & set(got):
                        return _code(_stop(child, grace))
                elif not os.read(key.fd, 4096):  # EOF: the parent is gone
                    return _code(_stop(child, grace))
    return _code(child.returncode)


def _code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
