"""What the simulated runtime's journal records mean: encoding its state, and rebuilding it.

Owns: the record kinds (one JSON object each; times are unix seconds, bytes are base64) and
`Restored`, the state a list of records adds up to. Only what the simulation uses is kept: a
container's spec without its resources and ports, its final labels, and its derived script
(explicit scripts of a `SimScript` are looked up again on restore).

    {"k": "gen", "n": 3}                                  opens of this state (new ids never collide)
    {"k": "img", "name": ...}                             an image pulled
    {"k": "sb", "id", "name", "uid", "ns", "host", "labels", "at"}          sandbox created
    {"k": "c", "id", "sb", "labels", "at", "infra"?, "spec"?, "image_id"?, "script"?}   container created
    {"k": "run", "id", "at", "ip"?}                       started (an infra container: the sandbox IP)
    {"k": "exit", "id", "code", "at"}                     exited
    {"k": "log", "id", "at", "s", "d"}                    a line of output
    {"k": "fs", "id", "at", "p", "d"}                     a file an exec made (d null: removed)
    {"k": "rm", "id"} / {"k": "rmsb", "id"}               container / sandbox removed
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import base64
import logging
import signal as signal_module
from collections.abc import Iterator
from typing import Any

import attrs
import orjson

from orchestra.runtime.base import ContainerSpec, ContainerState, Mount, PodSandboxSpec
from orchestra.runtime.simclock import SimClock
from orchestra.runtime.simscript import ContainerScript
from orchestra.runtime.simstate import SimContainer, SimSandbox

log = logging.getLogger("orchestra.runtime.simpersist")

Record = dict[str, Any]
INFRA_SPEC = ContainerSpec(name="infra", image="localhost/podman-pause:4.3.1-0")
INFRA_SCRIPT = ContainerScript(on_sigterm=None)
_DEFAULT_SIGTERM = 128 + signal_module.SIGTERM


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


# --- encoding ---------------------------------------------------------------------------------


def sandbox_record(sb: SimSandbox, clock: SimClock) -> Record:
    s = sb.spec
    return {"k": "sb", "id": sb.id, "name": s.name, "uid": s.uid, "ns": s.namespace, "host": s.hostname,
            "labels": sb.labels, "at": clock.to_unix(sb.created_at)}


def _spec(spec: ContainerSpec) -> Record:
    out: Record = {"name": spec.name, "image": spec.image}
    for key, value in (("cmd", list(spec.command)), ("args", list(spec.args)), ("env", dict(spec.env)),
                       ("wd", spec.working_dir), ("tty", spec.tty), ("stdin", spec.stdin),
                       ("once", spec.stdin_once), ("sig", spec.stop_signal),
                       ("mounts", [[m.host_path, m.container_path, m.read_only] for m in spec.mounts])):
        if value:
            out[key] = value
    return out


def _script(script: ContainerScript) -> Record:
    out: Record = {}
    if script.exit_after is not None:
        out["after"] = script.exit_after
    if script.exit_code:
        out["code"] = script.exit_code
    if script.on_sigterm != _DEFAULT_SIGTERM:
        out["term"] = script.on_sigterm
    if script.output:
        out["out"] = [[at, stream, _b64(data)] for at, stream, data in script.output]
    if script.files:
        out["files"] = [[at, path, None if data is None else _b64(data)] for at, path, data in script.files]
    if script.echo_stdin:
        out["echo"] = True
    if script.server:
        out["server"] = True
    return out


def container_record(c: SimContainer, clock: SimClock) -> Record:
    out: Record = {"k": "c", "id": c.id, "sb": c.sandbox.id, "labels": c.labels,
                   "at": clock.to_unix(c.created_at)}
    if c.infra:
        out["infra"] = True
        return out
    out["spec"], out["image_id"], out["script"] = _spec(c.spec), c.image_id, _script(c.script)
    return out


def start_record(c: SimContainer, clock: SimClock) -> Record:
    assert c.started_at is not None
    out: Record = {"k": "run", "id": c.id, "at": clock.to_unix(c.started_at)}
    if c.infra and c.sandbox.ip:
        out["ip"] = c.sandbox.ip
    return out


def exit_record(c: SimContainer, clock: SimClock) -> Record:
    assert c.finished_at is not None
    return {"k": "exit", "id": c.id, "code": c.exit_code, "at": clock.to_unix(c.finished_at)}


def log_record(c: SimContainer, at: float, stream: int, data: bytes, clock: SimClock) -> Record:
    return {"k": "log", "id": c.id, "at": clock.to_unix(at), "s": stream, "d": _b64(data)}


def file_record(c: SimContainer, at: float, path: str, data: bytes | None, clock: SimClock) -> Record:
    return {"k": "fs", "id": c.id, "at": clock.to_unix(at), "p": path,
            "d": None if data is None else _b64(data)}


def snapshot(generation: int, images: set[str], sandboxes: list[SimSandbox], clock: SimClock) -> list[bytes]:
    """Every record needed to rebuild this state, encoded."""
    return [orjson.dumps(r) + b"\n" for r in _snapshot_records(generation, images, sandboxes, clock)]


def _snapshot_records(generation: int, images: set[str], sandboxes: list[SimSandbox],
                      clock: SimClock) -> Iterator[Record]:
    yield {"k": "gen", "n": generation}
    for name in sorted(images):
        yield {"k": "img", "name": name}
    for sb in sandboxes:
        yield sandbox_record(sb, clock)
        for c in sb.members.values():
            yield container_record(c, clock)
            if c.started_at is not None:
                yield start_record(c, clock)
            if c.state == ContainerState.EXITED and c.finished_at is not None:
                yield exit_record(c, clock)
            for at, stream, data in c.log:
                yield log_record(c, at, stream, data, clock)
            for at, path, content in c.exec_files:
                yield file_record(c, at, path, content, clock)


# --- restoring --------------------------------------------------------------------------------


@attrs.define
class Restored:
    """The state the records add up to (trio times through the clock of this process)."""

    clock: SimClock
    generation: int = 0
    images: set[str] = attrs.field(factory=set)
    sandboxes: dict[str, SimSandbox] = attrs.field(factory=dict)
    containers: dict[str, SimContainer] = attrs.field(factory=dict)

    def apply(self, record: Record) -> None:
        """Add one record (an unknown kind is skipped; so is a malformed one, with a warning)."""
        handler = getattr(self, f"_apply_{record.get('k')}", None)
        if handler is None:
            return
        try:
            handler(record)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # a record this version cannot read (written by another one, or damaged in place): the
            # rest of the state is still worth restoring; the object it describes may be incomplete
            log.warning("simulated runtime state: skipping a malformed %r record (%r): %s",
                        record.get("k"), exc, str(record)[:200])

    def _apply_gen(self, r: Record) -> None:
        self.generation = int(r["n"])

    def _apply_img(self, r: Record) -> None:
        self.images.add(r["name"])

    def _apply_sb(self, r: Record) -> None:
        spec = PodSandboxSpec(name=r["name"], uid=r["uid"], namespace=r["ns"], hostname=r.get("host", ""))
        self.sandboxes[r["id"]] = SimSandbox(id=r["id"], spec=spec, labels=dict(r["labels"]),
                                             created_at=self.clock.from_unix(r["at"]))

    def _apply_c(self, r: Record) -> None:
        sb = self.sandboxes.get(r["sb"])
        if sb is None:
            return
        if r.get("infra"):
            spec, script, image_id = INFRA_SPEC, INFRA_SCRIPT, ""
        else:
            spec, script = _decode_spec(r["spec"], r["labels"]), _decode_script(r["script"])
            image_id = r["image_id"]
        c = SimContainer(id=r["id"], name=spec.name, sandbox=sb, spec=spec, script=script, image=spec.image,
                         image_id=image_id, labels=dict(r["labels"]), infra=bool(r.get("infra")),
                         created_at=self.clock.from_unix(r["at"]))
        if c.infra:
            sb.infra = c
        sb.members[c.id] = c
        self.containers[c.id] = c

    def _apply_run(self, r: Record) -> None:
        c = self.containers.get(r["id"])
        if c is not None:
            started = self.clock.from_unix(r["at"])
            c.state, c.started_at, c.exit_code, c.finished_at = ContainerState.RUNNING, started, None, None
            if c.infra:
                c.sandbox.ip = r.get("ip", "")

    def _apply_exit(self, r: Record) -> None:
        c = self.containers.get(r["id"])
        if c is not None:
            code, finished = int(r["code"]), self.clock.from_unix(r["at"])
            c.state, c.exit_code, c.finished_at = ContainerState.EXITED, code, finished

    def _apply_log(self, r: Record) -> None:
        c = self.containers.get(r["id"])
        if c is not None:
            c.log.append((self.clock.from_unix(r["at"]), int(r["s"]), _unb64(r["d"])))

    def _apply_fs(self, r: Record) -> None:
        c = self.containers.get(r["id"])
        if c is not None:
            change = (self.clock.from_unix(r["at"]), r["p"], None if r["d"] is None else _unb64(r["d"]))
            c.exec_files = (*c.exec_files, change)

    def _apply_rm(self, r: Record) -> None:
        c = self.containers.pop(r["id"], None)
        if c is not None:
            c.sandbox.members.pop(c.id, None)

    def _apply_rmsb(self, r: Record) -> None:
        sb = self.sandboxes.pop(r["id"], None)
        for c in (sb.members.values() if sb is not None else ()):
            self.containers.pop(c.id, None)


def _decode_spec(r: Record, labels: dict[str, str]) -> ContainerSpec:
    fields: dict[str, Any] = {"command": r.get("cmd", ()), "args": r.get("args", ()),
                              "mounts": [Mount(h, c, ro) for h, c, ro in r.get("mounts", ())]}
    return ContainerSpec(name=r["name"], image=r["image"], env=r.get("env", {}), working_dir=r.get("wd", ""),
                         labels=labels, tty=r.get("tty", False), stdin=r.get("stdin", False),
                         stdin_once=r.get("once", False), stop_signal=r.get("sig", ""), **fields)


def _decode_script(r: Record) -> ContainerScript:
    output = tuple((at, int(stream), _unb64(data)) for at, stream, data in r.get("out", ()))
    files = tuple((at, path, None if data is None else _unb64(data)) for at, path, data in r.get("files", ()))
    return ContainerScript(exit_after=r.get("after"), exit_code=r.get("code", 0),
                           on_sigterm=r.get("term", _DEFAULT_SIGTERM), output=output, files=files,
                           echo_stdin=r.get("echo", False), server=r.get("server", False))
