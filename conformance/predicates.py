"""Small predicates over received items, for ``MockClient.expect``."""

from __future__ import annotations

from spec.events import Ack, Deliver, Error, Joined, Left, Whisper

from .client import Incoming, Predicate


def left_about(room: str, nick: str) -> Predicate:
    def match(item: Incoming) -> bool:
        return isinstance(item, Left) and item.room == room and item.nick == nick

    return match


def joined_about(room: str, nick: str) -> Predicate:
    def match(item: Incoming) -> bool:
        return isinstance(item, Joined) and item.room == room and item.nick == nick

    return match


def deliver_of(room: str, text: str) -> Predicate:
    def match(item: Incoming) -> bool:
        return isinstance(item, Deliver) and item.room == room and item.text == text

    return match


def whisper_of(text: str) -> Predicate:
    def match(item: Incoming) -> bool:
        return isinstance(item, Whisper) and item.text == text

    return match


def answer() -> Predicate:
    """An ACK or a non-fatal ERROR: the answer to a SEND or DIRECT (§7.1)."""

    def match(item: Incoming) -> bool:
        return isinstance(item, Ack) or (isinstance(item, Error) and not item.fatal)

    return match
