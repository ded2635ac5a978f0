"""Broken servers about time limits that the suite once let pass (issue 9): each keeps one
clock wrong in a way that only some legal settings, or a closer look, can show."""

from __future__ import annotations

import dataclasses
import time

from reference.server import ServerConfig
from reference.session import Ending, Session, fatal
from spec.connection import State
from spec.constants import ErrorCode, LeaveReason


class IdleWhileHeldSession(Session):
    """Counts the time it holds a sender back (§12.3) as the sender's silence: after a long
    hold the sender is cut with IDLE_TIMEOUT (KEEP-7). Only a hold longer than the idle
    timeout shows it, so it runs with slow_timeout above idle_timeout."""

    def process(self) -> Ending | None:
        read_at = time.monotonic()  # the frames just read arrived now, then came the hold
        ending = super().process()
        idle = self.config.idle_timeout
        if ending is None and idle > 0 and time.monotonic() - read_at >= idle:
            error = fatal(ErrorCode.IDLE_TIMEOUT, f"nothing received for {idle:g}s")
            return Ending(LeaveReason.TIMEOUT, error.error, detail=error.detail)
        return ending


class IdleWhileCongestedSession(Session):
    """Runs the idle clock while the client is congested, so a member that stops reading (and
    says nothing) is cut as idle before §12 can cut it as slow (KEEP-10)."""

    def timers(self, now: float) -> tuple[float | None, Ending | None]:
        wait, ending = super().timers(now)
        idle = self.config.idle_timeout
        if ending is not None or self.state is not State.REGISTERED or idle <= 0:
            return wait, ending
        silent = now - self.last_frame  # congestion and its end ignored
        if silent >= idle:
            error = fatal(ErrorCode.IDLE_TIMEOUT, f"nothing received for {idle:g}s")
            return None, Ending(LeaveReason.TIMEOUT, error.error, detail=error.detail)
        return (idle - silent if wait is None else min(wait, idle - silent)), None


class BytesAreActivitySession(Session):
    """Counts any bytes received as activity, whole frames or not: a client that trickles an
    incomplete frame is never cut as idle while it trickles (KEEP-5, §10.2)."""

    def process(self) -> Ending | None:
        ending = super().process()
        self.last_frame = time.monotonic()
        return ending


class NoDrainSession(Session):
    """Sends the fatal ERROR and the FIN, then closes at once without draining the input
    (ERR-7): input still arriving turns into a reset that can destroy the ERROR."""

    def drain(self, deadline: float) -> None:
        return


class CutsAtZeroIdleSession(Session):
    """Advertises idle_timeout_ms 0 (never) but cuts clients silent for 3.5 s all the same,
    PINGing them at half that time as it would for a real timeout (KEEP-6)."""

    HIDDEN_IDLE = 3.5

    def timers(self, now: float) -> tuple[float | None, Ending | None]:
        advertised = self.config
        assert isinstance(advertised, ServerConfig)
        self.config = dataclasses.replace(advertised, idle_timeout=self.HIDDEN_IDLE)
        try:
            return super().timers(now)
        finally:
            self.config = advertised
