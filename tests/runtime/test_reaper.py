"""runtime/reaper.py: the child ends when the parent's pipe closes or a signal arrives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestra.runtime.service import REAPER


def _child_pid(reaper: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = Path(f"/proc/{reaper.pid}/task/{reaper.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise AssertionError("the reaper started no child")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"


def _start(command: list[str], *options: str) -> tuple[subprocess.Popen[bytes], int]:
    read, write = os.pipe()
    reaper = subprocess.Popen([*REAPER, *options, "--", *command], stdin=read)
    os.close(read)
    return reaper, write


def test_the_child_is_stopped_when_the_parent_goes_away() -> None:
    reaper, lifeline = _start(["sleep", "60"])
    child = _child_pid(reaper)
    os.close(lifeline)  # what the kernel does when the parent dies, even by SIGKILL
    assert reaper.wait(5) == 128 + signal.SIGTERM
    assert _gone(child)


def test_sigterm_is_passed_on_and_a_stubborn_child_is_killed() -> None:
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)"]
    reaper, lifeline = _start(stubborn)
    try:
        child = _child_pid(reaper)
        time.sleep(0.3)  # the child has set its handler
        started = time.monotonic()
        reaper.send_signal(signal.SIGTERM)
        assert reaper.wait(10) == 128 + signal.SIGKILL
        assert 4.5 < time.monotonic() - started < 8  # SIGKILL after the 5 s grace
        assert _gone(child)
    finally:
        os.close(lifeline)


def test_grace_sets_the_time_before_sigkill() -> None:
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "time.sleep(60)"]
    reaper, lifeline = _start(stubborn, "--grace", "1.5")
    try:
        child = _child_pid(reaper)
        time.sleep(0.3)
        started = time.monotonic()
        reaper.send_signal(signal.SIGTERM)
        assert reaper.wait(10) == 128 + signal.SIGKILL
        assert 1.3 < time.monotonic() - started < 4
        assert _gone(child)
    finally:
        os.close(lifeline)


def test_a_bad_grace_is_a_usage_error() -> None:
    reaper, lifeline = _start(["true"], "--grace", "soon")
    try:
        assert reaper.wait(5) == 2
    finally:
        os.close(lifeline)


def test_the_childs_exit_status_is_the_reapers() -> None:
    reaper, lifeline = _start(["sh", "-c", "exit 7"])
    try:
        assert reaper.wait(5) == 7
    finally:
        os.close(lifeline)
