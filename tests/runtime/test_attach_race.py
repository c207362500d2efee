"""The Podman adapter's attach when the container exits while the attach is set up: podman 4.3 then
writes its own error on stderr (or nothing at all) instead of the container's output, which is lost;
the session replaces that with the container's log when the container raced the attach
(`kubectl run -i --rm -- echo hi` printed nothing, or "Error: read unixpacket ...")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import attrs
import pytest
import trio

from orchestra.runtime._streams import _AttachOutput, _Frames

LOST = b"Error: read unixpacket @->/proc/self/fd/14/attach: read: connection reset by peer\n"


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


@attrs.define
class Session:
    """What _AttachOutput asks of the PodmanAttachSession."""

    log: list[bytes]
    ended: bool = False
    asked: int = 0

    async def lost_output(self) -> list[bytes]:
        self.asked += 1
        return list(self.log)


async def output(wire: Sequence[bytes], session: Session) -> list[tuple[int, bytes]]:
    chunks = list(wire)

    async def receive() -> bytes:
        return chunks.pop(0) if chunks else b""

    frames = _AttachOutput(cast(Any, session), _Frames(receive, tty=False))
    return [f async for f in frames]


CASES = [
    ("output-then-exit", [frame(1, b"hi\n")], ["hi\n"], [(1, b"hi\n")], 0),
    ("podman-error-instead", [frame(2, LOST)], ["hi\n"], [(1, b"hi\n")], 1),
    ("nothing-at-all", [], ["hi\n", "bye\n"], [(1, b"hi\nbye\n")], 1),
    ("part-then-error", [frame(1, b"one\n"), frame(2, LOST)], ["one\n", "two\n"],
     [(1, b"one\n"), (1, b"two\n")], 1),
    ("other-stderr-kept", [frame(2, b"Error: something of the app\n")], ["x\n"],
     [(2, b"Error: something of the app\n")], 0),
    ("too-old-to-have-raced", [frame(2, LOST)], [], [], 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("wire", "log", "expected", "asked"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_lost_output_is_replaced_by_the_log(
    wire: list[bytes], log: list[str], expected: list[tuple[int, bytes]], asked: int
) -> None:
    with trio.fail_after(5):
        session = Session([line.encode() for line in log])
        assert await output(wire, session) == expected
        assert session.asked == asked


async def test_a_session_we_ended_lost_nothing() -> None:
    with trio.fail_after(5):
        session = Session([b"hi\n"], ended=True)
        assert await output([], session) == []
        assert session.asked == 0
