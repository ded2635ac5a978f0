"""§2 Data types and text (and the byte rules of §3.1/§3.2/§15.1 that every server frame must
obey): everything a server sends is checked against the normative construct definitions."""

from __future__ import annotations

from conformance.client import MockClient
from conformance.context import Case
from conformance.markers import requirement
from conformance.steps import direct, join, leave, send
from spec.codec import decode_body_with_construct, encode_with_construct
from spec.constants import DEFAULT_MAX_FRAME, HARD_MAX_FRAME
from spec.errors import ProtocolError
from spec.events import Bye, Join, ListRooms, Ping, Send, UnknownFrame, Who


@requirement(
    "TEXT-1", "TEXT-2", "TEXT-3", "TEXT-4", "FRAME-1", "FRAME-2", "FRAME-3", "FRAME-5", "EXT-2"
)
def test_every_server_frame_is_well_formed(cw: Case) -> None:
    """Every frame a server sends MUST decode under the strict schema (exact field widths, byte
    counts, strict UTF-8 without U+0000, nothing after the last field), re-encode to the same
    bytes, stay within max_frame, and be of a type this document defines."""
    room = cw.room()
    a = cw.client("a")
    a.keep_raw = True
    a.register(cw.nick("a"))
    b = cw.registered("b")
    join(a, room)
    join(b, room)
    send(b, room, "héllo 🎉\nworld")
    direct(b, a.nick, "whisper ✓")
    for frame in (Who(room), ListRooms(), Ping(2**63 + 5), Send(cw.room("no"), "x"), Join("bad!")):
        a.send_frame(frame)
    a.barrier()
    leave(b, room)
    b.send_frame(Bye("ciao"))
    a.barrier()
    _judge_frames(cw, a)


def _judge_frames(cw: Case, c: MockClient) -> None:
    assert c.welcome is not None
    limit = DEFAULT_MAX_FRAME
    kinds: set[str] = set()
    for raw in c.raw_frames:
        length, ftype, body = int.from_bytes(raw[:4], "big"), raw[4], raw[5:]
        cw.check(length == len(body) + 1, "FRAME-1", "length = 1 + body", f"{length}")
        cw.check(length <= HARD_MAX_FRAME, "FRAME-3", "length <= 16 MiB", f"{length}")
        cw.check(length <= limit, "FRAME-5", f"length <= {limit}", f"{length} ({raw[:16].hex()})")
        try:
            event = decode_body_with_construct(ftype, body)
        except ProtocolError as exc:
            req = "TEXT-3" if exc.code.name == "INVALID_UTF8" else "FRAME-2"
            cw.check(False, req, "a frame the strict schema accepts", f"{exc!r}: {raw[:32].hex()}")
            continue
        if isinstance(event, UnknownFrame):
            cw.check(False, "EXT-2", "only defined frame types", f"type 0x{ftype:02X}")
            continue
        kinds.add(type(event).__name__)
        again = encode_with_construct(event)
        cw.check(
            again == raw,
            "TEXT-1",
            "the canonical encoding of its own values",
            f"{raw[:32].hex()} vs {again[:32].hex()}",
        )
        if type(event).__name__ == "Welcome":
            limit = c.welcome.max_frame
    cw.ok("TEXT-2", "TEXT-4", "FRAME-2")
    cw.observe(f"checked {len(c.raw_frames)} frames of {len(kinds)} types")
