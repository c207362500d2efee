"""Per-pod scripting of simulated containers, from the pod's `sim.orchestra.io/*` annotations.

Owns: `PodScript` (what one pod's annotations ask of the simulation, plus which of its containers
"complete": init containers and the containers of a Job's pods), the annotation grammar and its
errors (`ScriptError`, naming the annotation), `ExecScript` (an exec's scripted answer), and Go-style
durations. The node layer builds a
PodScript per pod (`pod_script(annotations, completes=...)`) and hands it to the runtime.

    sim.orchestra.io/completion-time: "3s"         unrecognised programs of completing containers end
                                                    (exit 0) after this long (default 1s)
    sim.orchestra.io/exit: "web after=5s code=1"    the container's process exits after 5 s with 1,
                                                    whatever its command ("after=never": runs until stopped)
    sim.orchestra.io/probe-failure: "web/readiness after=10s for=30s, db/liveness"
                                                    that probe fails from 10 s after the container
                                                    (each instance) started, for 30 s (default: from
                                                    the start, for ever); `*` for any container or kind
    sim.orchestra.io/exec: '{"cat /ready": "yes\\n", "check": {"exitCode": 1, "stderr": "down\\n"}}'
                                                    exec answers by command line (also a `sh -c` script)
Rules in one annotation are separated by commas, semicolons or newlines.
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

PREFIX = "sim.orchestra.io/"
COMPLETION_TIME = PREFIX + "completion-time"
EXIT = PREFIX + "exit"
PROBE_FAILURE = PREFIX + "probe-failure"
EXEC = PREFIX + "exec"
KNOWN = (COMPLETION_TIME, EXIT, PROBE_FAILURE, EXEC)
DEFAULT_COMPLETION_TIME = 1.0
PROBE_KINDS = ("startup", "liveness", "readiness")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@attrs.frozen
class ExecScript:
    """What an exec answers (a pod's `sim.orchestra.io/exec` rule, or a test's explicit script)."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    duration: float = 0.0


class ScriptError(ValueError):
    """An annotation the simulation cannot read; the message names it and says what is wrong."""


@attrs.frozen
class ExitRule:
    container: str  # a container name or "*"
    after: float | None  # None: never exits
    code: int = 0


@attrs.frozen
class ProbeFailure:
    container: str  # a container name or "*"
    kind: str  # startup | liveness | readiness | *
    after: float = 0.0
    duration: float = math.inf

    def covers(self, container: str, kind: str, elapsed: float) -> bool:
        return (self.container in ("*", container) and self.kind in ("*", kind)
                and self.after <= elapsed < self.after + self.duration)


@attrs.frozen
class PodScript:
    # containers whose unrecognised programs end after completion_time
    completes: frozenset[str] = frozenset()
    completion_time: float = DEFAULT_COMPLETION_TIME
    exits: tuple[ExitRule, ...] = ()
    probe_failures: tuple[ProbeFailure, ...] = ()
    exec: Mapping[str, ExecScript] = attrs.field(factory=dict)

    def exit_for(self, container: str) -> ExitRule | None:
        named = ([r for r in self.exits if r.container == container]
                 or [r for r in self.exits if r.container == "*"])
        return named[0] if named else None

    def probe_fails(self, container: str, kind: str, elapsed: float) -> bool:
        return any(f.covers(container, kind, elapsed) for f in self.probe_failures)

    def exec_answer(self, argv: Sequence[str]) -> ExecScript | None:
        if not self.exec:
            return None
        words = list(argv[1:]) if argv[:1] == ["busybox"] else list(argv)
        answer = self.exec.get(" ".join(words))
        if answer is None and len(words) >= 3 and words[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash") \
                and words[1].startswith("-") and "c" in words[1]:
            answer = self.exec.get(words[2].strip())
        return answer


def parse_duration(text: str, annotation: str) -> float:
    """A Go duration (`1m30s`, `500ms`) or a number of seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ScriptError(f"{annotation}: invalid duration {text!r} "
                              "(expected e.g. 10s, 1m30s, 500ms or seconds)") from None
        value = sum(float(n) * _UNITS[u] for n, u in parts)
    if value < 0 or not math.isfinite(value):
        raise ScriptError(f"{annotation}: invalid duration {text!r} (must be a finite number >= 0)")
    return value


def _rules(value: str) -> list[list[str]]:
    return [rule.split() for rule in re.split(r"[,;\n]", value) if rule.strip()]


def _options(words: list[str], allowed: set[str], annotation: str) -> dict[str, str]:
    options = {}
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or key not in allowed:
            raise ScriptError(f"{annotation}: unexpected {word!r} "
                              f"(allowed: {', '.join(sorted(allowed))}, as key=value)")
        options[key] = val
    return options


def _exits(value: str) -> tuple[ExitRule, ...]:
    out = []
    for target, *words in _rules(value):
        opts = _options(words, {"after", "code"}, EXIT)
        after = opts.get("after", "0")
        code = opts.get("code", "0")
        if not code.isdigit() or int(code) > 255:
            raise ScriptError(f"{EXIT}: invalid code {code!r} (an exit code, 0 to 255)")
        seconds = None if after in ("never", "inf", "infinity") else parse_duration(after, EXIT)
        out.append(ExitRule(target, seconds, int(code)))
    return tuple(out)


def _probe_failures(value: str) -> tuple[ProbeFailure, ...]:
    out = []
    for target, *words in _rules(value):
        container, sep, kind = target.partition("/")
        if not sep or not container or kind not in (*PROBE_KINDS, "*"):
            raise ScriptError(f"{PROBE_FAILURE}: invalid target {target!r} (expected <container>/<kind>, "
                              f"kind one of {', '.join(PROBE_KINDS)} or *)")
        opts = _options(words, {"after", "for"}, PROBE_FAILURE)
        after = parse_duration(opts.get("after", "0"), PROBE_FAILURE)
        duration = parse_duration(opts["for"], PROBE_FAILURE) if "for" in opts else math.inf
        out.append(ProbeFailure(container, kind, after, duration))
    return tuple(out)


def _exec_answers(value: str) -> dict[str, ExecScript]:
    try:
        table = json.loads(value)
    except ValueError as exc:
        raise ScriptError(f"{EXEC}: not valid JSON ({exc})") from None
    if not isinstance(table, dict):
        raise ScriptError(f"{EXEC}: expected a JSON object mapping command lines to answers")
    out = {}
    for command, answer in table.items():
        if isinstance(answer, str):
            out[command.strip()] = ExecScript(stdout=answer.encode())
            continue
        if not isinstance(answer, dict) or set(answer) - {"stdout", "stderr", "exitCode"}:
            raise ScriptError(f"{EXEC}: the answer to {command!r} must be a string (stdout) or an object "
                              "with stdout, stderr and exitCode")
        code = answer.get("exitCode", 0)
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
            raise ScriptError(f"{EXEC}: exitCode of {command!r} must be an integer from 0 to 255")
        if not all(isinstance(answer.get(k, ""), str) for k in ("stdout", "stderr")):
            raise ScriptError(f"{EXEC}: stdout and stderr of {command!r} must be strings")
        out[command.strip()] = ExecScript(exit_code=code, stdout=answer.get("stdout", "").encode(),
                                          stderr=answer.get("stderr", "").encode())
    return out


def pod_script(annotations: Mapping[str, str], *, completes: Iterable[str] = ()) -> PodScript:
    """The PodScript of a pod with these annotations (only `sim.orchestra.io/` ones are read)."""
    unknown = sorted(k for k in annotations if k.startswith(PREFIX) and k not in KNOWN)
    if unknown:
        raise ScriptError(f"unknown simulation annotation {unknown[0]!r} (known: {', '.join(KNOWN)})")
    completion = annotations.get(COMPLETION_TIME)
    return PodScript(
        completes=frozenset(completes),
        completion_time=(parse_duration(completion, COMPLETION_TIME) if completion
                         else DEFAULT_COMPLETION_TIME),
        exits=_exits(annotations.get(EXIT, "")),
        probe_failures=_probe_failures(annotations.get(PROBE_FAILURE, "")),
        exec=_exec_answers(annotations[EXEC]) if EXEC in annotations else {},
    )
