"""The mock client: one raw TCP connection to the server under test, fully recorded.

It speaks chatwire/1 through the spec codec but enforces nothing itself, so a case can send
anything (``send_raw``) and judge whatever comes back. A reader thread drains the socket from
the moment the connection opens (a client that stops reading gets cut, §12), decodes frames into
a queue, logs every one with a timestamp, and answers server PINGs as a real client must (§10.1)
unless told not to. Every wait takes a deadline, multiplied by the run's ``--timeout-scale``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import itertools
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeGuard, TypeVar, overload

from spec.codec import decode_body, encode
from spec.constants import DEFAULT_MAX_FRAME, HARD_MAX_FRAME, Capability, ErrorCode, LeaveReason
from spec.decoder import FrameSplitter
from spec.errors import ProtocolError
from spec.events import (
    Deliver,
    Direct,
    Error,
    Event,
    Hello,
    Left,
    Ping,
    Pong,
    Roster,
    Send,
    UnknownFrame,
    Welcome,
    Whisper,
)

from .errors import HarnessError, TargetUnreachable, Violation
from .lateness import LATENESS
from .transcript import Transcript

#: Default wait for an answer the server owes right away (seconds, before scaling).
ANSWER_WAIT = 5.0

#: Seconds every client waits before answering a server PING (0 in real runs). The suite's
#: tests set it (``--late-pongs``) to play a starved suite: the reader thread, and so all of
#: that client's reading, falls behind by that much, as if the machine had not run it.
PONG_DELAY = 0.0


class Ending(enum.Enum):
    """How a connection ended, as the client saw it."""

    EOF = "the connection closed (FIN)"
    RESET = "the connection was reset (RST)"
    LOCAL = "the connection closed locally"


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection ended: by the server's FIN, by a reset, or because we closed it."""

    how: Ending


@dataclass(frozen=True, slots=True)
class BadFrame:
    """The server sent bytes that are not a valid frame; the stream cannot be read further."""

    code: str
    detail: str


Incoming = Event | UnknownFrame | Closed | BadFrame

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")


#: A predicate that also tells the type checker what it accepted (a :class:`Wanted` and
#: :func:`one_of` make one): :meth:`MockClient.expect` for it returns a ``T``.
Guard = Callable[[Incoming], TypeGuard[T]]


@dataclass(frozen=True, slots=True)
class Wanted(Generic[T]):
    """What a wait is for: an item of type ``kind`` for which ``test`` (if any) holds. Waiting
    for one gives a ``T``, so the caller needs no isinstance check after it."""

    kind: type[T]
    test: Callable[[T], bool] | None = None

    def __call__(self, item: Incoming) -> TypeGuard[T]:
        return isinstance(item, self.kind) and (self.test is None or self.test(item))


@overload
def one_of(a: type[A], b: type[B], /) -> Guard[A | B]: ...
@overload
def one_of(a: type[A], b: type[B], c: type[C], /) -> Guard[A | B | C]: ...
def one_of(*kinds: type[Any]) -> Guard[Any]:
    """A guard for an item of any of ``kinds``: waiting for it gives their union."""

    def accepted(item: Incoming) -> TypeGuard[Any]:
        return isinstance(item, kinds)

    return accepted


#: The requirement an undecodable server frame breaks, by the error a receiver would raise.
BAD_FRAME_REQ = {"MALFORMED": "FRAME-2", "INVALID_UTF8": "TEXT-3", "FRAME_TOO_LARGE": "FRAME-3"}
Predicate = Callable[[Incoming], bool]

_tokens = itertools.count(0x00C0_FFEE_0000_0001)


def reason_name(reason: int) -> str:
    """A LEFT reason by its name (§9.2), or its number if this version does not define it."""
    try:
        return LeaveReason(reason).name
    except ValueError:
        return str(reason)


def describe(item: Incoming | None) -> str:
    if item is None:
        return "nothing (timed out)"
    if isinstance(item, Closed):
        return item.how.value
    if isinstance(item, BadFrame):
        return f"an undecodable frame ({item.code}: {item.detail})"
    if isinstance(item, Error):
        return f"ERROR {item.code_name} (in_reply_to=0x{item.in_reply_to:02X}, {item.text!r})"
    if isinstance(item, Left):
        text = f", {item.text!r}" if item.text else ""
        return f"LEFT {reason_name(item.reason)} ({item.nick!r} from {item.room!r}{text})"
    return repr(item)


class MockClient:
    def __init__(
        self,
        address: tuple[str, int],
        name: str,
        transcript: Transcript,
        *,
        scale: float = 1.0,
        rcvbuf: int | None = None,
        auto_pong: bool = True,
    ) -> None:
        self.address = address
        self.name = name
        self.transcript = transcript
        self.scale = scale
        self.rcvbuf = rcvbuf
        self.auto_pong = auto_pong
        #: The client means to stay connected (answers PINGs, or sends its own): an idle cut
        #: of it is a sign the suite ran late (see lateness.py).
        self.keeps_alive = auto_pong
        self.sock: socket.socket | None = None
        self.welcome: Welcome | None = None
        self.welcome_roster: list[Roster] = []
        #: Everything received, in order, with its arrival time (monotonic seconds).
        self.log: list[tuple[float, Incoming]] = []
        #: Frames longer than the limit the server had declared when they arrived (§3.2).
        self.oversize: list[int] = []
        self.closed: Closed | None = None
        #: Frames of types chatwire/1 does not define (EXT-2 forbids servers to send them).
        self.unknown: list[int] = []
        #: Keep to the advertised flood limit (§13) by mirroring the server's token bucket, so
        #: cases that are not about the limit never meet RATE_LIMITED. Flood cases turn it off.
        self.obey_flood_limit = True
        self._tokens = 0.0
        self._refilled = 0.0
        #: Light mode (floods): message texts are dropped on arrival, only their size kept.
        self.light = False
        #: With ``keep_raw``, every frame received, whole (for byte-level checks).
        self.keep_raw = False
        self.raw_frames: list[bytes] = []
        self.nick = ""
        self._queue: deque[Incoming] = deque()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._stopping = False
        self._limit = DEFAULT_MAX_FRAME
        self._gate = threading.Event()  # cleared: the reader stops reading (a slow consumer)
        self._gate.set()

    # -- connection ---------------------------------------------------------------------

    def connect(self, timeout: float = ANSWER_WAIT, *, read: bool = True) -> MockClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf is not None:  # must precede connect() to shrink the TCP window
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout * self.scale)
        try:
            sock.connect(self.address)
        except OSError as exc:
            sock.close()
            where = f"{self.address[0]}:{self.address[1]}"
            raise TargetUnreachable(f"cannot connect to {where}: {exc}") from None
        sock.settimeout(None)
        self.sock = sock
        self.transcript.note(self.name, f"connected from port {sock.getsockname()[1]}")
        if read:
            self.start_reading()
        return self

    def start_reading(self) -> None:
        """Start draining the socket (a client created with ``read=False`` stalls until this)."""
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_loop, name=self.name, daemon=True)
            self._reader.start()

    def pause_reading(self) -> None:
        """Stop reading (after the current read) until :meth:`resume_reading`."""
        self._gate.clear()

    def resume_reading(self) -> None:
        self._gate.set()

    def close(self) -> None:
        """Close politely (FIN), and stop the reader."""
        self._stop(abort=False)

    def forget(self) -> None:
        """Drop everything received (the case is over and judged)."""
        with self._cond:
            self.log.clear()
            self._queue.clear()
        self.raw_frames.clear()

    def half_close(self) -> None:
        """Shut down our sending direction (FIN) and keep reading, as a client that leaves
        without BYE but still reads would."""
        self.transcript.note(self.name, "half-closing (FIN, still reading)")
        with contextlib.suppress(OSError):
            self._require_sock().shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """Close with a TCP reset, as a crashed client's kernel would."""
        self._stop(abort=True)

    def _stop(self, *, abort: bool) -> None:
        sock = self.sock
        if sock is None or self._stopping:
            return
        self._stopping = True
        self._gate.set()
        self.transcript.note(self.name, "aborting (RST)" if abort else "closing")
        try:
            if abort:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
                sock.shutdown(socket.SHUT_RD)  # wakes the reader without sending anything
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        sock.close()

    # -- sending ------------------------------------------------------------------------

    def send_frame(self, event: Event) -> None:
        if isinstance(event, Send | Direct):
            self._take_token()
        self._send(encode(event), event)

    def _take_token(self) -> None:
        """Wait, if need be, until the mirrored bucket holds a token (never waits at rate 0)."""
        w = self.welcome
        if w is None or w.rate == 0 or not self.obey_flood_limit:
            return
        now = time.monotonic()
        self._tokens = min(float(w.burst), self._tokens + (now - self._refilled) * w.rate)
        self._refilled = now
        if self._tokens < 1.0:
            threading.Event().wait((1.0 - self._tokens) / w.rate)  # the refill the spec grants
            self._tokens, self._refilled = 1.0, time.monotonic()
        self._tokens -= 1.0

    def send_raw(self, data: bytes, label: str = "raw bytes") -> None:
        self._send(data, label)

    def send_bytewise(self, data: bytes, label: str) -> None:
        """Write ``data`` one byte per send call (TCP_NODELAY is on: one byte per segment)."""
        self.transcript.add(self.name, "send", f"{label} (one byte at a time)", data)
        sock = self._require_sock()
        try:
            for i in range(len(data)):
                sock.sendall(data[i : i + 1])
        except OSError as exc:
            raise Violation("", "the server to read the frame", f"send failed: {exc}") from None

    def _send(self, data: bytes, what: object) -> None:
        sock = self._require_sock()
        with self._send_lock:
            self.transcript.add(self.name, "send", what, data)
            try:
                sock.sendall(data)
            except OSError as exc:
                self.transcript.note(self.name, f"send failed: {exc}")
                raise SendFailed(str(exc)) from None

    def _require_sock(self) -> socket.socket:
        if self.sock is None:
            raise HarnessError(f"{self.name} is not connected")
        return self.sock

    # -- receiving ----------------------------------------------------------------------

    def _read_loop(self) -> None:
        sock = self._require_sock()
        splitter = FrameSplitter(HARD_MAX_FRAME)
        while True:
            self._gate.wait()
            try:
                data = sock.recv(65536)
            except OSError:
                self._finish(Closed(Ending.LOCAL if self._stopping else Ending.RESET))
                return
            if not data:
                self._finish(Closed(Ending.LOCAL if self._stopping else Ending.EOF))
                return
            splitter.receive_data(data)
            try:
                while (frame := splitter.next_frame()) is not None:
                    self._deliver_frame(*frame)
            except ProtocolError as exc:
                self.transcript.note(self.name, f"undecodable frame: {exc.detail}")
                self._push(BadFrame(exc.code.name, exc.detail))
                return

    def _deliver_frame(self, ftype: int, body: bytes) -> None:
        raw = (len(body) + 1).to_bytes(4, "big") + bytes([ftype]) + body
        if self.keep_raw:
            self.raw_frames.append(raw)
        if len(body) + 1 > self._limit:
            self.oversize.append(len(body) + 1)
        try:
            event = decode_body(ftype, body)
        except ProtocolError as exc:
            self.transcript.add(self.name, "recv", f"undecodable: {exc.detail}", raw)
            raise
        if self.light and isinstance(event, Deliver | Whisper):
            event = dataclasses.replace(event, text=f"<{len(event.text)} chars>")
        self.transcript.add(self.name, "recv", event, raw)
        if isinstance(event, UnknownFrame):
            self.unknown.append(event.frame_type)
        if isinstance(event, Welcome):
            self._limit = event.max_frame
            self._tokens, self._refilled = float(event.burst), time.monotonic()
        if isinstance(event, Error) and event.code == ErrorCode.IDLE_TIMEOUT and self.keeps_alive:
            LATENESS.idle_cut(self.name, self.transcript)
        if isinstance(event, Ping) and self.auto_pong:
            if PONG_DELAY:
                threading.Event().wait(PONG_DELAY)
                LATENESS.note(PONG_DELAY)
            with contextlib.suppress(SendFailed):
                self.send_frame(Pong(event.token))
        self._push(event)

    def _push(self, item: Incoming) -> None:
        with self._cond:
            self.log.append((time.monotonic(), item))
            self._queue.append(item)
            self._cond.notify_all()

    def _finish(self, closed: Closed) -> None:
        self.closed = closed
        self.transcript.note(self.name, f"connection ended ({closed.how.name})")
        self._push(closed)

    def recv_event(self, timeout: float = ANSWER_WAIT) -> Incoming | None:
        """The next thing received, or None if nothing came within ``timeout`` (scaled)."""
        deadline = time.monotonic() + timeout * self.scale
        with self._cond:
            while not self._queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._queue.popleft()

    def expect(
        self, want: type[T] | Guard[T], what: str, req: str, timeout: float = ANSWER_WAIT
    ) -> tuple[T, list[Incoming]]:
        """Read until an item of type ``want`` (or one that the guard, e.g. a :class:`Wanted`,
        accepts) comes; returns it, typed, and what was skipped before it.

        A close, an undecodable frame or the deadline ends the wait with a :class:`Violation`
        of ``req`` (unless the guard accepts the close).
        """
        guard = Wanted(want) if isinstance(want, type) else want
        skipped: list[Incoming] = []
        deadline = time.monotonic() + timeout * self.scale
        while True:
            item = self.recv_event(max(0.0, deadline - time.monotonic()) / self.scale)
            if item is not None and guard(item):
                return item, skipped
            if item is None or isinstance(item, Closed | BadFrame):
                self.transcript.note(self.name, f"expected {what}; got {describe(item)}")
                if isinstance(item, BadFrame):
                    req = BAD_FRAME_REQ.get(item.code, req)
                raise Violation(req, what, _actual(item, skipped))
            skipped.append(item)

    def expect_where(
        self, predicate: Predicate, what: str, req: str, timeout: float = ANSWER_WAIT
    ) -> tuple[Incoming, list[Incoming]]:
        """Read until ``predicate`` holds (a test across types, the result untyped); see
        :meth:`expect`, which a :data:`Guard` makes typed."""

        def accepted(item: Incoming) -> TypeGuard[Incoming]:
            return predicate(item)

        return self.expect(accepted, what, req, timeout)

    def collect(
        self, guards: Sequence[Guard[T]], what: str, req: str, timeout: float = ANSWER_WAIT
    ) -> list[T]:
        """Read until each guard has matched one item, in any order; returns the matches
        in guard order."""
        found: list[T | None] = [None] * len(guards)

        def any_open(item: Incoming) -> bool:
            for i, accepts in enumerate(guards):
                if found[i] is None and accepts(item):
                    found[i] = item
                    return True
            return False

        deadline = time.monotonic() + timeout * self.scale
        while any(f is None for f in found):
            left = max(0.0, deadline - time.monotonic()) / self.scale
            self.expect_where(any_open, what, req, left)
        return [f for f in found if f is not None]

    def wait_closed(self, timeout: float) -> bool:
        """Wait until the reader has reached the end of the connection (scaled timeout)."""
        if self._reader is None:
            return self.closed is not None
        self._reader.join(timeout * self.scale)
        return self.closed is not None

    def drain(self) -> list[Incoming]:
        """Everything queued right now, without waiting."""
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
        return items

    # -- protocol helpers ---------------------------------------------------------------

    def hello(self, nick: str, caps: int = 0, req: str = "") -> Welcome | Error:
        """Send HELLO and return the WELCOME or ERROR that answers it."""
        self.send_frame(Hello(nick=nick, caps=caps))
        item, skipped = self.expect(one_of(Welcome, Error), "WELCOME or ERROR answering HELLO", req)
        if skipped:
            raise Violation(req, "nothing before WELCOME but ERROR", _actual(item, skipped))
        if isinstance(item, Welcome):
            self.welcome = item
            self.nick = item.nick
        return item

    def register(self, nick: str, caps: int = 0, req: str = "", roster_req: str = "") -> Welcome:
        """HELLO, WELCOME and (unless QUIET was granted) the default room's roster."""
        answer = self.hello(nick, caps, req)
        if isinstance(answer, Error):
            raise Violation(req, f"WELCOME for nick {nick!r}", describe(answer))
        if not answer.caps & Capability.QUIET:
            self.welcome_roster = self.read_roster(answer.room, roster_req or req, immediate=True)
        return answer

    def read_roster(self, room: str, req: str, *, immediate: bool = False) -> list[Roster]:
        """The ROSTER frames for ``room`` up to the one with more=0 (§3.3 splitting).

        Parts of one list must be back to back (FRAME-11) and share room and seq (FRAME-10).
        """
        frames: list[Roster] = []
        while True:
            item, skipped = self.expect(
                Wanted(Roster, lambda e: e.room.lower() == room.lower()), f"ROSTER of {room!r}", req
            )
            if immediate and skipped:
                raise Violation(
                    req, f"ROSTER of {room!r} right after WELCOME", _actual(item, skipped)
                )
            if frames and skipped:
                raise Violation("FRAME-11", "ROSTER parts back to back", _actual(item, skipped))
            if frames and item.seq != frames[0].seq:
                raise Violation("FRAME-10", f"every part with seq {frames[0].seq}", repr(item))
            frames.append(item)
            if not item.more:
                return frames

    def barrier(self, req: str = "", timeout: float = ANSWER_WAIT) -> list[Incoming]:
        """PING with a fresh token, read to its PONG; returns everything read before it (§8.5)."""
        token = next(_tokens)
        self.send_frame(Ping(token))
        _, before = self.expect(
            Wanted(Pong, lambda e: e.token == token), f"PONG {token:#x}", req, timeout
        )
        return before

    def expect_error(
        self,
        codes: Iterable[ErrorCode],
        req: str,
        *,
        after_req: str = "ERR-4",
        timeout: float = ANSWER_WAIT,
    ) -> Error:
        """Read to an ERROR with one of ``codes``; for a fatal one, then to the close.

        Other frames before the ERROR are skipped. A missing or wrong ERROR, or a session
        left open after a fatal one, breaks ``req``; a frame after a fatal ERROR breaks
        ``after_req`` (ERR-4).
        """
        wanted = {int(c) for c in codes}
        names = " or ".join(ErrorCode(c).name for c in sorted(wanted))
        item, skipped = self._until_error(timeout)
        if isinstance(item, Closed):
            raise Violation(req, f"ERROR {names}", f"{describe(item)} without ERROR")
        if item is None or isinstance(item, BadFrame):
            raise Violation(req, f"ERROR {names}", _actual(item, skipped))
        if item.code not in wanted:
            raise Violation(req, f"ERROR {names}", describe(item))
        if item.fatal:
            self.expect_close(req, after_req=after_req)
        return item

    def _until_error(
        self, timeout: float
    ) -> tuple[Error | Closed | BadFrame | None, list[Incoming]]:
        skipped: list[Incoming] = []
        deadline = time.monotonic() + timeout * self.scale
        while True:
            item = self.recv_event(max(0.0, deadline - time.monotonic()) / self.scale)
            if item is None or isinstance(item, Error | Closed | BadFrame):
                return item, skipped
            skipped.append(item)

    def expect_close(
        self, req: str, *, after_req: str = "ERR-4", timeout: float = ANSWER_WAIT
    ) -> Closed:
        """After a fatal ERROR: nothing more may arrive (``after_req``), and the connection
        must end (``req``)."""
        item = self.recv_event(timeout)
        if isinstance(item, Closed):
            return item
        if item is None:
            raise Violation(req, "the server to close the connection", "it stayed open")
        raise Violation(after_req, "nothing after a fatal ERROR, then the close", describe(item))


class SendFailed(HarnessError):
    """A write to the server failed (it closed or reset the connection)."""


#: Frames shown before the one that ended a wait: the last ones, which lead up to it.
SHOWN_BEFORE = 4


def _actual(item: Incoming | None, skipped: list[Incoming]) -> str:
    """What ended a wait, and the frames just before it (those decide; the first ones of a
    long run seldom do)."""
    text = describe(item)
    if skipped:
        last = ", ".join(describe(s) for s in skipped[-SHOWN_BEFORE:])
        if len(skipped) > SHOWN_BEFORE:
            text += f", after {len(skipped)} other frames, the last {SHOWN_BEFORE}: {last}"
        else:
            text += f", after {last}"
    return text
