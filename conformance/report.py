"""The two reports: the terminal one (grouped by spec section, one line per requirement) and
the JSON one (schema documented in REPORT-SCHEMA.md; bump SCHEMA_VERSION on any change that is
not a pure addition).
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections import Counter
from typing import Any

from spec.constants import PROTOCOL_VERSION

from . import SUITE_VERSION
from .options import RunOptions
from .registry import PROTOCOL_MD, Req, section_key, section_titles
from .results import SEVERITY, CaseResult, ReqResult

SCHEMA = "chatwire-conformance-report"
SCHEMA_VERSION = 1


def exit_code(reqs: dict[str, ReqResult], cases: list[CaseResult], strict: bool) -> int:
    """0 when no MUST failed (and, with --strict, no SHOULD missed); 1 otherwise.

    An ERROR also gives 1: a requirement the suite could not check is not shown to be met.
    """
    bad = {"FAIL", "ERROR"} | ({"NON-STRICT"} if strict else set())
    if any(r.verdict in bad for r in reqs.values()):
        return 1
    return 1 if any(c.verdict == "ERROR" for c in cases) else 0


def summary_line(reqs: dict[str, ReqResult], cases: list[CaseResult], seconds: float) -> str:
    counts = Counter(r.verdict for r in reqs.values())
    parts = [f"{counts[v]} {v}" for v in SEVERITY if counts[v]]
    runs = len(cases)
    return (
        f"{len(reqs)} requirements: {', '.join(parts) or 'none'}"
        f" — {runs} case runs in {seconds:.1f}s"
    )


def terminal_report(
    reqs: dict[str, ReqResult],
    registry: dict[str, Req],
    cases: list[CaseResult],
    options: RunOptions,
    seconds: float,
    exit_status: int,
) -> list[str]:
    lines = [
        f"chatwire/{PROTOCOL_VERSION} conformance {SUITE_VERSION} — target {options.target}"
        f" — seed {options.seed} — clients {options.clients}"
        f" — timeout scale {options.timeout_scale:g}",
    ]
    titles = section_titles()
    by_section: dict[str, list[ReqResult]] = {}
    for rid, res in reqs.items():
        by_section.setdefault(registry[rid].top_section, []).append(res)
    for sec in sorted(by_section, key=section_key):
        lines.append("")
        lines.append(f"§{sec} {titles.get(sec, '')}".rstrip())
        for res in sorted(by_section[sec], key=lambda r: section_key(registry[r.id].section)):
            req = registry[res.id]
            verdict = res.verdict
            if options.repeat > 1 and res.runs:
                verdict += f" {res.passed_runs}/{res.runs}"
                verdict += " intermittent" if res.intermittent else ""
                if res.harness_errors:
                    verdict += f" ({res.harness_errors} harness ERROR)"
            note = f" — {res.notes[0]}" if res.notes and res.verdict != "PASS" else ""
            if res.verdict == "PASS" and res.notes:
                note = f" — seen: {res.notes[0]}"
            lines.append(f"  {res.id:<12} {req.level:<10} {verdict:<10} {req.summary}{note}")
    failed = [c for c in cases if c.verdict in ("FAIL", "ERROR", "NON-STRICT")]
    if failed:
        lines.append("")
        lines.append("Cases that did not pass (details and wire transcripts: --json FILE):")
        for c in failed:
            lines.append(f"  {c.verdict:<10} {c.nodeid}")
            lines.extend(
                f"      [{f.req}] expected {f.expected}; got {f.actual}" for f in c.failures
            )
            if c.error:
                lines.append(f"      {c.error}")
    lines.append("")
    lines.append(summary_line(reqs, cases, seconds) + f" — exit {exit_status}")
    return lines


def json_report(
    reqs: dict[str, ReqResult],
    registry: dict[str, Req],
    cases: list[CaseResult],
    options: RunOptions,
    timing: dict[str, Any],
    exit_status: int,
    server_info: dict[str, Any] | None,
) -> dict[str, Any]:
    counts = Counter(r.verdict for r in reqs.values())
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run": {
            "target": options.target,
            "launched": options.launch,
            "suite_version": SUITE_VERSION,
            "spec_version": _spec_version(),
            "spec_sha256": _spec_digest(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "seed": options.seed,
            "options": options.to_json(),
            **timing,
            "exit_code": exit_status,
            "server": server_info,
        },
        "summary": {
            "requirements": len(reqs),
            "verdicts": {v: counts[v] for v in SEVERITY},
            "case_runs": len(cases),
            "case_verdicts": dict(Counter(c.verdict for c in cases)),
            "line": summary_line(reqs, cases, timing.get("duration_s", 0.0)),
        },
        "requirements": [
            {
                "id": rid,
                "level": registry[rid].level,
                "side": registry[rid].side,
                "section": registry[rid].section,
                "summary": registry[rid].summary,
                "verdict": res.verdict,
                "runs": res.runs,
                "passed_runs": res.passed_runs,
                "intermittent": res.intermittent,
                "cases": res.cases,
                "notes": res.notes,
            }
            for rid, res in reqs.items()
        ],
        "cases": [_case_json(c) for c in cases],
    }


def _spec_version() -> str:
    try:
        from spec.requirements import spec_version

        return spec_version()
    except (ImportError, OSError, ValueError):
        return f"chatwire/{PROTOCOL_VERSION}"


def _spec_digest() -> str | None:
    """Which text of PROTOCOL.md the verdicts refer to (requirements can be reworded)."""
    return hashlib.sha256(PROTOCOL_MD.read_bytes()).hexdigest() if PROTOCOL_MD.exists() else None


def _case_json(c: CaseResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.nodeid,
        "name": c.name,
        "description": c.doc,
        "requirements": list(c.ids),
        "run": c.run,
        "verdict": c.verdict,
        "requirement_verdicts": c.per_req,
        "duration_s": round(c.duration, 4),
        "observed": [text for text, _ in c.observations],
    }
    if c.skip_reason:
        out["skip"] = {"reason": c.skip_reason[0], "detail": c.skip_reason[1]}
    if c.failures:
        out["failures"] = [f.to_json() for f in c.failures]
    if c.error:
        out["error"] = c.error
    if c.transcript is not None:
        out["transcript"] = c.transcript
    return out
