"""Nick and room-name syntax (§5.1, §6.1) and the case-insensitive comparison key (§5.2)."""

from __future__ import annotations

import re

from .constants import NICK_MAX_BYTES, ROOM_MAX_BYTES

#: §5.1, §6.1 — ASCII letters, digits, underscore and hyphen.
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def is_valid_nick(nick: str) -> bool:
    return 1 <= len(nick) <= NICK_MAX_BYTES and _NAME.fullmatch(nick) is not None


def is_valid_room(room: str) -> bool:
    return 1 <= len(room) <= ROOM_MAX_BYTES and _NAME.fullmatch(room) is not None


def fold(name: str) -> str:
    """The comparison key: ASCII case folding only, so the key never changes a byte count."""
    return name.lower() if name.isascii() else name
