"""The per-case toolbox (the ``cw`` fixture): clients, fresh names, checks and observations.

Checks come in two strengths. ``cw.check`` records a broken requirement and lets the case go on
(so one run of a concurrent scenario can judge several invariants); ``cw.must`` stops the case.
Whether a broken requirement is FAIL or NON-STRICT is decided later from its level.
"""

from __future__ import annotations

import itertools
import random
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from spec.constants import Capability, ErrorCode
from spec.events import Welcome

from .client import MockClient
from .errors import HarnessError, SkipReason, Violation, skip
from .options import RunOptions
from .transcript import Transcript

T = TypeVar("T")

#: One tag per suite process, so two runs against one server never pick the same names.
_RUN_TAG = secrets.token_hex(2)
_names = itertools.count(1)


def fresh_name(label: str = "c") -> str:
    """A nick (or room name) no other client of this run has used (at most 32 bytes, §5.1)."""
    return f"{label[:16]}-{_RUN_TAG}{next(_names)}"


class Case:
    def __init__(
        self, options: RunOptions, ids: Sequence[str], rng: random.Random, scale: float
    ) -> None:
        if options.server is None:
            raise HarnessError("no server address (use --server HOST:PORT)")
        self.address = options.server
        #: Clients are spread round-robin over these (the nodes of a cluster; §20).
        self.addresses = list(options.servers or [options.server])
        self._spread = itertools.count()
        self.options = options
        self.ids = tuple(ids)
        self.rng = rng
        self.scale = scale
        self.transcript = Transcript()
        self.violations: list[Violation] = []
        self.passed: set[str] = set()
        #: What the server was seen to do, each with the requirements it is evidence for.
        self.observations: list[tuple[str, tuple[str, ...]]] = []
        self._clients: list[MockClient] = []
        self._lock = threading.Lock()

    # -- names --------------------------------------------------------------------------

    def nick(self, label: str = "c") -> str:
        """A nick no other client of this run has used (at most 32 bytes, §5.1)."""
        return fresh_name(label)

    def room(self, label: str = "r") -> str:
        """A fresh room name, already in canonical lowercase (§6.1)."""
        return fresh_name(label).lower()

    # -- clients ------------------------------------------------------------------------

    def client(
        self,
        label: str = "c",
        *,
        read: bool = True,
        rcvbuf: int | None = None,
        auto_pong: bool = True,
        node: int | None = None,
    ) -> MockClient:
        """A connected, not yet registered client (its name in transcripts is ``label``), on
        the next server address in turn, or on address number ``node``."""
        with self._lock:
            name = label if all(c.name != label for c in self._clients) else self.nick(label)
            turn = next(self._spread) if node is None else node
            client = MockClient(
                self.addresses[turn % len(self.addresses)],
                name,
                self.transcript,
                scale=self.scale,
                rcvbuf=rcvbuf,
                auto_pong=auto_pong,
            )
            self._clients.append(client)
        return client.connect(read=read)

    def registered(
        self, label: str = "c", caps: int = 0, *, req: str = "", **kwargs: object
    ) -> MockClient:
        client = self.client(label, **kwargs)  # type: ignore[arg-type]
        client.register(self.nick(label), caps, req=req)
        return client

    def many(self, n: int, label: str = "m", caps: int = 0, *, req: str = "") -> list[MockClient]:
        """``n`` registered clients, registering concurrently."""
        return self.parallel(n, lambda i: self.registered(f"{label}{i}", caps, req=req))

    def close_all(self) -> None:
        for client in self._clients:
            client.close()

    def forget(self) -> None:
        """Drop what the case recorded (once it has been judged and reported)."""
        for client in self._clients:
            client.forget()
        self._clients.clear()
        self.transcript = Transcript()

    # -- concurrency --------------------------------------------------------------------

    def parallel(self, n: int, work: Callable[[int], T], timeout: float = 60.0) -> list[T]:
        """Run ``work(0..n-1)`` on ``n`` threads released together by a barrier.

        The first Violation raised by any thread is re-raised (others are recorded); any other
        exception becomes a HarnessError.
        """
        start = threading.Barrier(n)
        results: list[T | None] = [None] * n
        errors: list[BaseException | None] = [None] * n

        def run(i: int) -> None:
            try:
                start.wait(timeout=timeout * self.scale)
                results[i] = work(i)
            except BaseException as exc:
                errors[i] = exc

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout * self.scale  # one bound for all, not one each
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t for t in threads if t.is_alive()]
        if stuck:
            frame = sys._current_frames().get(stuck[0].ident or 0)
            where = "".join(traceback.format_stack(frame)[-3:]) if frame else "?"
            raise HarnessError(f"{len(stuck)} threads still running; the first in:\n{where}")
        found = [e for e in errors if e is not None]
        violations = [e for e in found if isinstance(e, Violation)]
        if violations:
            for extra in violations[1:]:
                self.violations.append(extra)
            raise violations[0]
        if found:
            raise HarnessError(f"{len(found)} client threads failed: {found[0]!r}") from found[0]
        return cast(list[T], results)

    # -- judgement ----------------------------------------------------------------------

    def check(
        self,
        ok: bool,
        req: str,
        expected: str,
        actual: str | Callable[[], str],
        *,
        slack: float | None = None,
    ) -> bool:
        """Record whether ``req`` held; the case goes on either way. ``slack``: for a check of
        timing, by how many seconds it was missed (see :class:`Violation`)."""
        if ok:
            self.passed.add(req)
        else:
            text = actual() if callable(actual) else actual
            self.violations.append(Violation(req, expected, text, slack))
            self.transcript.note("suite", f"[{req}] expected {expected}; got {text}")
        return ok

    def must(self, ok: bool, req: str, expected: str, actual: str | Callable[[], str]) -> None:
        """Like :meth:`check`, but a miss ends the case."""
        if not ok:
            raise Violation(req, expected, actual() if callable(actual) else actual)
        self.passed.add(req)

    def ok(self, *reqs: str) -> None:
        """Mark requirements as verified by what the case already saw."""
        self.passed.update(reqs)

    def observe(self, text: str, *about: str) -> None:
        """Note which of several allowed behaviours the server showed, as evidence for the
        requirements ``about`` (by default the case's first): reports show it under those."""
        self.observations.append((text, about or self.ids[:1]))

    # -- capabilities -------------------------------------------------------------------

    def require_capability(self, welcome: Welcome, cap: Capability, req: str) -> None:
        """SKIP unless ``cap`` was granted; and a grant of something not asked is a FAIL."""
        if not welcome.caps & cap:
            skip(SkipReason.CAPABILITY_NOT_GRANTED, f"the server did not grant {cap.name}")
        self.passed.add(req)

    def wait(self, seconds: float) -> float:
        """A deadline length scaled for this run."""
        return seconds * self.scale


def error_names(*codes: ErrorCode) -> str:
    return " or ".join(c.name for c in codes)
