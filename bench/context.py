"""What every scenario uses: the worker pool, the servers to compare, results and progress."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import harness, metrics
from .cluster import start_cluster
from .harness import Layout, Pool
from .orders import ClientSpec, RunOrder
from .presets import Preset
from .servers import Server, ServerError, attach, start


@dataclass(frozen=True)
class Target:
    """A server to measure: one started per point (``kind``) or one given by address."""

    name: str
    kind: str | None = None
    address: str | None = None
    pid: int | None = None
    args: tuple[str, ...] = ()
    #: More than 0: the reference server as this many cluster nodes on one Redis (§20).
    nodes: int = 0


@dataclass
class Result:
    scenario: str
    variant: str
    params: dict[str, Any]
    server: str
    figures: dict[str, Any]


class Progress:
    """One line per finished point on stderr, so a long sweep shows where it is."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        if self.enabled:
            print(f"[{time.monotonic() - self.start:6.1f}s] {text}", file=sys.stderr, flush=True)


@dataclass
class Context:
    pool: Pool
    preset: Preset
    targets: list[Target]
    progress: Progress
    results: list[Result] = field(default_factory=list)
    _serial: int = 0

    def unique(self, prefix: str) -> str:
        """A short name unused in this run (rooms and nicks on a server we may not own)."""
        self._serial += 1
        return f"{prefix}{os.getpid() % 100000}x{self._serial}"

    @contextmanager
    def server(self, target: Target, extra: tuple[str, ...] = ()) -> Iterator[Server]:
        """The target's server for one point: a fresh process, or the one given."""
        if target.address is not None:
            yield attach(target.address, target.pid)
            return
        assert target.kind is not None
        args = [*target.args, *extra] if target.kind == "reference" else []
        server = start_cluster(target.nodes, args) if target.nodes else start(target.kind, args)
        try:
            yield server
        finally:
            code = server.stop()
            if code not in (0, None, -15):
                self.progress.say(f"warning: {target.name} server exited with {code}")

    def record(
        self, scenario: str, variant: str, params: dict[str, Any], server: str, figures: Any
    ) -> Result:
        # The machine is shared: the 1-minute load average beside each point tells which
        # figures were taken while something else was running.
        figures.setdefault("load_1m", os.getloadavg()[0])
        result = Result(scenario, variant, params, server, figures)
        self.results.append(result)
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        rate = figures.get("deliveries_per_s")
        note = f"{rate:,.0f} deliveries/s" if rate else figures.get("status", "")
        load = figures["load_1m"]
        self.progress.say(f"{scenario} {variant} {shown} [{server}]: {note} (load {load:.1f})")
        return result

    def measure(
        self,
        server: Server,
        layout: Layout,
        order: RunOrder,
        workers: list[int] | None = None,
    ) -> dict[str, Any]:
        """Connect ``layout``, run ``order``, and return the point's figures (always resets)."""
        try:
            joined = harness.connect(self.pool, server, layout, self.preset.connect_timeout)
            if joined["failed"]:
                return {"status": "connect failed", "connect": joined}
            before = server.sample()
            used = workers if workers is not None else sorted(layout.clients)
            results = harness.run(self.pool, used, order)
            after = server.sample()
            figures = metrics.merge_run(results, server.dialect, before, after)
            figures["connect"] = joined
            if not server.alive():
                figures["status"] = f"server died: {server.log_tail()}"
            return figures
        finally:
            self.pool.reset()


def spread(specs: list[ClientSpec], workers: list[int]) -> dict[int, list[ClientSpec]]:
    """Deal clients round-robin over ``workers``."""
    out: dict[int, list[ClientSpec]] = {w: [] for w in workers}
    for i, spec in enumerate(specs):
        out[workers[i % len(workers)]].append(spec)
    return out


def frozen(layout: dict[int, list[ClientSpec]]) -> dict[int, tuple[ClientSpec, ...]]:
    return {w: tuple(specs) for w, specs in layout.items() if specs}


def failed_server(exc: ServerError) -> dict[str, Any]:
    return {"status": f"server failed: {exc}"}
