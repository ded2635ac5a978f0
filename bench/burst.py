"""burst: N clients connect at one instant; how long until the last one is registered?

Every worker first makes its share of sockets (``burst-arm``); only when all have answered
does the harness pick a start instant a little ahead and tell every worker (``burst-fire``),
so the pool acts as one start barrier. At that instant each worker issues all its connects
and sends each opening (HELLO with QUIET, default room) as soon as the socket is writable.

Reported: seconds from the start instant to the last WELCOME (the target: 2,000 clients in
under 2 s), WELCOME-time percentiles, how many registered, were refused (an ERROR such as
SERVER_FULL before WELCOME) or failed (and why), the server's CPU over the burst, and the
machine-wide ListenDrops counter (SYNs dropped at a full listen queue are retried by the
client's kernel after 1 s, then 3 s, which shows as a tail of late WELCOMEs).
"""

from __future__ import annotations

import time
from typing import Any

from . import capacity, metrics
from .burstload import BurstOrder
from .context import Context, failed_server, frozen, spread
from .orders import ClientSpec, Role
from .procstat import ProcSample
from .servers import Server, ServerError

#: From choosing the start instant to reaching it: time for every worker to read its order
#: (an idle worker looks at its pipe every 50 ms).
LEAD_S = 0.25
TARGET_S = 2.0


def run(ctx: Context) -> None:
    for n in ctx.preset.burst_sizes:
        for target in ctx.targets:
            params = {"clients": n}
            short = capacity.problem(n, ctx.pool.size)
            if short is not None:
                ctx.record("burst", "at-once", params, target.name, {"status": f"skipped: {short}"})
                continue
            try:
                with ctx.server(target, ("--max-clients", str(n + 64))) as server:
                    figures = _burst(ctx, server, n)
                    if not server.alive():
                        figures["status"] = f"server died: {server.log_tail()}"
            except ServerError as exc:
                figures = failed_server(exc)
            finally:
                ctx.pool.reset()
            ctx.record("burst", "at-once", params, target.name, figures)


def _burst(ctx: Context, server: Server, n: int) -> dict[str, Any]:
    tag = ctx.unique("b")
    specs = [ClientSpec(f"{tag}c{i}", Role.RECEIVER) for i in range(n)]
    layout = frozen(spread(specs, list(range(ctx.pool.size))))
    timeout = ctx.preset.burst_timeout_s
    arm = {
        w: ("burst-arm", BurstOrder(server.host, server.port, server.dialect, mine, timeout))
        for w, mine in layout.items()
    }
    ctx.progress.phase(f"making {n} sockets in the workers")
    armed = ctx.pool.ask(arm, 60)
    drops = capacity.listen_drops()
    before = server.sample()
    start_ns = time.monotonic_ns() + int(LEAD_S * 1e9)
    fire = {w: ("burst-fire", start_ns) for w in armed}
    ctx.progress.phase(f"{n} clients connecting at once (at most {timeout:g} s)")
    replies = list(ctx.pool.ask(fire, timeout + LEAD_S + 30).values())
    after = server.sample()
    drops_after = capacity.listen_drops()
    return _figures(replies, n, start_ns, before, after, drops, drops_after)


def _figures(
    replies: list[dict[str, Any]],
    n: int,
    start_ns: int,
    before: ProcSample | None,
    after: ProcSample | None,
    drops: int | None,
    drops_after: int | None,
) -> dict[str, Any]:
    welcomes = sorted(t for r in replies for t in r["welcome_ns"])
    registered = len(welcomes)
    refused = sum(r["refused"] for r in replies)
    failures: dict[str, int] = {}
    for r in replies:
        for why, count in r["failures"].items():
            failures[why] = failures.get(why, 0) + count
    last_s = welcomes[-1] / 1e9 if welcomes else None
    figures: dict[str, Any] = {
        "status": "complete",
        "clients": n,
        "registered": registered,
        "refused": refused,
        "failed": sum(failures.values()) - refused,
        "failures": failures,
        "last_welcome_s": last_s,
        "welcome_p50_ms": metrics.percentile(welcomes, 0.5) / 1e6 if welcomes else None,
        "welcome_p99_ms": metrics.percentile(welcomes, 0.99) / 1e6 if welcomes else None,
        "within_target": registered == n and last_s is not None and last_s <= TARGET_S,
        # How well the barrier held: the latest worker's first connect after the instant,
        # and how long after it the last connect was issued.
        "start_late_ms": max(r["began_ns"] - start_ns for r in replies) / 1e6,
        "connects_issued_ms": max(r["issued_ns"] - start_ns for r in replies) / 1e6,
        "listen_drops": drops_after - drops if drops is not None and drops_after else None,
        "somaxconn": capacity.somaxconn(),
        "server_cpu_s": after.cpu_s - before.cpu_s if before and after else None,
        "server_threads": after.threads if after else None,
    }
    if registered < n:
        shown = sorted(failures.items(), key=lambda kv: -kv[1])[:3]
        figures["status"] = f"{n - registered} not registered: " + "; ".join(
            f"{count}x {why}" for why, count in shown
        )
    return figures
