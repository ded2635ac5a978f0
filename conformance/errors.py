"""How a case ends when it does not simply pass: the verdict vocabulary of the suite.

* :class:`Violation` — the server broke a requirement (FAIL for a MUST, NON-STRICT for a SHOULD;
  the level comes from the requirement registry, not from the case).
* :class:`HarnessError` — the suite could not run the case (ERROR), e.g. the server vanished.
* :func:`skip` with a :class:`SkipReason` — the case does not apply to this server (SKIPPED).
"""

from __future__ import annotations

import enum
from typing import NoReturn

import pytest


class Violation(AssertionError):
    """The server did not do what requirement ``req`` says; ``expected``/``actual`` say how."""

    def __init__(self, req: str, expected: str, actual: str, slack: float | None = None) -> None:
        super().__init__(f"[{req}] expected {expected}; got {actual}")
        self.req = req
        self.expected = expected
        self.actual = actual
        #: For a judgement of timing: by how many seconds the server missed, so that a suite
        #: that ran at least that late cannot blame the server (None: lateness cannot explain).
        self.slack = slack


class HarnessError(Exception):
    """The suite itself could not carry out the case (verdict ERROR, never FAIL)."""


class TargetUnreachable(HarnessError):
    """The server could not be reached at all: nothing can be tested (exit code 2)."""


class SkipReason(enum.Enum):
    """Why a case was not judged. The value is the tag shown in every report."""

    #: The server did not grant an optional capability the case needs (§4.6).
    CAPABILITY_NOT_GRANTED = "capability-not-granted"
    #: The server does not advertise an optional limit (e.g. rate = 0, §13).
    NOT_ADVERTISED = "not-advertised"
    #: A time limit or size the server advertises is too long/large to test within the bound.
    LIMIT_TOO_LONG = "limit-too-long"
    #: The server's configuration makes the case inapplicable (e.g. max_rooms too high).
    NOT_APPLICABLE = "not-applicable"
    #: Another check of the same case failed first, so this requirement was never reached.
    NOT_REACHED = "not-reached"


_SKIP_PREFIX = "chatwire-skip:"


def skip(reason: SkipReason, detail: str) -> NoReturn:
    """End the case as SKIPPED with a typed reason."""
    pytest.skip(f"{_SKIP_PREFIX}{reason.value}: {detail}")


def parse_skip(message: str) -> tuple[str, str]:
    """Recover ``(reason tag, detail)`` from a skip message (untyped skips get ``other``)."""
    message = message.removeprefix("Skipped: ")
    if message.startswith(_SKIP_PREFIX):
        tag, _, detail = message[len(_SKIP_PREFIX) :].partition(": ")
        return tag, detail
    return "other", message
