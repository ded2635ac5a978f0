"""The pytest plugin that turns pytest runs of ``conformance/cases`` into conformance verdicts.

Loaded by ``conformance/cases/conftest.py``, so ``pytest conformance/cases --server H:P`` works
as well as ``python -m conformance``. It adds the options, the ``cw`` fixture, requirement-based
selection, ``--repeat``, the verdict mapping (see results.py), the terminal and JSON reports and
the exit code (0 conformant, 1 not, 2 untestable).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import pytest

from . import client as client_module
from .background import Background
from .context import Case
from .errors import HarnessError, TargetUnreachable, Violation, parse_skip
from .lateness import LATENESS
from .options import RunOptions, parse_address
from .preflight import PreflightError, probe
from .registry import Req, requirements, server_requirements
from .report import exit_code, json_report, terminal_report
from .results import (
    ERROR,
    FAIL,
    NON_STRICT,
    PASS,
    SKIPPED,
    CaseResult,
    Failure,
    aggregate,
    case_key,
    worst,
)
from .selection import Selection

OPTIONS = pytest.StashKey[RunOptions]()
STATE = pytest.StashKey["RunState"]()
CASE = pytest.StashKey[Case]()
#: From when a case's connections have been at stake (the suite's lateness counts from then).
SINCE = pytest.StashKey[float]()
BACKGROUND = pytest.StashKey["Backgrounds"]()


class Backgrounds:
    """One set of background probes per ``--repeat`` run: a probe is used up by the run that
    reads it (it was cut, or timed out), so every run gets fresh ones. Run 0's open before the
    first case; run k+1's open when run k's are first used, so their clocks overlap."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self._runs: dict[int, Background] = {}
        self._lock = threading.Lock()

    def for_run(self, run: int) -> Background:
        with self._lock:
            found = self._open(run)
            if run + 1 < self.options.repeat:
                # A failure here comes back to that run's own cases when they open it.
                with contextlib.suppress(Exception):
                    self._open(run + 1)
            return found

    def _open(self, run: int) -> Background:
        if run not in self._runs:
            self._runs[run] = Background(self.options)
        return self._runs[run]

    def stop(self) -> None:
        with self._lock:
            for bg in self._runs.values():
                bg.stop()


class RunState:
    def __init__(self) -> None:
        self.results: list[CaseResult] = []
        self.selected: list[str] = []
        self.server_info: dict[str, Any] | None = None
        self.started = time.time()
        self.exit_status = 0
        self.unreachable: str | None = None
        self.report_lines: list[str] = []
        self.background_error = ""


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("chatwire", "chatwire/1 conformance")
    g.addoption(
        "--server",
        action="append",
        default=[],
        help="HOST:PORT of the server under test; repeated: the nodes of one cluster",
    )
    g.addoption("--clients", type=int, default=50, help="clients in concurrent scenarios")
    g.addoption("--timeout-scale", type=float, default=1.0, help="multiply every deadline")
    g.addoption("--seed", type=int, default=None, help="seed for randomised scenarios")
    g.addoption("--repeat", type=int, default=1, help="run each case N times")
    g.addoption("--only", action="append", default=[], help="requirement ID glob or section")
    g.addoption("--skip", action="append", default=[], help="requirement ID glob or section")
    g.addoption("--strict-should", action="store_true", help="SHOULD misses fail the run")
    g.addoption("--json", dest="cw_json", help="write the JSON report to this file")
    g.addoption("--list-cases", action="store_true", help="list cases and their requirements")
    g.addoption("--launched", action="append", default=[], help=argparse_hidden())
    g.addoption("--no-preflight", action="store_true", help="skip the preflight probe")
    g.addoption(
        "--late-pongs",
        type=float,
        default=0.0,
        help="(suite self-tests) answer server PINGs this many seconds late: a starved suite",
    )
    g.addoption(
        "--launched-pid",
        type=int,
        action="append",
        default=[],
        help="(set by python -m conformance --launch) lets the last cases stop the servers",
    )


def argparse_hidden() -> str:
    return "(set by python -m conformance: the command that started the server)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(*ids): PROTOCOL.md requirement IDs")
    seed = config.getoption("--seed")
    try:
        addresses = [parse_address(s) for s in config.getoption("--server")]
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    options = RunOptions(
        server=addresses[0] if addresses else None,
        servers=addresses,
        launch=" ; ".join(config.getoption("--launched")) or None,
        clients=config.getoption("--clients"),
        timeout_scale=config.getoption("--timeout-scale"),
        seed=seed if seed is not None else random.SystemRandom().randrange(1, 2**31),
        repeat=max(1, config.getoption("--repeat")),
        strict=config.getoption("--strict-should"),
        only=config.getoption("--only"),
        skip=config.getoption("--skip"),
        json_path=config.getoption("cw_json"),
    )
    if options.clients < 2:
        raise pytest.UsageError("--clients must be at least 2")
    if options.timeout_scale <= 0:
        raise pytest.UsageError("--timeout-scale must be positive")
    config.stash[OPTIONS] = options
    config.stash[STATE] = RunState()
    client_module.PONG_DELAY = config.getoption("--late-pongs")
    LATENESS.start()


def pytest_report_header(config: pytest.Config) -> str:
    o = config.stash[OPTIONS]
    return f"chatwire conformance: target {o.target}, seed {o.seed}, clients {o.clients}"


def _case_ids(item: pytest.Item) -> tuple[str, ...]:
    return tuple(i for m in item.iter_markers("requirement") for i in m.args)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    repeat = metafunc.config.stash[OPTIONS].repeat
    if "cw_run" in metafunc.fixturenames and repeat > 1:
        metafunc.parametrize(
            "cw_run", range(repeat), ids=[f"cw-run-{i + 1}" for i in range(repeat)]
        )


@pytest.fixture
def cw_run() -> int:
    return 0


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    registry = requirements()
    options = config.stash[OPTIONS]
    selection = Selection(options.only, options.skip)
    judged = server_requirements()
    bad = selection.unmatched({rid: r.section for rid, r in judged.items()})
    if bad:
        raise pytest.UsageError(f"--only/--skip pattern matches no requirement: {', '.join(bad)}")
    keep, drop = [], []
    for item in items:
        ids = _case_ids(item)
        unknown = [i for i in ids if i not in registry]
        if not ids or unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown or missing requirement IDs {unknown}")
        if any(selection.selects(i, registry[i].section) for i in ids):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Time-limit cases read off the background probes: run them last, when most time has passed.
    # The shutdown case stops the server, so it comes after everything else.
    # With --repeat, the background cases run grouped by run, each run on its own probes.
    # A case that stops a cluster node comes after the rest, before the shutdown case.
    keep.sort(
        key=lambda i: (
            "server_pid" in getattr(i, "fixturenames", ()),
            "node_pids" in getattr(i, "fixturenames", ()),
            "background" in getattr(i, "fixturenames", ()),
            _run_index(i) if "background" in getattr(i, "fixturenames", ()) else 0,
        )
    )
    items[:] = keep
    state = config.stash[STATE]
    state.selected = [
        rid
        for rid, r in judged.items()
        if selection.selects(rid, r.section) and any(rid in _case_ids(i) for i in keep)
    ]
    if config.getoption("--list-cases"):
        _print_listing(keep, registry)
        config.hook.pytest_deselected(items=list(items))
        items[:] = []


def _run_index(item: pytest.Item) -> int:
    callspec = getattr(item, "callspec", None)
    return int(callspec.params.get("cw_run", 0)) if callspec is not None else 0


def _print_listing(items: list[pytest.Item], registry: dict[str, Req]) -> None:
    for item in items:
        ids = _case_ids(item)
        tags = ", ".join(f"{i} ({registry[i].level})" for i in ids)
        print(f"{item.nodeid}  {tags}")
    print(f"{len(items)} cases")


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    options = config.stash[OPTIONS]
    state = config.stash[STATE]
    if config.getoption("--list-cases") or config.getoption("collectonly"):
        return
    if options.server is None:
        raise pytest.UsageError("no target: give --server HOST:PORT")
    if state.server_info is None and not config.getoption("--no-preflight"):
        try:
            state.server_info = probe(options.server, options.timeout_scale)
        except PreflightError as exc:
            pytest.exit(f"conformance: {exc}", returncode=2)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.getoption("--list-cases") or config.getoption("collectonly"):
        return
    if any("background" in getattr(i, "fixturenames", ()) for i in session.items):
        backgrounds = Backgrounds(config.stash[OPTIONS])
        config.stash[BACKGROUND] = backgrounds
        try:
            backgrounds.for_run(0)
        except Exception as exc:  # the cases that need it will report ERROR
            config.stash[STATE].background_error = f"background probes failed: {exc!r}"


@pytest.fixture
def background(request: pytest.FixtureRequest, cw_run: int) -> Background:
    """This run's background probes (each --repeat run has its own)."""
    backgrounds = request.config.stash.get(BACKGROUND, None)
    if backgrounds is None:
        raise HarnessError(request.config.stash[STATE].background_error or "no background probes")
    try:
        found = backgrounds.for_run(cw_run)
    except Exception as exc:
        raise HarnessError(f"background probes failed: {exc!r}") from exc
    request.node.stash[SINCE] = found.opened  # its probes have been at stake since then
    return found


@pytest.fixture
def server_pid(request: pytest.FixtureRequest) -> int | None:
    """The PID of a server this run launched (and may therefore stop), else None."""
    pids: list[int] = request.config.getoption("--launched-pid")
    return pids[0] if pids else None


@pytest.fixture
def server_pids(request: pytest.FixtureRequest) -> list[int]:
    """The PIDs of every server (cluster node) this run launched, in --server order."""
    pids: list[int] = request.config.getoption("--launched-pid")
    return pids


@pytest.fixture
def node_pids(request: pytest.FixtureRequest) -> list[int]:
    """Like ``server_pids``, for cases that kill a node mid-run (they run before the
    shutdown case, after the rest)."""
    pids: list[int] = request.config.getoption("--launched-pid")
    return pids


@pytest.fixture
def cw(request: pytest.FixtureRequest, cw_run: int) -> Generator[Case]:
    options = request.config.stash[OPTIONS]
    ids = _case_ids(request.node)
    rng = random.Random(f"{options.seed}:{case_key(request.node.nodeid)}:{cw_run}")
    case = Case(options, ids, rng, options.timeout_scale)
    request.node.stash[CASE] = case
    request.node.stash.setdefault(SINCE, time.monotonic())
    yield case
    case.close_all()
    # The verdict is taken (with the transcript, if it is needed): let the frames go. Kept
    # for a whole --repeat run they grow the heap until a garbage collection stalls the
    # suite for seconds, which a short idle timeout does not forgive.
    case.forget()
    del request.node.stash[CASE]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        result = _judge(item, call, report)
        item.config.stash[STATE].results.append(result)
        item.user_properties.append(("verdict", result.verdict))
        item.user_properties.append(("requirements", " ".join(result.ids)))
        if result.transcript_text:  # JUnit system-out is taken from the teardown report
            text = f"wire transcript of {item.nodeid}\n{result.transcript_text}\n"
            item.add_report_section(report.when, "stdout", text)
    return report


def _judge(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> CaseResult:
    config = item.config
    options = config.stash[OPTIONS]
    registry = requirements()
    ids = _case_ids(item)
    case = item.stash.get(CASE, None)
    run = _run_index(item)
    doc = " ".join((getattr(getattr(item, "obj", None), "__doc__", None) or "").split())
    result = CaseResult(item.nodeid, item.name, doc, ids, run, PASS, {}, duration=report.duration)
    exc = call.excinfo.value if call.excinfo is not None else None
    violations = list(case.violations) if case else []
    if report.skipped:
        result.skip_reason = parse_skip(str(exc) if exc else str(report.longrepr))
        result.per_req = dict.fromkeys(ids, SKIPPED)
    elif isinstance(exc, Violation):
        violations.append(exc)
    elif exc is not None:
        result.error = _error_text(exc)
        result.per_req = dict.fromkeys(ids, ERROR)
        if isinstance(exc, TargetUnreachable):
            config.stash[STATE].unreachable = str(exc)
            item.session.shouldstop = f"target unreachable: {exc}"
    if not result.per_req:
        stopped = isinstance(exc, Violation)
        for v in violations:
            req = v.req or ids[0]
            level = registry[req].level if req in registry else "MUST"
            verdict = NON_STRICT if level.startswith("SHOULD") else FAIL
            result.failures.append(Failure(req, level, v.expected, v.actual, v.slack))
            result.per_req[req] = worst([result.per_req.get(req, PASS), verdict])
        for rid in ids:
            if rid not in result.per_req:
                reached = not stopped or (case is not None and rid in case.passed)
                result.per_req[rid] = PASS if reached else SKIPPED
        if stopped and any(v == SKIPPED for v in result.per_req.values()):
            result.skip_reason = ("not-reached", "the case stopped at an earlier failure")
    _excuse_if_starved(item, result)
    result.verdict = worst(result.per_req.values())
    if case:
        result.observations = case.observations
    if result.verdict in (FAIL, ERROR, NON_STRICT) and case is not None:
        result.transcript = case.transcript.to_json()
        result.transcript_text = case.transcript.render()
    _set_pytest_outcome(report, result, options.strict)
    return result


def _tolerance(config: pytest.Config) -> float:
    """How late the suite may run before a fault it finds could be its own: a third of the
    shortest time limit the server advertised (at least 0.1 s), times --timeout-scale. (The
    cases leave their clients at least that much slack before any limit.)"""
    info = config.stash[STATE].server_info or {}
    limits = [info.get(k, 0) / 1000 for k in ("idle_timeout_ms", "slow_timeout_ms")]
    shortest = min((x for x in limits if x > 0), default=2.0)
    return max(0.1, shortest / 3) * config.stash[OPTIONS].timeout_scale


def _excuse_if_starved(item: pytest.Item, result: CaseResult) -> None:
    """A fault found while the suite itself ran late is reported as the harness's ERROR."""
    faulted = [rid for rid, v in result.per_req.items() if v in (FAIL, NON_STRICT)]
    since = item.stash.get(SINCE, None)
    if not faulted or since is None:
        return
    late = LATENESS.worst_since(since)
    tolerance = _tolerance(item.config)
    if late <= tolerance:
        return
    # Lateness explains a fault only if the fault is about timing and the suite was at least
    # that late, or if a client of the suite that should have stayed alive was cut as idle
    # (it answered or sent its PINGs late). A wrong code or a lost message is never excused.
    case = item.stash.get(CASE, None)
    cut = LATENESS.idle_cuts_since(since, case.transcript if case else None)
    if not cut and not all(f.slack is not None and late >= f.slack for f in result.failures):
        return
    for rid in faulted:
        result.per_req[rid] = ERROR
    found = "; ".join(f"[{f.req}] {f.actual}" for f in result.failures)
    result.failures = []
    why = f"; {cut[0]} was cut as idle" if cut else ""
    result.error = (
        f"harness error: the suite itself ran {late:.2f}s late during this case (more than"
        f" the {tolerance:.2f}s the server's time limits allow{why}), so what it saw may be its"
        f" own doing: {found}. Re-run on a quieter machine or with a larger --timeout-scale"
    )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, HarnessError):
        return f"harness error: {exc}"
    if type(exc).__name__ == "Failed" and "Timeout" in str(exc):
        return f"hard timeout (pytest-timeout): {str(exc).splitlines()[0]}"
    return f"harness error: {type(exc).__name__}: {exc}"


def _set_pytest_outcome(report: pytest.TestReport, result: CaseResult, strict: bool) -> None:
    """Make pytest's own pass/fail agree with the verdict (NON-STRICT passes unless strict)."""
    failing = {FAIL, ERROR} | ({NON_STRICT} if strict else set())
    if result.verdict in failing and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = "\n".join(
            f"[{f.req}] expected {f.expected}; got {f.actual}" for f in result.failures
        )
    elif result.verdict == NON_STRICT and not strict and report.outcome == "failed":
        report.outcome = "passed"
        report.longrepr = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.getoption("--list-cases") or config.getoption("collectonly"):
        session.exitstatus = 0 if exitstatus in (0, 5) else exitstatus
        return
    if OPTIONS not in config.stash:
        return
    options, state = config.stash[OPTIONS], config.stash[STATE]
    if BACKGROUND in config.stash:
        config.stash[BACKGROUND].stop()
    if exitstatus in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return
    seconds = time.time() - state.started
    registry = requirements()
    reqs = aggregate(state.results, state.selected)
    status = 2 if state.unreachable else exit_code(reqs, state.results, options.strict)
    if exitstatus == pytest.ExitCode.INTERRUPTED and not state.unreachable:
        status = int(exitstatus)
    state.exit_status = status
    session.exitstatus = status
    state.report_lines = terminal_report(reqs, registry, state.results, options, seconds, status)
    if state.unreachable:
        state.report_lines.append(f"conformance: target became unreachable: {state.unreachable}")
    if options.json_path:
        timing = {
            "started_at": datetime.fromtimestamp(state.started, UTC).isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "duration_s": round(seconds, 3),
        }
        doc = json_report(reqs, registry, state.results, options, timing, status, state.server_info)
        with open(options.json_path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=False)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if STATE not in config.stash:
        return
    lines = config.stash[STATE].report_lines
    if lines:
        terminalreporter.section("chatwire/1 conformance report")
        for line in lines:
            terminalreporter.write_line(line)
