"""One §14 robustness case: what to send, when, and the error it must get."""

from __future__ import annotations

from dataclasses import dataclass

from spec.constants import ErrorCode, FrameType

from .raw import Builder


@dataclass(frozen=True)
class Malformed:
    name: str
    ids: tuple[str, ...]  #: the first is the rule this case checks
    registered: bool  #: send after WELCOME (True) or as the first frame (False)
    code: ErrorCode
    build: Builder  #: (own nick, WELCOME) -> bytes to send
    in_reply_to: int | None  #: expected in_reply_to (None: any)
    #: Requirements the same failure also breaks (a length rule of §14 is also one of §3.2).
    also: tuple[str, ...] = ()

    @property
    def fatal(self) -> bool:
        return self.code.fatal


#: Client frames sent after WELCOME that carry strings (HELLO is covered before WELCOME).
POST_TYPES = (
    FrameType.SEND,
    FrameType.DIRECT,
    FrameType.JOIN,
    FrameType.LEAVE,
    FrameType.WHO,
    FrameType.BYE,
)
