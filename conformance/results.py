"""From case outcomes to per-requirement verdicts.

A case carries several requirement IDs. Each ID gets its own verdict within the case: FAIL or
NON-STRICT (by level) if the case caught the server breaking it; PASS if the case ran through,
or checked it before stopping; SKIPPED (not-reached) if the case stopped on another ID first;
SKIPPED or ERROR for every ID when the whole case was skipped or could not run. Across cases
(and ``--repeat`` runs), a requirement takes the worst verdict any case gave it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PASS = "PASS"
FAIL = "FAIL"
NON_STRICT = "NON-STRICT"
SKIPPED = "SKIPPED"
ERROR = "ERROR"

#: Worst first: a requirement shows the first of these that any of its cases gave it.
SEVERITY = (FAIL, ERROR, NON_STRICT, PASS, SKIPPED)
VERDICTS = SEVERITY


def worst(verdicts: Iterable[str]) -> str:
    seen = set(verdicts)
    for v in SEVERITY:
        if v in seen:
            return v
    return SKIPPED


@dataclass
class Failure:
    req: str
    level: str
    expected: str
    actual: str
    slack: float | None = None  #: see Violation.slack

    def to_json(self) -> dict[str, str]:
        return {
            "requirement": self.req,
            "level": self.level,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass
class CaseResult:
    nodeid: str
    name: str
    doc: str
    ids: tuple[str, ...]
    run: int  #: 0-based index among --repeat runs
    verdict: str
    per_req: dict[str, str]
    duration: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    skip_reason: tuple[str, str] | None = None  #: (tag, detail)
    error: str | None = None
    observations: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    transcript: dict[str, Any] | None = None
    transcript_text: str = ""


@dataclass
class ReqResult:
    id: str
    verdict: str
    cases: list[str]
    runs: int  #: case runs that judged it (skips not counted)
    passed_runs: int
    notes: list[str]
    #: some case judged the server differently across --repeat runs (FAIL in some, PASS in
    #: others); the suite's own ERRORs never make a server "intermittent"
    intermittent: bool = False
    harness_errors: int = 0  #: case runs that could not judge it (ERROR)


def case_key(nodeid: str) -> str:
    """The case without its --repeat parameter."""
    m = re.match(r"^(.*?)\[(.*)\]$", nodeid)
    if not m:
        return nodeid
    params = re.sub(r"-?cw-run-\d+", "", m.group(2)).strip("-")
    return f"{m.group(1)}[{params}]" if params else m.group(1)


def aggregate(results: list[CaseResult], selected: Iterable[str]) -> dict[str, ReqResult]:
    """Per selected requirement ID, the combined verdict of every case run for it."""
    out: dict[str, ReqResult] = {}
    for rid in selected:
        verdicts: list[str] = []
        per_case: dict[str, set[str]] = {}
        failures: list[str] = []
        skips: list[str] = []
        seen: list[str] = []
        for res in results:
            v = res.per_req.get(rid)
            if v is None:
                continue
            verdicts.append(v)
            per_case.setdefault(case_key(res.nodeid), set()).add(v)
            failures += [
                f"expected {f.expected}; got {f.actual}" for f in res.failures if f.req == rid
            ]
            if v == ERROR and res.error:
                failures.append(res.error)
            if v == SKIPPED and res.skip_reason:
                skips.append(f"[{res.skip_reason[0]}] {res.skip_reason[1]}")
            if v in (PASS, NON_STRICT):
                seen += [text for text, about in res.observations if rid in about]
        if not verdicts:
            continue
        verdict = worst(verdicts)
        judged = [v for v in verdicts if v != SKIPPED]
        notes = (
            failures
            if verdict in (FAIL, ERROR, NON_STRICT)
            else skips
            if verdict == SKIPPED
            else seen
        )
        out[rid] = ReqResult(
            rid,
            verdict,
            list(per_case),
            len(judged),
            sum(v in (PASS, NON_STRICT) for v in judged),
            list(dict.fromkeys(notes)),
            any(len(vs & {FAIL, NON_STRICT, PASS}) > 1 for vs in per_case.values()),
            sum(v == ERROR for v in judged),
        )
    return out
