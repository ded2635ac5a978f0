"""Building blocks of the concurrent scenarios: joining many clients to a room, having them all
send at once, and pairing each client's answers (ACK or non-fatal ERROR) with its requests.

Synchronisation is by threading.Barrier between our own threads and by PING barriers with the
server (§8.5): once every sender holds every answer, a PONG to each member proves that member
has been given every DELIVER the server produced for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

from spec.constants import FrameType
from spec.events import Ack, Error, Join, Roster, Send

from .client import Incoming, MockClient
from .context import Case

#: Answers to SEND/DIRECT: an ACK, or a non-fatal ERROR whose in_reply_to names the request.
ANSWER_TYPES = (FrameType.SEND, FrameType.DIRECT)


def is_answer(item: Incoming) -> TypeGuard[Ack | Error]:
    if isinstance(item, Ack):
        return True
    return isinstance(item, Error) and not item.fatal and item.in_reply_to in ANSWER_TYPES


@dataclass
class Sent:
    """One SEND/DIRECT a client made and the answer paired with it by order (§7.1)."""

    text: str
    target: str  #: room (SEND) or nick (DIRECT)
    answer: Ack | Error | None = None

    @property
    def accepted(self) -> bool:
        return isinstance(self.answer, Ack)


@dataclass
class Member:
    client: MockClient
    join_seq: int = 0  #: the seq of the ROSTER that answered its JOIN (§8.4)
    sent: list[Sent] = field(default_factory=list)

    @property
    def nick(self) -> str:
        return self.client.nick


def join(client: MockClient, room: str, req: str) -> list[Roster]:
    client.send_frame(Join(room))
    return client.read_roster(room, req)


def join_all(cw: Case, clients: Sequence[MockClient], room: str, req: str) -> list[Member]:
    """Every client joins ``room`` (concurrently); returns them with their join seqs."""

    def one(i: int) -> Member:
        frames = join(clients[i], room, req)
        return Member(clients[i], frames[-1].seq)

    return cw.parallel(len(clients), one)


def await_answers(client: MockClient, count: int, req: str, timeout: float) -> list[Ack | Error]:
    """Read until ``count`` answers to SEND/DIRECT have arrived (others stay in the log)."""
    answers: list[Ack | Error] = []
    while len(answers) < count:
        item, _ = client.expect(
            is_answer, f"{count} answers to SEND/DIRECT (have {len(answers)})", req, timeout
        )
        answers.append(item)
    return answers


def send_all(
    cw: Case,
    members: Sequence[Member],
    room: str,
    texts: Callable[[int, int], str],
    per_member: Sequence[int],
    req: str,
    timeout: float = 30.0,
) -> list[list[Incoming]]:
    """Every member sends its messages at once (pipelined), then collects its answers.

    ``texts(i, k)`` is member i's k-th text. Afterwards each member runs a PING barrier, so
    its log holds everything the server owes it.
    """

    def one(i: int) -> None:
        member = members[i]
        for k in range(per_member[i]):
            text = texts(i, k)
            member.sent.append(Sent(text, room))
            member.client.send_frame(Send(room, text))
        answers = await_answers(member.client, per_member[i], req, timeout)
        for sent, answer in zip(member.sent[-per_member[i] :], answers, strict=True):
            sent.answer = answer

    cw.parallel(len(members), one)
    cw.parallel(len(members), lambda i: members[i].client.barrier(req, timeout))
    return cw.parallel(len(members), lambda i: members[i].client.barrier(req, timeout))
