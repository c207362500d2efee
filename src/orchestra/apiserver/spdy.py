"""SPDY/3.1 framing, sans-I/O: what kubectl's port-forward speaks inside its WebSocket tunnel.

Owns: encoding and decoding of SPDY/3 frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING,
GOAWAY, HEADERS, WINDOW_UPDATE and DATA), the header-block compression context (one zlib
compressor and one decompressor per connection, primed with the SPDY/3 dictionary, each block
ended with Z_SYNC_FLUSH), and receive-side flow-control accounting. No I/O: feed bytes in with
`receive_data`, send what `encode` returns (like h11 and wsproto).
Must not import: trio, anything above the apiserver layer.

Flow control, one-sided on purpose: we announce consumed bytes with WINDOW_UPDATE (per stream and,
as SPDY/3.1 adds, for the session on stream 0), so a peer that honours windows never stalls. We do
not throttle what we send: client-go's SPDY library (moby/spdystream) never sends WINDOW_UPDATE,
so honouring the 64 KiB initial window would stall every transfer larger than that.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterable, Mapping

import attrs

VERSION = 3
INITIAL_WINDOW = 64 * 1024
MAX_DATA = (1 << 24) - 1

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# The SPDY/3 header dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): length-prefixed words,
# then a run of status codes and common header values. 1,423 bytes, Adler-32 0xe3c6a7c2.
_WORD_TEXT = (
    "options,head,post,put,delete,trace,accept,accept-charset,accept-encoding,accept-language,"
    "accept-ranges,age,allow,authorization,cache-control,connection,content-base,content-encoding,"
    "content-language,content-length,content-location,content-md5,content-range,content-type,date,"
    "etag,expect,expires,from,host,if-match,if-modified-since,if-none-match,if-range,"
    "if-unmodified-since,last-modified,location,max-forwards,pragma,proxy-authenticate,"
    "proxy-authorization,range,referer,retry-after,server,te,trailer,transfer-encoding,upgrade,"
    "user-agent,vary,via,warning,www-authenticate,method,get,status,200 OK,version,HTTP/1.1,url,"
    "public,set-cookie,keep-alive,origin"
)
_WORDS = _WORD_TEXT.split(",")
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
DICTIONARY_ADLER32 = 0xE3C6A7C2


class ProtocolError(Exception):
    """The peer sent bytes that are not valid SPDY/3; the session cannot continue."""


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9


Headers = Mapping[str, str]  # lowercase names; several values of one name are joined by NUL


def _headers(value: Mapping[str, str] | None) -> dict[str, str]:
    return dict(value or {})


@attrs.frozen
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


@attrs.frozen
class SynStream:
    stream_id: int
    headers: Headers = attrs.field(factory=dict, converter=_headers, hash=False)
    associated_to: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.split("\0", 1)[0]


@attrs.frozen
class SynReply:
    stream_id: int
    headers: Headers = attrs.field(factory=dict, converter=_headers, hash=False)
    fin: bool = False


@attrs.frozen
class RstStream:
    stream_id: int
    status: int


@attrs.frozen
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    clear: bool = False


@attrs.frozen
class Ping:
    id: int


@attrs.frozen
class GoAway:
    last_good_stream_id: int
    status: int = 0


@attrs.frozen
class HeadersFrame:
    stream_id: int
    headers: Headers = attrs.field(factory=dict, converter=_headers, hash=False)
    fin: bool = False


@attrs.frozen
class WindowUpdate:
    stream_id: int  # 0: the session window (SPDY/3.1)
    delta: int


Frame = Data | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate


def _control(kind: FrameType, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def _pack_block(headers: Headers) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def _unpack_block(block: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos, headers = 4, {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4 : pos + 4 + size].decode()
            pos += 4 + size
            (size,) = struct.unpack_from(">I", block, pos)
            headers[name] = block[pos + 4 : pos + 4 + size].decode()
            pos += 4 + size
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed SPDY header block: {exc}") from None
    return headers


class Connection:
    """One SPDY/3.1 session's framing state (either side; kube's port-forward server is ours)."""

    def __init__(self, *, window_update_threshold: int = INITIAL_WINDOW // 2) -> None:
        self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                            zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._decompressor = zlib.decompressobj(15, DICTIONARY)
        self._buffer = bytearray()
        self._threshold = window_update_threshold
        self._unacked: dict[int, int] = {}  # stream id (0: session) -> bytes consumed, not yet announced

    # ------------------------------------------------------------------------------- sending

    def _compress(self, headers: Headers) -> bytes:
        block = _pack_block(headers)
        return self._compressor.compress(block) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        """The bytes of `frame`. Frames with headers advance the compressor: send them in order."""
        match frame:
            case Data(stream_id, data, fin):
                if len(data) > MAX_DATA:
                    raise ValueError(f"DATA frame of {len(data)} bytes is over the SPDY limit")
                return struct.pack(">II", stream_id & 0x7FFFFFFF, (int(fin) << 24) | len(data)) + data
            case SynStream(stream_id, headers, associated_to, priority, fin, unidirectional):
                flags = (FLAG_FIN if fin else 0) | (FLAG_UNIDIRECTIONAL if unidirectional else 0)
                head = struct.pack(">IIBB", stream_id, associated_to, (priority & 7) << 5, 0)
                return _control(FrameType.SYN_STREAM, flags, head + self._compress(headers))
            case SynReply(stream_id, headers, fin):
                payload = struct.pack(">I", stream_id) + self._compress(headers)
                return _control(FrameType.SYN_REPLY, FLAG_FIN if fin else 0, payload)
            case HeadersFrame(stream_id, headers, fin):
                payload = struct.pack(">I", stream_id) + self._compress(headers)
                return _control(FrameType.HEADERS, FLAG_FIN if fin else 0, payload)
            case RstStream(stream_id, status):
                return _control(FrameType.RST_STREAM, 0, struct.pack(">II", stream_id, status))
            case Settings(entries, clear):
                body = b"".join(struct.pack(">II", (f << 24) | i, v) for f, i, v in entries)
                return _control(FrameType.SETTINGS, int(clear), struct.pack(">I", len(entries)) + body)
            case Ping(ping_id):
                return _control(FrameType.PING, 0, struct.pack(">I", ping_id))
            case GoAway(last, status):
                return _control(FrameType.GOAWAY, 0, struct.pack(">II", last, status))
            case WindowUpdate(stream_id, delta):
                return _control(FrameType.WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")

    def encode_all(self, frames: Iterable[Frame]) -> bytes:
        return b"".join(self.encode(f) for f in frames)

    def consumed(self, stream_id: int, size: int) -> list[WindowUpdate]:
        """Record that `size` DATA bytes of `stream_id` were delivered; the WINDOW_UPDATEs to send."""
        updates = []
        for sid in (stream_id, 0):
            total = self._unacked.get(sid, 0) + size
            if total >= self._threshold:
                updates.append(WindowUpdate(sid, total))
                total = 0
            self._unacked[sid] = total
        return updates

    def forget(self, stream_id: int) -> None:
        self._unacked.pop(stream_id, None)

    # ----------------------------------------------------------------------------- receiving

    def receive_data(self, data: bytes) -> list[Frame]:
        """Feed bytes from the peer; return every frame now complete (a frame may span calls)."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer, 0)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = second >> 24
            if first & 0x80000000:
                frame = self._control_frame((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Data(first & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN)))
        return frames

    def _decompress(self, block: bytes) -> dict[str, str]:
        try:
            return _unpack_block(self._decompressor.decompress(block))
        except zlib.error as exc:
            raise ProtocolError(f"SPDY header block does not decompress: {exc}") from None

    def _control_frame(self, version: int, kind: int, flags: int, payload: bytes) -> Frame | None:
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        fin = bool(flags & FLAG_FIN)
        try:
            if kind == FrameType.SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", payload, 0)
                return SynStream(
                    sid & 0x7FFFFFFF,
                    self._decompress(payload[10:]),
                    assoc & 0x7FFFFFFF,
                    prio >> 5,
                    fin,
                    bool(flags & FLAG_UNIDIRECTIONAL),
                )
            if kind in (FrameType.SYN_REPLY, FrameType.HEADERS):
                (sid,) = struct.unpack_from(">I", payload, 0)
                cls = SynReply if kind == FrameType.SYN_REPLY else HeadersFrame
                return cls(sid & 0x7FFFFFFF, self._decompress(payload[4:]), fin)
            if kind == FrameType.RST_STREAM:
                sid, status = struct.unpack_from(">II", payload, 0)
                return RstStream(sid & 0x7FFFFFFF, status)
            if kind == FrameType.SETTINGS:
                (count,) = struct.unpack_from(">I", payload, 0)
                pairs = [struct.unpack_from(">II", payload, 4 + 8 * i) for i in range(count)]
                return Settings(tuple((fi >> 24, fi & 0xFFFFFF, v) for fi, v in pairs), bool(flags & 1))
            if kind == FrameType.PING:
                return Ping(struct.unpack_from(">I", payload, 0)[0])
            if kind == FrameType.GOAWAY:
                last, *rest = struct.unpack_from(">II" if len(payload) >= 8 else ">I", payload, 0)
                return GoAway(last & 0x7FFFFFFF, rest[0] if rest else 0)
            if kind == FrameType.WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", payload, 0)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as exc:
            raise ProtocolError(f"truncated SPDY control frame of type {kind}: {exc}") from None
        return None  # unknown control frames (NOOP, CREDENTIAL) are ignored, as the spec says
