"""Exec in a simulated container: which rule answers a command, and playing the answer out in time.

Owns: the exec rule, in order — (1) the container's explicit script (`ContainerScript.exec`,
`exec_handler`; tests), (2) the pod's `sim.orchestra.io/exec` annotation, (3) an interactive shell
(`sh`/`bash`/... with no `-c` and a stdin: each line runs through the command rules, `exit` ends it,
a TTY gets busybox's `/ # ` prompt and its input echoed), (4) the command rules of simcommand.py,
where an unrecognised program exits 0 at once with no output. Output comes at the moments the rules
say (`echo a; sleep 1; echo b` streams), files the exec makes are kept in the container, and
`cat`/`test` see them, the files of the container's own command, and mounted volumes (read for
real, in a thread, before the exec runs).
Must not import: podman, anything above the runtime layer.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Sequence

import trio

from orchestra.runtime.base import ContainerState
from orchestra.runtime.simcommand import SHELLS, Context, Outcome, Wget, evaluate
from orchestra.runtime.simrules import ExecScript, PodScript
from orchestra.runtime.simshell import ShellSyntaxError, tokens
from orchestra.runtime.simstate import SimContainer
from orchestra.runtime.simstdio import SimExecSession

MAX_FILE = 1 << 20  # bytes of a mounted file an exec reads
PROMPT = b"/ # "
FileChange = Callable[[float, str, bytes | None], None]  # (trio time, path, content | None) the exec made


async def run_exec(c: SimContainer, cmd: tuple[str, ...], session: SimExecSession, *, pod: PodScript | None,
                   hostname: str, wget: Wget, stdin: bool, tty: bool, on_file: FileChange) -> None:
    if cmd[:1] == ("busybox",):
        cmd = cmd[1:]
    answer = c.script.exec.get(cmd) or (c.script.exec_handler and c.script.exec_handler(cmd)) \
        or (pod.exec_answer(cmd) if pod is not None else None)
    if answer:
        await _play_answer(answer, session)
        return
    mounted = await read_mounted(c, cmd)
    ctx = Context(env=c.spec.env, hostname=hostname, stdin=stdin, wget=wget,
                  lookup=lambda path: c.file_at(path, trio.current_time(), mounted))
    if stdin and interactive_shell(cmd):
        await _interactive_shell(ctx, session, tty, on_file)
        return
    outcome = evaluate(cmd, ctx)
    await _play(outcome, session, on_file)
    if outcome.echo_stdin:
        async for data in session.stdin_receive:
            await session.emit(1, data)
    session.finish(outcome.exit_code)


def interactive_shell(cmd: Sequence[str]) -> bool:
    """`sh`, `bash -i`, `/bin/ash -l`: a shell given no script (neither `-c` nor a file)."""
    return bool(cmd) and posixpath.basename(cmd[0]) in SHELLS and all(
        a.startswith("-") and "c" not in a.lstrip("-") for a in cmd[1:])


async def _play_answer(answer: ExecScript, session: SimExecSession) -> None:
    await trio.sleep(answer.duration)
    if answer.stdout:
        await session.emit(1, answer.stdout)
    if answer.stderr:
        await session.emit(2, answer.stderr)
    session.finish(answer.exit_code)


async def _play(outcome: Outcome, session: SimExecSession, on_file: FileChange) -> None:
    """Emit output and make files at their moments, then last as long as the outcome says."""
    start = trio.current_time()
    events: list[tuple[float, int, bytes | None, str]] = [(at, s, d, "") for at, s, d in outcome.output]
    events += [(at, 0, d, p) for at, p, d in outcome.files]
    for at, stream, data, path in sorted(events, key=lambda e: e[0]):
        await trio.sleep_until(start + at)
        if path:
            on_file(start + at, path, data)
        elif data:
            await session.emit(stream, data)
    if outcome.duration == math.inf:
        await trio.sleep_forever()
    await trio.sleep_until(start + outcome.duration)


async def _interactive_shell(ctx: Context, session: SimExecSession, tty: bool, on_file: FileChange) -> None:
    """A shell reading commands from stdin, line by line, until `exit` or EOF."""
    status = 0
    pending = b""
    if tty:
        await session.emit(1, PROMPT)
    async for data in session.stdin_receive:
        pending += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if tty else data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if tty:
                await session.emit(1, line + b"\r\n")
            outcome = evaluate(["sh", "-c", line.decode(errors="replace")], ctx)
            await _play(outcome, session, on_file)
            status = outcome.exit_code
            if outcome.exited:
                session.finish(status)
                return
            if tty:
                await session.emit(1, PROMPT)
    session.finish(status)


async def read_mounted(c: SimContainer, cmd: Sequence[str]) -> dict[str, bytes | None]:
    """The mounted files the command names (None: not there), read in a thread."""
    if not c.spec.mounts:
        return {}
    words = list(cmd)
    if len(cmd) >= 3 and posixpath.basename(cmd[0]) in SHELLS and cmd[1].startswith("-"):
        try:
            words += tokens(cmd[2])
        except ShellSyntaxError:  # the command rules report it; nothing to read
            pass
    wanted = {}
    for word in words:
        for m in c.spec.mounts:
            root = m.container_path.rstrip("/")
            if word.startswith(root + "/") and ".." not in word.split("/"):
                wanted[word] = m.host_path.rstrip("/") + word[len(root):]
    if not wanted:
        return {}
    return await trio.to_thread.run_sync(_read_files, wanted)


def _read_files(wanted: dict[str, str]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for path, host_path in wanted.items():
        try:
            with open(host_path, "rb") as f:
                out[path] = f.read(MAX_FILE)
        except OSError:  # a missing file (or a directory): `cat` says "No such file"
            out[path] = None
    return out


def wget_in_pod(c: SimContainer, url: str) -> tuple[int, bytes, bytes]:
    """`wget` from inside the pod: its own ports answer (a scripted `serves` body, or an empty page
    from a container running a server-like program); anything else refuses."""
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.partition(":")
    port_number = int(port) if port.isdigit() else 80
    if host in ("127.0.0.1", "localhost", c.sandbox.ip, c.sandbox.spec.hostname):
        running = [o for o in c.sandbox.members.values() if o.state == ContainerState.RUNNING and not o.infra]
        for other in running:
            if port_number in other.script.serves:
                return 0, other.script.serves[port_number], b""
        if any(o.script.server for o in running):
            return 0, b"", b""
    return 1, b"", f"wget: can't connect to remote host ({host}): Connection refused\n".encode()
