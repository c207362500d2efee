"""Plain HTTP sent to the TLS port: recognised from the first bytes and answered as Go answers it.

Owns: reading a connection's first bytes before the TLS handshake (h11server replays them into
it), telling an HTTP request line from a TLS record, and Go net/http's answer to it
(`tlsRecordHeaderLooksLikeHTTP`: "HTTP/1.0 400 Bad Request" with "Client sent an HTTP request to
an HTTPS server."), which kube-apiserver's clients know.
Must not import: anything outside trio (it is part of the HTTP server, which knows no Kubernetes).
"""

from __future__ import annotations

import trio

__all__ = ["ANSWER", "answer", "looks_like_http", "read_first_bytes"]

_HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO")  # the five-byte TLS record header's place
ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_READ = 64 * 1024


async def read_first_bytes(stream: trio.abc.Stream, head: bytearray) -> None:
    """Read into `head` up to the five bytes a client sends first: fewer if it stops or breaks (the
    TLS handshake then sees that for itself). The caller bounds the wait with a cancel scope;
    what was read by then stays in `head`."""
    while len(head) < len(_HTTP_STARTS[0]):
        try:
            data = await stream.receive_some(len(_HTTP_STARTS[0]) - len(head))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the handshake will see the broken connection
        if not data:
            return
        head += data


def looks_like_http(head: bytes | bytearray) -> bool:
    return bytes(head) in _HTTP_STARTS


async def answer(tcp: trio.SocketStream, linger: float, linger_bytes: int) -> None:
    """Send ANSWER and close. What is left of the request is read and dropped first (for at most
    `linger` seconds): closing with unread input would reset the connection, and the client would
    lose the answer."""
    with trio.move_on_after(linger):
        try:
            await tcp.send_all(ANSWER)
            await tcp.send_eof()
            swallowed = 0
            while swallowed < linger_bytes and (data := await tcp.receive_some(_READ)):
                swallowed += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client left; nobody to tell
    await trio.aclose_forcefully(tcp)
