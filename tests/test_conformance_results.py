"""From case runs to requirement verdicts: --repeat pass rates, and who is to blame."""

from __future__ import annotations

from conformance.client import SHOWN_BEFORE, Closed, Ending, _actual, describe
from conformance.results import ERROR, FAIL, PASS, CaseResult, aggregate
from spec.constants import LeaveReason
from spec.events import Left, Ping


def _run(verdict: str, run: int, observed: tuple[str, tuple[str, ...]] | None = None) -> CaseResult:
    ids = ("KEEP-5", "KEEP-6")
    result = CaseResult(f"cases/x.py::test_x[cw-run-{run}]", "x", "", ids, run, verdict, {})
    result.per_req = dict.fromkeys(ids, verdict)
    if verdict == ERROR:
        result.error = "harness error: the suite itself ran 2.00s late"
    if observed:
        result.observations.append(observed)
    return result


def test_a_harness_error_does_not_make_a_server_intermittent() -> None:
    got = aggregate([_run(PASS, 1), _run(ERROR, 2), _run(PASS, 3)], ["KEEP-5"])["KEEP-5"]
    assert got.verdict == ERROR and not got.intermittent
    assert (got.runs, got.passed_runs, got.harness_errors) == (3, 2, 1)


def test_a_server_that_fails_sometimes_is_intermittent() -> None:
    got = aggregate([_run(PASS, 1), _run(FAIL, 2)], ["KEEP-5"])["KEEP-5"]
    assert got.verdict == FAIL and got.intermittent and got.harness_errors == 0


def test_notes_go_only_under_the_ids_they_are_about() -> None:
    runs = [_run(PASS, 1, ("cut after 2014 ms of silence", ("KEEP-5",)))]
    reqs = aggregate(runs, ["KEEP-5", "KEEP-6"])
    assert reqs["KEEP-5"].notes == ["cut after 2014 ms of silence"]
    assert reqs["KEEP-6"].notes == []


def test_a_failure_shows_the_frames_just_before_the_decisive_one() -> None:
    skipped = [Ping(i) for i in range(100)]
    text = _actual(Closed(Ending.EOF), list(skipped))
    assert text.startswith("the connection closed (FIN), after 100 other frames")
    assert repr(Ping(99)) in text and repr(Ping(100 - SHOWN_BEFORE)) in text
    assert repr(Ping(0)) not in text


def test_leave_reasons_are_named() -> None:
    assert "LEFT TIMEOUT" in describe(Left("lobby", "bob", LeaveReason.TIMEOUT))
    assert "LEFT 99" in describe(Left("lobby", "bob", 99))
