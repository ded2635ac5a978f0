"""Hypothesis strategies for chatwire/1 events, shared by the codec and fast-path tests.

Text is valid UTF-8 without U+0000, bounded by the byte limits of str8 (255) and str16 (kept
to a few hundred bytes so runs stay quick; str16's own limit is tested directly).
"""

from __future__ import annotations

from hypothesis import strategies as st

from spec.constants import FrameType
from spec.events import (
    Ack,
    Bye,
    Deliver,
    Direct,
    Error,
    Event,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    Ping,
    Pong,
    RoomEntry,
    Rooms,
    Roster,
    Send,
    Welcome,
    Whisper,
    Who,
)

STR8_MAX = 0xFF

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)

#: Any code point UTF-8 can carry (no surrogates) except U+0000.
_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
_ASCII = st.characters(min_codepoint=1, max_codepoint=0x7F)


def _fits(limit: int) -> st.SearchStrategy[str]:
    return st.text(_CHARS, max_size=limit).filter(lambda s: len(s.encode()) <= limit)


#: A str8 value: any text, multi-byte heavy text, and ASCII right up to the 255-byte limit.
str8 = st.one_of(
    st.text(_CHARS, max_size=STR8_MAX // 4),
    _fits(STR8_MAX),
    st.text(_ASCII, min_size=STR8_MAX - 3, max_size=STR8_MAX),
)
#: A str16 value, including lengths above 255 so both length bytes matter.
str16 = st.one_of(st.text(_CHARS, max_size=80), st.text(_ASCII, min_size=250, max_size=400))

EVENTS: dict[FrameType, st.SearchStrategy[Event]] = {
    # Only version 1 decodes: any other is UNSUPPORTED_VERSION whatever follows (§4.1).
    FrameType.HELLO: st.builds(Hello, nick=str8, caps=u32, version=st.just(1)),
    FrameType.WELCOME: st.builds(
        Welcome,
        nick=str8,
        version=u8,
        caps=u32,
        max_frame=u32,
        max_text=u16,
        max_rooms=u16,
        idle_timeout_ms=u32,
        out_limit=u32,
        slow_timeout_ms=u32,
        rate=u16,
        burst=u16,
        room=str8,
    ),
    FrameType.SEND: st.builds(Send, room=str8, text=str16),
    FrameType.DELIVER: st.builds(Deliver, room=str8, seq=u64, sender=str8, text=str16),
    FrameType.ACK: st.builds(Ack, room=str8, seq=u64),
    FrameType.DIRECT: st.builds(Direct, nick=str8, text=str16),
    FrameType.WHISPER: st.builds(Whisper, sender=str8, text=str16),
    FrameType.JOIN: st.builds(Join, room=str8),
    FrameType.LEAVE: st.builds(Leave, room=str8),
    FrameType.WHO: st.builds(Who, room=str8),
    FrameType.ROSTER: st.builds(
        Roster, room=str8, seq=u64, members=st.lists(str8, max_size=6).map(tuple), more=u8
    ),
    FrameType.LIST: st.just(ListRooms()),
    FrameType.ROOMS: st.builds(
        Rooms,
        rooms=st.lists(st.builds(RoomEntry, name=str8, members=u32), max_size=6).map(tuple),
        more=u8,
    ),
    FrameType.JOINED: st.builds(Joined, room=str8, nick=str8),
    FrameType.LEFT: st.builds(Left, room=str8, nick=str8, reason=u8, text=str16),
    FrameType.PING: st.builds(Ping, token=u64),
    FrameType.PONG: st.builds(Pong, token=u64),
    FrameType.BYE: st.builds(Bye, text=str16),
    FrameType.ERROR: st.builds(Error, code=u16, text=str16, in_reply_to=u8),
}

#: Any event of any type.
any_event: st.SearchStrategy[Event] = st.one_of(*EVENTS.values())
