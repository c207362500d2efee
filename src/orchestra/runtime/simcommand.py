"""The command rules of the simulated runtime: what a command does when a simulated container runs it.

Owns: `evaluate(argv, ctx) -> Outcome`, a small interpreter used both for a container's main process
(how long it runs, its exit code, what it prints, which files it makes) and for exec (what it answers).
The rules, exactly (README "Simulated nodes" documents them for users):

- argv[0] counts by its base name (`/bin/sleep` is `sleep`); a leading `busybox` or `exec` is dropped.
- `sleep N...` runs for the sum of its arguments (s/m/h/d suffixes, `infinity`), then exits 0;
  `true` and `:` exit 0, `false` exits 1, `exit [N]` (in a shell) exits N (default: the last status).
- `echo` / `printf` print (at the moment they run; `>&2` to stderr, `> file` / `>> file` into a file).
- `sh|bash|ash|dash|zsh|ksh -c SCRIPT`: the script's commands run in order with `;`, newlines, `&&`,
  `||`, `&` (a background `sleep` runs alongside; `wait` waits for it) and `exec`; `$VAR` / `${VAR}`
  expand from the container's environment, `VAR=value` and `export` set variables, `$(cmd)` and
  backticks give cmd's output by these rules (`$((...))` is empty: arithmetic is not interpreted).
- Files: `touch`, `rm`, `echo ... > f`, `cat f`, `test -e|-f f` / `[ -e f ]`, `ls f` see the files this
  container's own commands made or removed; other paths exist and are empty (mounted files are read
  for real by the runtime before an exec). `cat` with no file echoes stdin when it has one.
- `env` / `printenv [NAME]`, `hostname` answer from the container's spec; `wget URL` asks the pod.
- Shell built-ins that change nothing here (`cd`, `set`, `trap`, ...) and utilities that end on their
  own (`mkdir`, `cp`, `grep`, `date`, ...: NOOPS) succeed at once; `tail` too, unless it follows (`-f`).
- Anything else is an unrecognised program. In the middle of a script it succeeds at once. As the
  last thing a command does it makes the outcome `open_ended`: a server, or a program whose
  duration the simulation cannot know (the runtime then applies its own rule).
- Compound commands (loops, `if`, `case`, `{ }`, subshells) count as an unrecognised program, and a
  shell without `-c` (an interactive shell or a script file) as one too.
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence

import attrs

from orchestra.runtime.simshell import ShellSyntaxError, Step, parse

Output = tuple[float, int, bytes]  # (seconds after the start, 1 stdout | 2 stderr, data)
FileEvent = tuple[float, str, bytes | None]  # (seconds after the start, path, content; None = removed)
Wget = Callable[[str], tuple[int, bytes, bytes]]  # url -> (exit code, stdout, stderr)

SHELLS = {"sh", "bash", "ash", "dash", "zsh", "ksh"}
# shell built-ins that change nothing here, and utilities that end on their own: they succeed at once
NOOPS = {"cd", "set", "trap", "umask", "ulimit", "kill", "shift", "local", "readonly", "unset", "source",
         ".", "eval", "hash", "type", "command", "exec", "mkdir", "rmdir", "chmod", "chown", "chgrp", "ln",
         "cp", "mv", "mkfifo", "mktemp", "sync", "date", "uname", "id", "whoami", "which", "grep", "sed",
         "awk", "cut", "tr", "head", "wc", "sort", "uniq", "tee", "find", "stat", "du", "df", "ps",
         "basename", "dirname", "readlink", "realpath", "seq", "base64", "md5sum", "sha256sum", "nslookup",
         "tar", "gzip", "gunzip"}
SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*|\?|\$)\}|\$([A-Za-z_][A-Za-z0-9_]*|\?|\$)")


@attrs.frozen
class Outcome:
    duration: float  # seconds until it exits (math.inf: until stopped)
    exit_code: int = 0
    output: tuple[Output, ...] = ()
    files: tuple[FileEvent, ...] = ()
    open_ended: bool = False  # its last program is unrecognised: `duration` is the time before that started
    exited: bool = False  # it ran `exit` (or `exec` of a recognised program, or had a syntax error)
    echo_stdin: bool = False  # `cat` with a stdin: echoes it until its EOF, then exits 0


@attrs.frozen
class Context:
    env: Mapping[str, str] = attrs.field(factory=dict)
    hostname: str = ""
    stdin: bool = False  # the process has a stdin (else it reads /dev/null)
    lookup: Callable[[str], bytes | None] = lambda path: b""  # a file's content now; None: it does not exist
    wget: Wget | None = None  # None: `wget` is an unrecognised program (a main process)


def evaluate(argv: Sequence[str], ctx: Context) -> Outcome:
    if not argv:  # the image's own entrypoint: the simulation cannot know what it does
        return Outcome(duration=0.0, open_ended=True)
    run = _Run(ctx)
    run.top = True
    run.command(list(argv), Step(), top=True)
    return run.outcome()


def parse_seconds(word: str) -> float | None:
    """busybox sleep's argument: a number with an optional s/m/h/d suffix, or `infinity`."""
    if word in ("inf", "infinity"):
        return math.inf
    m = SECONDS.fullmatch(word)
    if m is None:
        return None
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


class _Run:
    """One evaluation: virtual time `t`, the last status, output, file changes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.env: dict[str, str] = dict(ctx.env)
        self.t = 0.0
        self.status = 0
        self.output: list[Output] = []
        self.files: list[FileEvent] = []
        self.overlay: dict[str, bytes | None] = {}
        self.background_end = 0.0
        self.background_unknown = False
        self.exited = False  # `exit`, a syntax error, or `exec` of a recognised program
        self.done = False  # no further step runs (exited, or `exec` of anything)
        self.last_unknown = False
        self.echo_stdin = False
        self.top = False  # this run is the whole process (a `sh -c` here is the process itself)

    def outcome(self) -> Outcome:
        open_ended = self.last_unknown and not self.exited
        return Outcome(duration=self.t, exit_code=self.status & 255, output=tuple(self.output),
                       files=tuple(self.files), open_ended=open_ended, exited=self.exited,
                       echo_stdin=self.echo_stdin)

    # --- scripts ----------------------------------------------------------------------------------

    def script(self, text: str) -> None:
        try:
            steps = parse(text)
        except ShellSyntaxError as exc:
            self.write(2, f"sh: {exc}\n".encode(), Step())
            self.status, self.exited, self.done, self.last_unknown = 2, True, True, False
            return
        op = ";"
        for step in steps:
            if self.done or self.t == math.inf:
                return
            if (op == "&&" and self.status != 0) or (op == "||" and self.status == 0):
                op = step.op
                continue
            if step.op == "|":  # its output goes down the pipe, not to the container's stdout
                step = attrs.evolve(step, stdout="/dev/null")
            if step.op == "&":
                self.background(step)
            elif step.compound:
                self.unknown()
            else:
                self.command(list(step.words), step, top=False)
            op = step.op

    def background(self, step: Step) -> None:
        words = [self.expand(w, step) for w in step.words]
        seconds = self.sleep_seconds(words[1:]) if words and posixpath.basename(words[0]) == "sleep" else None
        if step.compound or seconds is None:
            self.background_unknown = True
        else:
            self.background_end = max(self.background_end, self.t + seconds)
        self.status, self.last_unknown = 0, False

    # --- simple commands --------------------------------------------------------------------------

    def command(self, words: list[str], step: Step, *, top: bool) -> None:
        while words and not top and ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            self.env[name] = self.expand(value, step)
        words = words if top else [self.expand(w, step) for w in words]
        replaces = False  # `exec`: the shell becomes this program and ends with it
        while len(words) > 1:
            base = posixpath.basename(words[0])
            if base in ("busybox", "nohup"):
                words = words[1:]
            elif base == "exec":
                replaces, words = True, words[1:]
            elif base == "env" and "=" in words[1]:
                words = self.env_prefix(words[1:])
            else:
                break
        if not words:
            return
        name, args = posixpath.basename(words[0]), words[1:]
        self.last_unknown = False
        handler = getattr(self, f"do_{name}", None) if name.isidentifier() else None
        if name in SHELLS:
            self.shell(args)
        elif name == ":":
            self.status = 0
        elif name == "[":
            self.do_test(args[:-1] if args[-1:] == ["]"] else args, step)
        elif handler is not None:
            handler(args, step)
        elif name in NOOPS:
            self.status = 0
        else:
            self.unknown()
        if replaces:
            self.done = True
            self.exited = self.exited or not self.last_unknown

    def env_prefix(self, words: list[str]) -> list[str]:
        while words and "=" in words[0]:
            name, _, value = words.pop(0).partition("=")
            self.env[name] = value
        return words

    def unknown(self) -> None:
        self.status, self.last_unknown = 0, True

    def shell(self, args: list[str]) -> None:
        flags = [a for a in args if a.startswith("-") and not a.startswith("--")]
        if not any("c" in f for f in flags):
            self.unknown()
            return
        leading = all(a.startswith("-") for a in args[:len(flags)])
        rest = args[len(flags):] if leading else args[args.index("-c") + 1:]
        if not rest:
            self.write(2, b"sh: -c requires an argument\n", Step())
            self.status = 2
            return
        sub = _Run(attrs.evolve(self.ctx, env=self.env))
        sub.script(rest[0])
        self.merge(sub)

    def merge(self, sub: _Run) -> None:
        """A child shell's effects, shifted to now."""
        self.output += [(self.t + at, s, d) for at, s, d in sub.output]
        self.files += [(self.t + at, p, c) for at, p, c in sub.files]
        self.overlay.update(sub.overlay)
        self.t += sub.t
        self.status, self.last_unknown = sub.status, sub.last_unknown and not sub.exited
        self.exited = self.exited or (sub.exited and self.top)
        self.echo_stdin = self.echo_stdin or sub.echo_stdin

    def expand(self, word: str, step: Step) -> str:
        """`$VAR`, `${VAR}`, `$?`, `$$`, and command substitutions (their stdout, trailing newlines cut)."""
        if "\x00" in word:
            word = PLACEHOLDER.sub(lambda m: self.substitute(step.subs[int(m.group(1))]), word)

        def value(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            if name == "?":
                return str(self.status)
            if name == "$":
                return "1"
            if name == "HOSTNAME" and name not in self.env:
                return self.ctx.hostname
            return self.env.get(name, "")

        return VARIABLE.sub(value, word) if "$" in word else word

    def substitute(self, command: str) -> str:
        sub = _Run(attrs.evolve(self.ctx, env=self.env))
        sub.script(command)
        return b"".join(d for _, s, d in sub.output if s == 1).decode(errors="replace").rstrip("\n")

    def write(self, stream: int, data: bytes, step: Step) -> None:
        if step.stdout in ("", "&2"):
            self.output.append((self.t, 2 if step.stdout == "&2" else stream, data))
        elif step.stdout != "/dev/null" and stream == 1:
            old = (self.file(step.stdout) or b"") if step.append else b""
            self.set_file(step.stdout, old + data)

    def file(self, path: str) -> bytes | None:
        if path in self.overlay:
            return self.overlay[path]
        return self.ctx.lookup(path)

    def set_file(self, path: str, content: bytes | None) -> None:
        self.overlay[path] = content
        self.files.append((self.t, path, content))

    def sleep_seconds(self, args: list[str]) -> float | None:
        values = [parse_seconds(a) for a in args]
        return sum(v for v in values if v is not None) if values and None not in values else None

    # --- built-ins (do_<name>) --------------------------------------------------------------------

    def do_sleep(self, args: list[str], step: Step) -> None:
        seconds = self.sleep_seconds(args)
        if seconds is None:
            bad = next((a for a in args if parse_seconds(a) is None), "")
            self.write(2, f"sleep: invalid number '{bad}'\n".encode(), step)
            self.status = 1
            return
        self.t += seconds
        self.status = 0

    def do_true(self, args: list[str], step: Step) -> None:
        self.status = 0

    def do_false(self, args: list[str], step: Step) -> None:
        self.status = 1

    def do_exit(self, args: list[str], step: Step) -> None:
        if args:
            self.status = int(args[0]) if args[0].lstrip("-").isdigit() else 2
        self.exited = self.done = True

    def do_wait(self, args: list[str], step: Step) -> None:
        self.t = max(self.t, self.background_end)
        if self.background_unknown:
            self.unknown()
        else:
            self.status = 0

    def do_echo(self, args: list[str], step: Step) -> None:
        newline = True
        while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
            newline = newline and "n" not in args[0]
            args = args[1:]
        self.write(1, (" ".join(args) + ("\n" if newline else "")).encode(), step)
        self.status = 0

    def do_printf(self, args: list[str], step: Step) -> None:
        if not args:
            self.status = 1
            return
        fmt, values = args[0], list(args[1:])
        text = re.sub(r"%[sd]", lambda m: values.pop(0) if values else "", fmt)
        self.write(1, text.replace("\\n", "\n").replace("\\t", "\t").encode(), step)
        self.status = 0

    def do_export(self, args: list[str], step: Step) -> None:
        self.env_prefix([a for a in args if "=" in a])
        self.status = 0

    def do_env(self, args: list[str], step: Step) -> None:
        self.write(1, "".join(f"{k}={v}\n" for k, v in self.env.items()).encode(), step)
        self.status = 0

    def do_printenv(self, args: list[str], step: Step) -> None:
        if not args:
            self.do_env(args, step)
            return
        found = [self.env[a] for a in args if a in self.env]
        self.write(1, "".join(f"{v}\n" for v in found).encode(), step)
        self.status = 0 if len(found) == len(args) else 1

    def do_hostname(self, args: list[str], step: Step) -> None:
        self.write(1, f"{self.ctx.hostname}\n".encode(), step)
        self.status = 0

    def do_touch(self, args: list[str], step: Step) -> None:
        for path in (a for a in args if not a.startswith("-")):
            self.set_file(path, self.file(path) or b"")
        self.status = 0

    def do_tail(self, args: list[str], step: Step) -> None:
        if any(a.startswith("-") and "f" in a.lower() for a in args):
            self.unknown()  # follows for ever
        else:
            self.status = 0

    def do_rm(self, args: list[str], step: Step) -> None:
        force = any(a.startswith("-") and "f" in a for a in args)
        self.status = 0
        for path in (a for a in args if not a.startswith("-")):
            if self.file(path) is None and not force:
                self.write(2, f"rm: can't remove '{path}': No such file or directory\n".encode(), step)
                self.status = 1
            self.set_file(path, None)

    def do_cat(self, args: list[str], step: Step) -> None:
        paths = [a for a in args if a != "-" and not a.startswith("-")]
        if not paths:
            self.echo_stdin = self.echo_stdin or (self.ctx.stdin and not step.stdin)
            self.status = 0
            return
        self.status = 0
        for path in paths:
            content = self.file(path)
            if content is None:
                self.write(2, f"cat: can't open '{path}': No such file or directory\n".encode(), step)
                self.status = 1
            elif content:
                self.write(1, content, step)

    def do_ls(self, args: list[str], step: Step) -> None:
        paths = [a for a in args if not a.startswith("-")]
        missing = [p for p in paths if self.file(p) is None]
        for path in missing:
            self.write(2, f"ls: {path}: No such file or directory\n".encode(), step)
        self.write(1, "".join(f"{p}\n" for p in paths if p not in missing).encode(), step)
        self.status = 1 if missing else 0

    def do_test(self, args: list[str], step: Step) -> None:
        negate = args[:1] == ["!"]
        args = args[1:] if negate else args
        if len(args) == 2 and args[0] in ("-e", "-f", "-r", "-s", "-d"):
            ok = self.file(args[1]) is not None and (args[0] != "-s" or bool(self.file(args[1])))
        elif len(args) == 2 and args[0] in ("-z", "-n"):
            ok = (args[1] == "") == (args[0] == "-z")
        elif len(args) == 3 and args[1] in ("=", "==", "!="):
            ok = (args[0] == args[2]) == (args[1] != "!=")
        elif len(args) == 3 and args[1] in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge") \
                and all(a.lstrip("-").isdigit() for a in (args[0], args[2])):
            a, b = int(args[0]), int(args[2])
            ok = {"-eq": a == b, "-ne": a != b, "-lt": a < b, "-le": a <= b, "-gt": a > b,
                  "-ge": a >= b}[args[1]]
        else:
            ok = (len(args) == 1 and args[0] != "") or len(args) > 1
        self.status = 0 if ok != negate else 1

    def do_wget(self, args: list[str], step: Step) -> None:
        urls = [a for a in args if "://" in a]
        if self.ctx.wget is None or not urls:
            self.unknown()
            return
        code, out, err = self.ctx.wget(urls[-1])
        target = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-O", "--output-document")), "")
        if args and any(a.startswith("-O") and len(a) > 2 for a in args):
            target = next(a[2:] for a in args if a.startswith("-O") and len(a) > 2)
        if code == 0 and target not in ("-", ""):
            self.set_file(target, out)
        elif code == 0 and target == "-":
            self.write(1, out, step)
        if err:
            self.write(2, err, step)
        self.status = code
