"""Moving bytes between two connections, shared by the service proxy and the ingress controller.

Owns: `connect` (a TCP connection to a numeric endpoint, bounded by CONNECT_TIMEOUT), `bulk` (undoing
trio's TCP_NOTSENT_LOWAT for sockets that stream), and the one-direction pumps: `splice_pump`
(socket → pipe → socket in the kernel, both ends plain TCP), `copy_pump` (through user space, for
any trio Stream, e.g. TLS), and `PUMP`, the best one for two TCP sockets on this system. A pump
half-closes its destination when its source ends (when the destination can be half-closed) and
closes it when either side breaks, so the opposite pump ends too.
Must not import: apiserver, cli, runtime, node, or the rest of net.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

import trio

CONNECT_TIMEOUT = 3.0
BUFSIZE = 256 * 1024
PIPE_SIZE = 1024 * 1024  # splice pipe capacity (fs.pipe-max-size is 1 MiB by default)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
NOTSENT_LOWAT_OFF = 2**31 - 1  # the kernel's default (net.ipv4.tcp_notsent_lowat, "unlimited")
YIELD_EVERY = 8  # chunks a pump may move without waiting before it lets other tasks run
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


async def connect(backend: tuple[str, int]) -> trio.SocketStream:
    """A TCP connection to a numeric endpoint address (no resolver, no happy-eyeballs nursery:
    this is on every connection's path)."""
    family = trio.socket.AF_INET6 if ":" in backend[0] else trio.socket.AF_INET
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            await sock.connect(backend)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


def bulk(sock: trio.socket.SocketType) -> None:
    """Undo trio's TCP_NOTSENT_LOWAT (16 KiB, for interactive senders): with it every socket
    accepts only ~16 KiB ahead of the wire, so a MiB takes dozens of wake-ups. TCP_NODELAY, which
    trio also sets, stays: the proxy forwards what it has at once."""
    if hasattr(trio.socket, "TCP_NOTSENT_LOWAT"):
        with contextlib.suppress(OSError):  # not TCP (a test's socketpair): nothing to tune
            sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_OFF)


async def copy_pump(src: trio.abc.ReceiveStream, dst: trio.abc.SendStream, bufsize: int = BUFSIZE) -> None:
    """Forward src → dst through user space (where os.splice is not available, or for TLS)."""
    try:
        while True:
            data = await src.receive_some(bufsize)
            if not data:
                break
            await dst.send_all(data)
        if isinstance(dst, trio.abc.HalfCloseableStream):
            await dst.send_eof()  # half-close: the other direction may still be talking
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await trio.aclose_forcefully(dst)


async def splice_pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    """Forward src → dst in the kernel: socket → pipe → socket with splice(2), no copy through
    Python. trio only waits for readiness; both sockets are non-blocking, and so is the pipe."""
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # a smaller pipe only means more rounds
            fcntl.fcntl(wfd, F_SETPIPE_SZ, PIPE_SIZE)
        s, d = src.socket, dst.socket
        busy = 0  # chunks moved since this task last waited
        while True:
            try:
                n = os.splice(s.fileno(), wfd, PIPE_SIZE, flags=SPLICE_FLAGS)
            except BlockingIOError:  # the pipe is empty here, so: nothing to read yet
                await trio.lowlevel.wait_readable(s)
                busy = 0
                continue
            if n == 0:
                break
            while n:
                try:
                    n -= os.splice(rfd, d.fileno(), n, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(d)
                    busy = 0
            busy += 1
            if busy >= YIELD_EVERY:  # a sender that never blocks must not starve the other tasks
                await trio.lowlevel.checkpoint()
                busy = 0
        d.shutdown(trio.socket.SHUT_WR)  # half-close: the other direction may still be talking
    except (trio.ClosedResourceError, OSError):
        await trio.aclose_forcefully(dst)
    finally:
        os.close(rfd)
        os.close(wfd)


PUMP = splice_pump if hasattr(os, "splice") else copy_pump
