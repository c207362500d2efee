"""The `sim.orchestra.io/*` annotation grammar (simrules.py): what it reads, and the errors it gives."""

from __future__ import annotations

import math

import pytest

from orchestra.runtime.simrules import (
    ExecScript,
    ExitRule,
    ProbeFailure,
    ScriptError,
    parse_duration,
    pod_script,
)


@pytest.mark.parametrize(("text", "seconds"), [("10", 10.0), ("2.5", 2.5), ("10s", 10.0), ("1m30s", 90.0),
                                               ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "x") == pytest.approx(seconds)


def test_probe_failures_and_windows() -> None:
    rules = "web/readiness after=10s for=30s, */liveness;db/*"
    script = pod_script({"sim.orchestra.io/probe-failure": rules})
    assert script.probe_failures == (ProbeFailure("web", "readiness", 10.0, 30.0),
                                     ProbeFailure("*", "liveness", 0.0, math.inf),
                                     ProbeFailure("db", "*", 0.0, math.inf))
    fails = [script.probe_fails("web", "readiness", t) for t in (9.9, 10.0, 39.9, 40.0)]
    assert fails == [False, True, True, False]
    assert script.probe_fails("anything", "liveness", 1e9)
    assert script.probe_fails("db", "startup", 0) and not script.probe_fails("web", "startup", 0)


def test_exit_rules_by_name_then_star() -> None:
    script = pod_script({"sim.orchestra.io/exit": "* code=3\nweb after=never"})
    assert script.exit_for("web") == ExitRule("web", None, 0)
    assert script.exit_for("side") == ExitRule("*", 0.0, 3)


def test_exec_answers_by_command_line_and_sh_script() -> None:
    script = pod_script({"sim.orchestra.io/exec": '{"cat /ready": "yes\\n", '
                                                  '"check": {"exitCode": 1, "stderr": "down\\n"}}'})
    assert script.exec_answer(["cat", "/ready"]) == ExecScript(stdout=b"yes\n")
    assert script.exec_answer(["sh", "-c", "check"]) == ExecScript(exit_code=1, stderr=b"down\n")
    assert script.exec_answer(["busybox", "cat", "/ready"]) == ExecScript(stdout=b"yes\n")
    assert script.exec_answer(["cat", "/other"]) is None


def test_completing_containers_and_default_completion_time() -> None:
    script = pod_script({}, completes=["init"])
    assert script.completes == frozenset({"init"}) and script.completion_time == 1.0


@pytest.mark.parametrize(("annotations", "message"), [
    pytest.param({"sim.orchestra.io/completion-time": "soon"},
                 "sim.orchestra.io/completion-time: invalid duration 'soon'",
                 id="bad-duration"),
    pytest.param({"sim.orchestra.io/exit": "web code=300"}, "invalid code '300'", id="bad-code"),
    pytest.param({"sim.orchestra.io/exit": "web at=5"}, "unexpected 'at=5'", id="unknown-key"),
    pytest.param({"sim.orchestra.io/probe-failure": "web"}, "invalid target 'web'", id="target-without-kind"),
    pytest.param({"sim.orchestra.io/probe-failure": "web/health"}, "invalid target 'web/health'",
                 id="unknown-kind"),
    pytest.param({"sim.orchestra.io/exec": "{"}, "sim.orchestra.io/exec: not valid JSON", id="bad-json"),
    pytest.param({"sim.orchestra.io/exec": '{"x": 1}'}, "must be a string", id="bad-answer"),
    pytest.param({"sim.orchestra.io/exec": '{"x": {"exitCode": 256}}'}, "exitCode of 'x'",
                 id="bad-exit-code"),
    pytest.param({"sim.orchestra.io/fail": "x"}, "unknown simulation annotation 'sim.orchestra.io/fail'",
                 id="unknown-annotation"),
])
def test_errors_name_the_annotation(annotations: dict[str, str], message: str) -> None:
    with pytest.raises(ScriptError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pod_script(annotations)


def test_other_annotations_are_ignored() -> None:
    assert pod_script({"kubectl.kubernetes.io/restartedAt": "now"}).exits == ()
