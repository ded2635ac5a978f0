"""Small predicates over received items, for ``MockClient.expect``."""

from __future__ import annotations

from typing import TypeGuard

from spec.events import Ack, Deliver, Error, Joined, Left, Whisper

from .client import Guard, Incoming, Wanted


def left_about(room: str, nick: str) -> Wanted[Left]:
    return Wanted(Left, lambda e: e.room == room and e.nick == nick)


def joined_about(room: str, nick: str) -> Wanted[Joined]:
    return Wanted(Joined, lambda e: e.room == room and e.nick == nick)


def deliver_of(room: str, text: str) -> Wanted[Deliver]:
    return Wanted(Deliver, lambda e: e.room == room and e.text == text)


def whisper_of(text: str) -> Wanted[Whisper]:
    return Wanted(Whisper, lambda e: e.text == text)


def answer() -> Guard[Ack | Error]:
    """An ACK or a non-fatal ERROR: the answer to a SEND or DIRECT (§7.1)."""

    def match(item: Incoming) -> TypeGuard[Ack | Error]:
        return isinstance(item, Ack) or (isinstance(item, Error) and not item.fatal)

    return match
