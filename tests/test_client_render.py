"""What the interactive client draws for text from others (nothing that moves the cursor), and
how it splits a text too long for the server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.client.chat import split_text
from reference.client.render import CONTINUED, clean, event_lines, message_lines
from spec.events import Deliver, Left

#: Line breaks, C0/C1 controls (ESC, BEL, BS, DEL, CSI), bidi embeddings and overrides.
MOVERS = (
    "\r\n\x0b\x0c\x1b\x07\x08\x7f\x85\x9b\u2028\u2029"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)


@pytest.mark.parametrize("char", MOVERS)
def test_clean_leaves_no_character_that_moves_the_cursor(char: str) -> None:
    shown = clean(f"a{char}b")
    assert shown.startswith("a") and shown.endswith("b")
    assert not set(shown) & set(MOVERS), repr(shown)


def test_clean_keeps_ordinary_text_as_is() -> None:
    text = "héllo wörld 👩‍👩‍👧 ✓ עברית"  # the ZWJ of an emoji sequence stays
    assert clean(text) == text


def test_message_lines_split_at_every_line_break() -> None:
    assert message_lines("a\nb\r\nc\rd\u2028e") == ["a", "b", "c", "d", "e"]
    assert message_lines("") == [""]
    assert message_lines("x\x1by") == ["x^[y"]


def test_a_multi_line_message_is_drawn_under_a_bar() -> None:
    lines = event_lines(Deliver("lobby", 1, "bob", "one\ntwo\nthree"), "alice", False, None)
    texts = ["".join(text for _, text, *_ in line) for line in lines]
    assert texts[0].endswith("#lobby <bob> one")
    assert texts[1:] == [CONTINUED + "two", CONTINUED + "three"]


def test_a_quit_message_stays_on_one_line() -> None:
    (line,) = event_lines(
        Left("lobby", "bob", 2, "bye\n12:00 #lobby <eve> hi"), "alice", False, None
    )
    text = "".join(text for _, text, *_ in line)
    assert "\n" not in text and "bye ⏎ 12:00" in text


@given(st.text(max_size=300), st.integers(min_value=4, max_value=64))
def test_split_text_cuts_between_characters_within_the_limit(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= limit for p in pieces)
    assert len(pieces) == 1 or all(pieces)


def test_split_text_prefers_a_space_near_the_limit() -> None:
    assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb ", "cccc"]
    assert split_text("ééééé", 4) == ["éé", "éé", "é"]  # two bytes each: never half of one
    assert split_text("short", 100) == ["short"]
