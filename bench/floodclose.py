"""The worker side of ``bench shutdown --flood``: every registered client of the worker joins
its room (rooms of 10 across all workers) and sends SENDs there as fast as the server takes
them, reading everything, until the server closes it; then each tells which fatal ERRORs it
got before EOF and whether any frame followed one (ERR-4).

Frames are split here rather than by the client's stream, which stops at the first fatal
ERROR: a second one is exactly what must be seen if it comes.
"""

from __future__ import annotations

import selectors
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from spec.codec import encode
from spec.constants import ErrorCode, FrameType, code_name, is_fatal
from spec.decoder import FrameSplitter
from spec.events import Join, Send

from .clients import Client, Connections

_SHUTDOWN = int(ErrorCode.SERVER_SHUTDOWN)
#: Bytes of SENDs a client keeps queued while it floods.
_QUEUED = 16384


@dataclass(frozen=True, slots=True)
class FloodOrder:
    #: Each client's room, by nick.
    rooms: dict[str, str]
    #: Message text bytes.
    payload: int
    #: Longest the worker floods and waits for the server to close its clients.
    timeout_s: float


@dataclass
class _Flooder:
    client: Client
    splitter: FrameSplitter = field(default_factory=lambda: FrameSplitter(1 << 24))
    fatal: list[int] = field(default_factory=list)
    after_fatal: int = 0
    eof_ns: int = 0
    #: Writing failed (the server closed first): only read from now on, until EOF.
    mute: bool = False


def flood_close(net: Connections, order: FloodOrder) -> dict[str, Any]:
    """Flood until the server has closed every client of this worker (or the deadline)."""
    flooders = [_Flooder(c) for c in net.registered if not c.closed_ns]
    by_client = {id(f.client): f for f in flooders}
    sends = {}
    for f in flooders:
        room = order.rooms[f.client.stream.nick]
        f.client.queue(encode(Join(room)))
        sends[id(f.client)] = encode(Send(room, "x" * order.payload)) * (_QUEUED // 64)
        net.wait_for(f.client, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.monotonic() + order.timeout_s
    open_ = len(flooders)
    while open_ and (left := deadline - time.monotonic()) > 0:
        for c, mask in net.ready(min(0.05, left)):
            f = by_client[id(c)]
            if mask & selectors.EVENT_READ and _read(net, f):
                open_ -= 1
                continue
            if mask & selectors.EVENT_WRITE and not (f.fatal or f.mute):
                if len(c.out) - c.out_pos < _QUEUED:
                    c.queue(sends[id(c)])
                _write(net, f)
    return _tally(flooders)


def _write(net: Connections, f: _Flooder) -> None:
    """Write what the kernel takes. A failed write (the server has closed) stops the writing,
    not the reading: the ERROR may still wait in the receive buffer."""
    c = f.client
    try:
        c.out_pos += c.sock.send(memoryview(c.out)[c.out_pos :])
    except BlockingIOError:
        return
    except OSError:
        f.mute = True
        net.wait_for(c, selectors.EVENT_READ)


def _read(net: Connections, f: _Flooder) -> bool:
    """Read what arrived; True once the server closed the connection."""
    c = f.client
    try:
        data = c.sock.recv(262_144)
    except BlockingIOError:
        return False
    except OSError:
        data = b""
    if not data:
        f.eof_ns = time.monotonic_ns()
        net.close(c, "closed by server")
        return True
    f.splitter.receive_data(data)
    while (frame := f.splitter.next_frame()) is not None:
        ftype, body = frame
        if f.fatal:
            f.after_fatal += 1
        elif ftype == FrameType.ERROR and is_fatal(code := struct.unpack(">H", body[:2])[0]):
            f.fatal.append(code)
    return False


def _tally(flooders: list[_Flooder]) -> dict[str, Any]:
    told_once = sum(f.fatal == [_SHUTDOWN] and not f.after_fatal for f in flooders)
    others = Counter(code_name(f.fatal[0]) for f in flooders if f.fatal and f.fatal[0] != _SHUTDOWN)
    return {
        "clients": len(flooders),
        "told_once": told_once,
        "no_error": sum(not f.fatal for f in flooders),
        "frames_after_fatal": sum(f.after_fatal for f in flooders),
        "other_fatal": dict(others),
        "still_open": sum(not f.eof_ns for f in flooders),
        "eof_ns": [f.eof_ns for f in flooders if f.eof_ns],
    }
