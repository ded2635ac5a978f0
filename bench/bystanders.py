"""The bystanders of ``bench hostile``: what ordinary members see while a crowd attacks.

One sender and one receiver, both QUIET, in a room of their own (so the crowd's presence
notices and the crowd's share of a lobby message cost them nothing: what is measured is how
the server's work for the crowd delays everyone else). The sender writes a probe every
``every_s`` on a fixed schedule, whether or not the last one has arrived (a probe that waits
for its predecessor would hide a stall behind one slow sample); each probe's text starts with
its ``time.monotonic_ns()`` stamp, as every bench message does, and the receiver times each
one it gets.

The pair runs in a thread of the bench's own process, never in a load worker: the crowd
lives in the worker processes, so its work cannot hold up the loop that stamps and times the
probes.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from spec.codec import decode_body, encode
from spec.constants import Capability, FrameType
from spec.decoder import FrameSplitter
from spec.errors import ProtocolError
from spec.events import Deliver, Error, Hello, Join, Ping, Pong, Roster, Welcome

from .dialects import STAMP_DIGITS, MessageMaker
from .orders import Dialect

_QUIET = int(Capability.QUIET)
_READ = frozenset({int(FrameType.DELIVER), int(FrameType.PING), int(FrameType.ERROR)})


class BystanderError(RuntimeError):
    """A bystander could not register and join its room."""


@dataclass
class ProbeLog:
    """Every probe's stamp (when it was sent) and, for those that arrived, its latency."""

    sent_ns: list[int] = field(default_factory=list)
    latency_ns: dict[int, int] = field(default_factory=dict)
    #: Why the probing stopped early (the server cut a bystander), or None.
    failure: str | None = None
    #: When the probing stopped: a probe still missing then was waited for until this.
    ended_ns: int = 0


class _Member:
    """One bystander's connection: frames in, bytes out, PINGs answered."""

    def __init__(self, address: tuple[str, int], nick: str, room: str, timeout_s: float) -> None:
        self.nick = nick
        self.splitter = FrameSplitter(1 << 24)
        self.out = bytearray()
        try:
            self.sock = socket.create_connection(address, timeout=timeout_s)
        except OSError as exc:
            raise BystanderError(f"{nick}: connect: {exc.strerror or exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.sendall(encode(Hello(nick, caps=_QUIET)))
            self._await(lambda e: isinstance(e, Welcome))
            self.sock.sendall(encode(Join(room)))
            lower = room.lower()
            self._await(lambda e: isinstance(e, Roster) and e.room == lower and not e.more)
        except (OSError, ProtocolError) as exc:
            self.sock.close()
            raise BystanderError(f"{nick}: {exc}") from None
        self.sock.setblocking(False)

    def _await(self, wanted: Callable[[object], bool]) -> None:
        """Read (blocking, with the socket's timeout) until a frame ``wanted`` accepts."""
        while True:
            while (frame := self.splitter.next_frame()) is not None:
                event = decode_body(*frame)
                if wanted(event):
                    return
                if isinstance(event, Ping):
                    self.sock.sendall(encode(Pong(event.token)))
                elif isinstance(event, Error) and event.fatal:
                    raise BystanderError(f"{self.nick}: ERROR {event.code_name}: {event.text}")
            data = self.sock.recv(65536)
            if not data:
                raise BystanderError(f"{self.nick}: the server closed the connection")
            self.splitter.receive_data(data)

    def flush(self) -> None:
        if self.out:
            try:
                del self.out[: self.sock.send(self.out)]
            except BlockingIOError:
                pass
            except OSError:
                self.out.clear()  # the server has gone: reading the socket will say so

    def frames(self) -> list[tuple[int, bytes]] | None:
        """The whole frames that arrived now; None when the server has closed."""
        try:
            data = self.sock.recv(262_144)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self.splitter.receive_data(data)
        return list(iter(self.splitter.next_frame, None))


class Bystanders:
    """The probing pair: :meth:`start` the probes, :meth:`stop_sending` at the end of the
    window, then :meth:`finish` once :meth:`done` (or on a deadline)."""

    def __init__(self, host: str, port: int, tag: str, payload: int, timeout_s: float) -> None:
        self.room = f"{tag}p"
        self.receiver = _Member((host, port), f"{tag}r", self.room, timeout_s)
        try:
            self.sender = _Member((host, port), f"{tag}s", self.room, timeout_s)
        except BystanderError:
            self.receiver.sock.close()
            raise
        self.maker = MessageMaker(Dialect.CHATWIRE, self.room, self.sender.nick, payload, 1)
        self.log = ProbeLog()
        self._sent: set[int] = set()
        self._sending = threading.Event()
        self._until_ns = 0
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, every_s: float) -> None:
        self._sending.set()
        self._thread = threading.Thread(
            target=self._probe, args=(int(every_s * 1e9),), name="bench-bystanders", daemon=True
        )
        self._thread.start()

    def stop_sending(self, grace_s: float) -> None:
        """No more probes; wait at most ``grace_s`` for those under way."""
        self._until_ns = time.monotonic_ns() + int(grace_s * 1e9)
        self._sending.clear()

    def done(self) -> bool:
        return self._finished.is_set()

    def finish(self) -> ProbeLog:
        """Stop the probing thread (at its grace deadline at the latest) and close both."""
        if self._sending.is_set():
            self.stop_sending(0.0)
        if self._thread is not None:
            self._thread.join(max(1.0, (self._until_ns - time.monotonic_ns()) / 1e9 + 1.0))
        for member in (self.sender, self.receiver):
            member.sock.close()
        return self.log

    def _probe(self, every_ns: int) -> None:
        sel = selectors.DefaultSelector()
        for member in (self.sender, self.receiver):
            sel.register(member.sock, selectors.EVENT_READ, member)
        next_ns = time.monotonic_ns()
        log = self.log
        try:
            while True:
                sending = self._sending.is_set()
                now = time.monotonic_ns()
                if sending and now >= next_ns:
                    stamp = time.monotonic_ns()
                    self.sender.out += self.maker.batch(1, stamp)
                    log.sent_ns.append(stamp)
                    self._sent.add(stamp)
                    self.sender.flush()
                    # On schedule; a slot this thread itself missed is skipped, not made up
                    # in a burst.
                    next_ns += every_ns * max(1, (now - next_ns) // every_ns + 1)
                elif not sending and (
                    len(log.latency_ns) == len(log.sent_ns) or now > self._until_ns
                ):
                    return
                wait_ns = next_ns - now if sending else 20_000_000
                for key, _ in sel.select(max(0.0, wait_ns / 1e9)):
                    if not self._read(key.data):
                        return
                self.sender.flush()
                self.receiver.flush()
        finally:
            sel.close()
            log.ended_ns = time.monotonic_ns()
            self._finished.set()

    def _read(self, member: _Member) -> bool:
        """Take what arrived for ``member``; False once probing cannot go on."""
        log = self.log
        try:
            frames = member.frames()
            at_ns = time.monotonic_ns()
            if frames is None:
                log.failure = f"{member.nick}: the server closed the connection"
                return False
            for ftype, body in frames:
                if ftype not in _READ:
                    continue  # ACKs, and anything else a server may send: not our business
                event = decode_body(ftype, body)
                if isinstance(event, Deliver) and member is self.receiver:
                    stamp = _stamp(event.text)
                    if stamp in self._sent:  # a probe, not a stranger's message
                        log.latency_ns.setdefault(stamp, at_ns - stamp)
                elif isinstance(event, Ping):
                    member.out += encode(Pong(event.token))
                elif isinstance(event, Error) and event.fatal:
                    log.failure = f"{member.nick}: ERROR {event.code_name}: {event.text}"
                    return False
        except ProtocolError as exc:
            log.failure = f"{member.nick}: the server sent a bad frame: {exc}"
            return False
        return True


def _stamp(text: str) -> int:
    try:
        return int(text[:STAMP_DIGITS])
    except ValueError:
        return 0
