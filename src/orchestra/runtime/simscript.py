"""The script of the simulated runtime (kwok-style): what simulated containers do, which images
exist and can be pulled, and how execs answer.

Owns: `ContainerScript`, `SimScript` (explicit scripts looked up by container name,
then by image; a container without one gets `derive`d from its command by the command rules of
simcommand.py and its pod's `PodScript` from simrules.py), `signal_number` and `normalize_image`
(short names resolve to localhost/, a missing tag is :latest, like Podman). `ExecScript` (an exec's
scripted answer) lives in simrules.py, beside the pod scripts that hold them, and is re-exported here.
Must not import: podman, httpx, anything above the runtime layer.
"""

from __future__ import annotations

import functools
import math
import signal as signal_module
from collections.abc import Callable, Mapping

import attrs

from orchestra.runtime.base import ContainerSpec
from orchestra.runtime.simclock import EPOCH as EPOCH
from orchestra.runtime.simcommand import Context, FileEvent, evaluate
from orchestra.runtime.simrules import ExecScript as ExecScript
from orchestra.runtime.simrules import ExitRule, PodScript

ExecHandler = Callable[[tuple[str, ...]], ExecScript | None]


@attrs.frozen
class ContainerScript:
    """What the container's main process does once started."""

    start_delay: float = 0.0  # start_container returns after this long
    output: tuple[tuple[float, int, bytes], ...] = ()  # (seconds after start, 1|2, line)
    exit_after: float | None = None  # None: runs until stopped/killed
    exit_code: int = 0
    on_sigterm: int | None = 128 + signal_module.SIGTERM  # None: ignores it (PID 1, no handler)
    start_error: str | None = None  # start fails (e.g. "executable file not found"), exit 127
    serves: Mapping[int, bytes] = attrs.field(factory=dict)  # port -> body for `wget` from the pod
    exec: Mapping[tuple[str, ...], ExecScript] = attrs.field(factory=dict)
    exec_handler: ExecHandler | None = None
    echo_stdin: bool = False  # after `output`, runs like `cat` until stdin's EOF, then exits with exit_code
    # (seconds after start, path, content | None: removed): the files its commands make
    files: tuple[FileEvent, ...] = ()
    server: bool = False  # answers `wget` on every port of the pod (runs an unrecognised program: a server)
    cpu: float = 0.0008  # cores it keeps busy while running (`kubectl top` rounds up: 1m)
    memory: int = 4 << 20  # working set bytes while running (4Mi)


@attrs.define
class SimScript:
    """Scripted behaviour, looked up by container name, then by image."""

    containers: dict[str, ContainerScript] = attrs.field(factory=dict)
    images: dict[str, ContainerScript] = attrs.field(factory=dict)
    present_images: set[str] = attrs.field(factory=lambda: {"localhost/busybox:latest"})
    pullable_images: set[str] = attrs.field(factory=set)  # pulls of these succeed
    pull_any: bool = (
        False  # every pull succeeds (simulated nodes of `orchestra up`: there is no registry to ask)
    )
    pull_errors: dict[str, str] = attrs.field(factory=dict)  # image -> error (ImagePullError)
    pull_delay: float = 0.0
    sandbox_start_delay: float = 0.0
    pods: dict[str, PodScript] = attrs.field(factory=dict)  # pod uid -> its annotations' script (simrules.py)

    def explicit(self, spec: ContainerSpec) -> ContainerScript | None:
        return self.containers.get(spec.name) or self.images.get(spec.image)

    def for_container(self, spec: ContainerSpec, pod_uid: str = "", hostname: str = "") -> ContainerScript:
        """The explicit script for this container, else what its command and its pod's script make of it."""
        return self.explicit(spec) or derive(spec, self.pods.get(pod_uid), hostname)


def derive(spec: ContainerSpec, pod: PodScript | None, hostname: str = "") -> ContainerScript:
    """A container's behaviour from its command (simcommand.py) and its pod's script (simrules.py):
    an `exit` rule wins; a recognised command runs as evaluated; an unrecognised program (a server, the
    image's own entrypoint) runs until stopped, or, in a completing container (an init container, a Job's
    pod), exits 0 after the pod's completion time. Scripts are shared between containers alike (a
    Deployment's 30,000 replicas evaluate their command once)."""
    argv = (*spec.command, *spec.args)
    # the environment and hostname matter only to commands that can read them
    reads = any("$" in w or "env" in w or "hostname" in w.lower() for w in argv)
    env = tuple(sorted(spec.env.items())) if reads else ()
    rule = pod.exit_for(spec.name) if pod is not None else None
    completes = pod is not None and spec.name in pod.completes
    completion = pod.completion_time if pod is not None else 0.0
    return _derive(argv, spec.stdin, spec.tty, env, hostname if reads else "", rule, completes, completion)


@functools.lru_cache(maxsize=1024)
def _derive(argv: tuple[str, ...], stdin: bool, tty: bool, env: tuple[tuple[str, str], ...], hostname: str,
            rule: ExitRule | None, completes: bool, completion_time: float) -> ContainerScript:
    outcome = evaluate(argv, Context(env=dict(env), hostname=hostname, stdin=stdin or tty))
    exit_code = outcome.exit_code
    exit_after: float | None = outcome.duration
    if rule is not None:
        exit_after, exit_code = rule.after, rule.code
    elif outcome.open_ended:
        exit_after, exit_code = (outcome.duration + completion_time, 0) if completes else (None, 0)
    elif outcome.echo_stdin:
        exit_after = None  # `cat` until stdin's EOF (a TTY without stdin never sends one)
    if exit_after == math.inf:
        exit_after = None
    return ContainerScript(output=outcome.output, exit_after=exit_after, exit_code=exit_code,
                           files=outcome.files, echo_stdin=outcome.echo_stdin and stdin,
                           server=outcome.open_ended)


def normalize_image(ref: str) -> str:
    """Short names resolve to localhost/ like Podman's local lookup; a missing tag is :latest."""
    name = ref
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "localhost/" + name
    return name


def signal_number(signal: str | int) -> int:
    if isinstance(signal, int) or signal.isdigit():
        return int(signal)
    name = signal.upper()
    return int(signal_module.Signals[name if name.startswith("SIG") else "SIG" + name])
