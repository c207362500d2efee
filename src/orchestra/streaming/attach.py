"""pods/attach: the kubelet's attach to a container's main process, over exec's channels.

Owns: `AttachOptions` (the query: container, stdin, stdout, stderr, tty) and `serve_attach`, which
behaves like kubelet on containerd:
* the TTY is the container's own (`tty` in its spec), whatever the client asked (kubectl asks for
  what it read in the pod); with a TTY there is no stderr channel;
* stdin reaches the process only when the container has `stdin: true`; otherwise the client's
  input (and its end) is dropped, as containerd does; kubelet refuses nothing here;
* the client's stdin EOF closes the container's stdin when it has `stdinOnce` and no TTY (output
  goes on until the process exits), and ends the session otherwise (runtime.base.AttachSession);
* the status channel gets Success when the session ends (the process exited, or stdin ended it),
  and InternalError "error attaching to container: ..." when the runtime fails midway;
* a container that is not running refuses the upgrade (kubectl run then falls back to logs).
Transports, protocol negotiation and input are exec's (remotecommand.py).
Must not import: cli, reconcilers, node; from runtime only the `base` contract.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import attrs
import trio

from orchestra.api.errors import ApiError, BadRequest, InternalError
from orchestra.runtime.base import AttachSession, Runtime, RuntimeFailure
from orchestra.streaming.remotecommand import (
    CommandChannels,
    negotiate,
    pod_label,
    pump_input,
    serve_channels,
)
from orchestra.streaming.request import StreamRequest
from orchestra.streaming.websocket_channels import WebSocket, success_status


@attrs.frozen
class AttachOptions:
    container: str | None
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_request(cls, req: StreamRequest) -> AttachOptions:
        opts = cls(container=req.arg("container"), stdin=req.flag("stdin"), stdout=req.flag("stdout"),
                   stderr=req.flag("stderr"), tty=req.flag("tty"))
        if not (opts.stdin or opts.stdout or opts.stderr):
            raise BadRequest("you must specify at least 1 of stdin, stdout, stderr")  # kubelet's wording
        return opts


@attrs.frozen
class _Streams:
    """What actually flows: the container's TTY, and stdin only into a container that has one."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def of(cls, opts: AttachOptions, container: dict[str, Any]) -> _Streams:
        tty = bool(container.get("tty"))
        return cls(stdin=opts.stdin and bool(container.get("stdin")), stdout=opts.stdout,
                   stderr=opts.stderr and not tty, tty=tty)


def container_spec(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if container.get("name") == name:
                return dict(container)
    return {}


async def serve_attach(req: StreamRequest, ws: WebSocket | None, pod: dict[str, Any], container: str,
                       runtime: Runtime, cid: str, opts: AttachOptions) -> None:
    """Attach the client to `cid` (the pod's `container`), or refuse the upgrade with a Status."""
    proto = negotiate(req, ws, "attach")
    flows = _Streams.of(opts, container_spec(pod, container))
    # Input a container cannot take still keeps the session open until the process exits.
    output = flows.stdout or not (flows.stdin or flows.stderr)
    async with AsyncExitStack() as stack:
        try:
            session = await stack.enter_async_context(
                runtime.attach(cid, stdin=flows.stdin, stdout=output, stderr=flows.stderr, tty=flows.tty))
        except RuntimeFailure as exc:
            raise _refused(pod, container, exc) from None
        await serve_channels(req, ws, proto, opts, partial(_run_attach, session=session, flows=flows))


async def _run_attach(chans: CommandChannels, *, session: AttachSession, flows: _Streams) -> None:
    with trio.CancelScope() as gone:  # cancelled when the client disconnects: no status to send
        status = success_status()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(pump_input, chans, session, stdin=flows.stdin, gone=gone))
                async for stream, data in session:
                    if (stream == 1 and flows.stdout) or (stream == 2 and flows.stderr):
                        await chans.send(stream, data)
                await session.wait()
                nursery.cancel_scope.cancel()
        except* RuntimeFailure as failed:  # (the nursery wraps what its body raises)
            status = InternalError(f"error attaching to container: {failed.exceptions[0]}").status()
        await chans.send_status(status)


def _refused(pod: dict[str, Any], container: str, exc: RuntimeFailure) -> ApiError:
    return InternalError(f"unable to attach to container {container} of pod {pod_label(pod)}: {exc}")
