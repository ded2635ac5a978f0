"""The mixed scenario's judge on hand-made logs: which requirement a seq gap is filed under.

A client that sent BYE stops being a member of its rooms at a moment it cannot see. A gap
before its BYE is a lost message (ORD-5); a frame that still comes after a gap once it has
sent BYE reached it when it was no longer a member (ORD-12), the fault one CI run of the zoo's
``stale-recipients`` server showed (it was filed under ORD-5 too, an unrelated verdict).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.client import Incoming
from conformance.mixed import Actor, Mixed
from conformance.mixed_judge import _messages, read
from spec.events import Deliver, Roster, Welcome


@dataclass
class LogOnly:
    """What the judge reads of a client: its timestamped log."""

    log: list[tuple[float, Incoming]] = field(default_factory=list)


def judged(departure: str | None, seqs_and_times: list[tuple[int, float]]) -> dict[str, list[str]]:
    """The problems filed for one actor that saw the lobby from seq 0, sent BYE at t=5."""
    a = Actor(0, echo_asked=False, rooms=[], departure=departure, nick="x0", done=True)
    a.t_departed = 5.0
    client = LogOnly([(0.0, Welcome("x0")), (0.1, Roster("lobby", 0, ("x0", "x1")))])
    client.log += [(t, Deliver("lobby", seq, "x1", f"m{seq}")) for seq, t in seqs_and_times]
    a.client = client  # type: ignore[assignment]
    a.judge_upto = len(client.log)
    mx = Mixed([], [a], [])
    _messages(mx, [read(mx, a)], "lobby")
    return dict(mx.problems)


def test_contiguous_seqs_around_the_bye_are_no_problem() -> None:
    assert judged("bye", [(1, 1.0), (2, 2.0), (3, 6.0), (4, 7.0)]) == {}


def test_a_gap_before_the_bye_is_a_lost_message() -> None:
    problems = judged("bye", [(1, 1.0), (3, 2.0), (4, 6.0)])
    assert list(problems) == ["ORD-5"]
    assert "[1, 3, 4] at position 1" in problems["ORD-5"][0]


def test_a_frame_after_a_gap_past_the_bye_went_to_a_non_member() -> None:
    problems = judged("bye", [(1, 1.0), (2, 2.0), (5, 6.0)])
    assert list(problems) == ["ORD-12"]
    assert problems["ORD-12"][0].startswith("after its BYE, x0 in lobby from seq 0:")


def test_without_a_bye_the_same_gap_is_a_lost_message() -> None:
    assert list(judged(None, [(1, 1.0), (2, 2.0), (5, 6.0)])) == ["ORD-5"]
