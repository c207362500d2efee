"""The command rules of simulated containers (simcommand.py) and what a container's command makes of
its main process (simscript.derive): tables with ids, no runtime needed."""

from __future__ import annotations

import math

import pytest

from orchestra.runtime.base import ContainerSpec
from orchestra.runtime.simcommand import Context, evaluate, parse_seconds
from orchestra.runtime.simrules import pod_script
from orchestra.runtime.simscript import derive
from orchestra.runtime.simshell import ShellSyntaxError, parse

SH = ("sh", "-c")


# (argv, duration, exit code, output, open_ended)
RULES = [
    pytest.param(("sleep", "30"), 30.0, 0, (), False, id="sleep"),
    pytest.param(("/bin/sleep", "1m", "30s"), 90.0, 0, (), False, id="sleep-path-suffixes-summed"),
    pytest.param(("sleep", "infinity"), math.inf, 0, (), False, id="sleep-infinity"),
    pytest.param(("sleep", "soon"), 0.0, 1, ((0.0, 2, b"sleep: invalid number 'soon'\n"),), False,
                 id="sleep-bad"),
    pytest.param(("busybox", "sleep", "5"), 5.0, 0, (), False, id="busybox-prefix"),
    pytest.param(("true",), 0.0, 0, (), False, id="true"),
    pytest.param(("false",), 0.0, 1, (), False, id="false"),
    pytest.param(("echo", "hello", "world"), 0.0, 0, ((0.0, 1, b"hello world\n"),), False, id="echo"),
    pytest.param((*SH, "exit 3"), 0.0, 3, (), False, id="sh-exit"),
    pytest.param(("/bin/bash", "-ec", "exit 300"), 0.0, 44, (), False, id="bash-exit-mod-256"),
    pytest.param((*SH, "echo hi; sleep 2; echo $A >&2; sleep 1"), 3.0, 0,
                 ((0.0, 1, b"hi\n"), (2.0, 2, b"a-value\n")), False, id="sh-sequence-env-stderr"),
    pytest.param((*SH, "echo start\nsleep 5\nexit 1"), 5.0, 1, ((0.0, 1, b"start\n"),), False,
                 id="sh-newlines"),
    pytest.param((*SH, "false && echo no || echo yes"), 0.0, 0, ((0.0, 1, b"yes\n"),), False, id="sh-and-or"),
    pytest.param((*SH, "sleep 5 & sleep 1; wait"), 5.0, 0, (), False, id="sh-background-wait"),
    pytest.param((*SH, "echo x > /dev/null; exec sleep 3"), 3.0, 0, (), False, id="sh-exec-recognised"),
    pytest.param((*SH, "mkdir -p /data; cp /a /data; sleep 10"), 10.0, 0, (), False,
                 id="sh-utilities-then-sleep"),
    pytest.param((*SH, "X=1; export Y=2; echo $X$Y ${HOSTNAME}"), 0.0, 0, ((0.0, 1, b"12 pod-host\n"),),
                 False,
                 id="sh-variables-hostname"),
    pytest.param((*SH, "for i in 1 2; do echo $i; done; exit 4"), 0.0, 4, (), False, id="sh-loop-then-exit"),
    pytest.param((*SH, 'X=$(echo hi); echo "$X `echo there`" $((1 + 2)); exit $(echo 5)'), 0.0, 5,
                 ((0.0, 1, b"hi there \n"),), False, id="sh-command-substitution"),
    pytest.param((*SH, 'echo "unterminated'), 0.0, 2,
                 ((0.0, 2, b"sh: syntax error: no closing quotation\n"),), False, id="sh-syntax-error"),
    pytest.param(("nginx", "-g", "daemon off;"), 0.0, 0, (), True, id="unrecognised-server"),
    pytest.param((), 0.0, 0, (), True, id="image-entrypoint"),
    pytest.param((*SH, "echo starting; exec httpd -f -p 8080"), 0.0, 0, ((0.0, 1, b"starting\n"),), True,
                 id="sh-exec-unrecognised"),
    pytest.param((*SH, "sleep 2; ./migrate --all"), 2.0, 0, (), True, id="sh-ends-unrecognised"),
    pytest.param((*SH, "while true; do sleep 1; done"), 0.0, 0, (), True, id="sh-loop-last"),
    pytest.param((*SH, "tail -f /var/log/x"), 0.0, 0, (), True, id="tail-follow"),
    pytest.param(("sh",), 0.0, 0, (), True, id="shell-without-script"),
]


@pytest.mark.parametrize(("argv", "duration", "code", "output", "open_ended"), RULES)
def test_command_rules(argv: tuple[str, ...], duration: float, code: int, output: tuple[object, ...],
                       open_ended: bool) -> None:
    outcome = evaluate(argv, Context(env={"A": "a-value"}, hostname="pod-host"))
    assert (outcome.duration, outcome.exit_code, outcome.output, outcome.open_ended) == (
        duration, code, output, open_ended)


def test_files_made_by_a_command_are_timed() -> None:
    outcome = evaluate((*SH,
                        "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; echo x >> /tmp/log; sleep 600"),
                       Context())
    assert outcome.files == ((0.0, "/tmp/healthy", b""), (30.0, "/tmp/healthy", None),
                             (30.0, "/tmp/log", b"x\n"))
    assert outcome.duration == 630.0


FILES = {"/etc/config/a": b"from a configmap\n", "/gone": None}


# (exec command, exit code, stdout, stderr)
EXEC_RULES = [
    pytest.param(("cat", "/etc/config/a"), 0, b"from a configmap\n", b"", id="cat-known-file"),
    pytest.param(("cat", "/gone"), 1, b"", b"cat: can't open '/gone': No such file or directory\n",
                 id="cat-removed"),
    pytest.param(("cat", "/etc/hostname"), 0, b"", b"", id="cat-unknown-path-is-empty"),
    pytest.param(("test", "-f", "/gone"), 1, b"", b"", id="test-removed"),
    pytest.param(("sh", "-c", "[ -e /etc/config/a ] && echo yes"), 0, b"yes\n", b"", id="bracket-test"),
    pytest.param(("printenv", "A"), 0, b"a-value\n", b"", id="printenv"),
    pytest.param(("printenv", "NOPE"), 1, b"", b"", id="printenv-missing"),
    pytest.param(("hostname",), 0, b"pod-host\n", b"", id="hostname"),
    pytest.param(("pg_isready", "-h", "localhost"), 0, b"", b"", id="unknown-command-exits-0"),
    pytest.param(("sh", "-c", "redis-cli ping | grep PONG"), 0, b"", b"", id="unknown-pipeline-exits-0"),
    pytest.param(("wget", "-q", "-O", "-", "http://localhost:8080/"), 0, b"<html>", b"",
                 id="wget-asks-the-pod"),
]


@pytest.mark.parametrize(("argv", "code", "stdout", "stderr"), EXEC_RULES)
def test_exec_rules(argv: tuple[str, ...], code: int, stdout: bytes, stderr: bytes) -> None:
    ctx = Context(env={"A": "a-value"}, hostname="pod-host", lookup=lambda p: FILES.get(p, b""),
                  wget=lambda url: (0, b"<html>", b""))
    outcome = evaluate(argv, ctx)
    out = b"".join(d for _, s, d in outcome.output if s == 1)
    err = b"".join(d for _, s, d in outcome.output if s == 2)
    assert (outcome.exit_code, out, err) == (code, stdout, stderr)


def test_cat_with_stdin_echoes() -> None:
    assert evaluate(("cat",), Context(stdin=True)).echo_stdin
    assert not evaluate(("cat",), Context(stdin=False)).echo_stdin  # /dev/null: EOF at once


@pytest.mark.parametrize(("word", "seconds"), [("5", 5.0), ("0.5", 0.5), ("2m", 120.0), ("1h", 3600.0),
                                               ("1d", 86400.0), ("infinity", math.inf), ("x", None),
                                               ("-1", None)])
def test_parse_seconds(word: str, seconds: float | None) -> None:
    assert parse_seconds(word) == seconds


def test_compound_commands_are_one_step() -> None:
    steps = parse("if true; then echo a; fi; for i in 1; do echo done; done && echo after")
    assert [(s.compound, s.op) for s in steps] == [(True, ";"), (True, "&&"), (False, ";")]
    with pytest.raises(ShellSyntaxError, match="expecting"):
        parse("while true; do sleep 1")


def spec(name: str, *command: str, **kw: object) -> ContainerSpec:
    return ContainerSpec(name=name, image="localhost/busybox:latest",
                         command=command, **kw)  # type: ignore[arg-type]


# (container, pod annotations, completing containers, exit_after, exit code, serves)
DERIVED = [
    pytest.param(spec("c", "sleep", "3600"), {}, (), 3600.0, 0, False, id="sleep-runs-its-time"),
    pytest.param(spec("c", "sh", "-c", "exit 2"), {}, (), 0.0, 2, False, id="exit-code"),
    pytest.param(spec("web", "httpd", "-f"), {}, (), None, 0, True, id="server-runs-until-stopped"),
    pytest.param(spec("c"), {}, (), None, 0, True, id="image-entrypoint-runs-until-stopped"),
    pytest.param(spec("init", "./setup"), {}, ("init",), 1.0, 0, True, id="init-completes-after-1s"),
    pytest.param(spec("init", "sh", "-c", "sleep 2; ./setup"), {}, ("init",), 3.0, 0, True,
                 id="init-completes-after-its-sleeps-plus-1s"),
    pytest.param(spec("job", "python", "run.py"), {"sim.orchestra.io/completion-time": "5s"}, ("job",),
                 5.0, 0, True, id="completion-time-annotation"),
    pytest.param(spec("init", "sh", "-c", "exit 1"), {}, ("init",), 0.0, 1, False,
                 id="init-recognised-failure"),
    pytest.param(spec("web", "nginx"), {"sim.orchestra.io/exit": "web after=5s code=1"}, (), 5.0, 1, True,
                 id="exit-annotation-wins"),
    pytest.param(spec("web", "sleep", "5"), {"sim.orchestra.io/exit": "* after=never"}, (), None, 0, False,
                 id="exit-annotation-never"),
    pytest.param(spec("c", "cat", tty=True), {}, (), None, 0, False, id="cat-on-a-tty-runs-until-stopped"),
]


@pytest.mark.parametrize(("container", "annotations", "completes", "exit_after", "code", "server"), DERIVED)
def test_derive(container: ContainerSpec, annotations: dict[str, str], completes: tuple[str, ...],
                exit_after: float | None, code: int, server: bool) -> None:
    script = derive(container, pod_script(annotations, completes=completes))
    assert (script.exit_after, script.exit_code, script.server) == (exit_after, code, server)
