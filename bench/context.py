"""What every scenario uses: the worker pool, the servers to compare, results and progress."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import harness, metrics, report
from .cluster import start_cluster
from .harness import Layout, Pool
from .orders import ClientSpec, RunOrder
from .otherload import OtherLoad
from .presets import Preset
from .progress import Progress
from .result import Result
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
class Context:
    pool: Pool
    preset: Preset
    targets: list[Target]
    progress: Progress
    results: list[Result] = field(default_factory=list)
    load: OtherLoad = field(default_factory=OtherLoad)
    _serial: int = 0

    def __post_init__(self) -> None:
        for proc in self.pool.procs:
            if proc.pid is not None:
                self.load.watch(proc.pid)

    def unique(self, prefix: str) -> str:
        """A short name unused in this run (rooms and nicks on a server we may not own)."""
        self._serial += 1
        return f"{prefix}{os.getpid() % 100000}x{self._serial}"

    @contextmanager
    def server(self, target: Target, extra: tuple[str, ...] = ()) -> Iterator[Server]:
        """The target's server for one point: a fresh process, or the one given."""
        if target.address is not None:
            attached = attach(target.address, target.pid)
            if attached.pid is not None:
                self.load.watch(attached.pid, from_now=True)
            yield attached
            return
        assert target.kind is not None
        self.progress.phase(f"starting the {target.name} server")
        args = [*target.args, *extra] if target.kind == "reference" else []
        server = start_cluster(target.nodes, args) if target.nodes else start(target.kind, args)
        for pid in server.pids():
            self.load.watch(pid)
        try:
            yield server
        finally:
            code = server.stop()
            if code not in (0, None, -15):
                self.progress.say(f"warning: {target.name} server exited with {code}")

    def record(
        self, scenario: str, variant: str, params: dict[str, Any], server: str, figures: Any
    ) -> Result:
        # The machine is shared: what other processes took while the point ran marks the
        # figures taken while something else was running (the load average counts ours too).
        figures.setdefault("load_1m", os.getloadavg()[0])
        figures.update(self.load.point())
        result = Result(scenario, variant, params, server, figures)
        self.results.append(result)
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        note = report.headline(result)
        others = f"others {figures['other_cpu_cores']:.1f} cores" + (
            ", disturbed" if figures["disturbed"] else ""
        )
        self.progress.point(f"{scenario} {variant} {shown} [{server}]: {note} ({others})")
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
            clients = sum(len(specs) for specs in layout.clients.values())
            self.progress.phase(f"connecting {clients} clients to {server.name}")
            joined = harness.connect(self.pool, server, layout, self.preset.connect_timeout)
            if joined["failed"]:
                return {"status": connect_failed(joined), "connect": joined}
            before = server.sample()
            used = workers if workers is not None else sorted(layout.clients)
            self.progress.phase(f"running the point (at most {order.deadline_s:g} s)")
            results = harness.run(self.pool, used, order)
            after = server.sample()
            figures = metrics.merge_run(results, server.dialect, before, after)
            figures["connect"] = joined
            if not server.alive():
                figures["status"] = f"server died: {server.log_tail()}"
            return figures
        finally:
            self.progress.phase("closing the clients")
            self.pool.reset()


def spread(specs: list[ClientSpec], workers: list[int]) -> dict[int, list[ClientSpec]]:
    """Deal clients round-robin over ``workers``."""
    out: dict[int, list[ClientSpec]] = {w: [] for w in workers}
    for i, spec in enumerate(specs):
        out[workers[i % len(workers)]].append(spec)
    return out


def frozen(layout: dict[int, list[ClientSpec]]) -> dict[int, tuple[ClientSpec, ...]]:
    return {w: tuple(specs) for w, specs in layout.items() if specs}


def connect_failed(joined: dict[str, Any]) -> str:
    """The status of a point whose clients could not all connect: how many, and why."""
    shown = sorted(joined["failures"].items(), key=lambda kv: -kv[1])[:3]
    why = "; ".join(f"{count}x {reason}" for reason, count in shown)
    return f"connect failed: {joined['failed']} of {joined['failed'] + joined['ok']}: {why}"


def failed_server(exc: ServerError) -> dict[str, Any]:
    return {"status": f"server failed: {exc}"}
