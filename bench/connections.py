"""connections: idle registered clients in steps up to at least 15,000.

One server for the whole climb. At each level: the connect-and-register rate of the clients
added, the server's resident memory per client and thread count (from /proc), and whether
one message still reaches every client. Clients ask for QUIET and stay in the default room,
so registering the n-th client costs the server no presence traffic to the n-1 others.
"""

from __future__ import annotations

from typing import Any

from . import harness, metrics
from .context import Context, connect_failed, failed_server, frozen, spread
from .harness import Layout
from .orders import ClientSpec, Role, RunOrder
from .servers import Server, ServerError

ROOM = "lobby"


def run(ctx: Context) -> None:
    levels = ctx.preset.connection_levels
    extra = ("--max-clients", str(max(levels) + 64))
    for target in ctx.targets:
        try:
            with ctx.server(target, extra) as server:
                _climb(ctx, server, target.name, levels)
        except ServerError as exc:
            params = {"clients": levels[0]}
            ctx.record("connections", "idle", params, target.name, failed_server(exc))
        finally:
            ctx.pool.reset()


def _climb(ctx: Context, server: Server, name: str, levels: tuple[int, ...]) -> None:
    tag = ctx.unique("c")
    everyone = list(range(ctx.pool.size))
    sender = Layout(ROOM, False, {0: (ClientSpec(f"{tag}s", Role.SENDER),)}, ctx.preset.payload)
    joined = harness.connect(ctx.pool, server, sender, ctx.preset.connect_timeout)
    base = server.sample()
    if joined["failed"]:
        ctx.record("connections", "idle", {"clients": 0}, name, {"status": connect_failed(joined)})
        return
    have = 0
    for level in levels:
        new = [ClientSpec(f"{tag}r{i}", Role.RECEIVER) for i in range(have, level)]
        layout = Layout(ROOM, False, frozen(spread(new, everyone)), ctx.preset.payload)
        ctx.progress.phase(f"connecting clients {have + 1} to {level} to {server.name}")
        step = harness.connect(ctx.pool, server, layout, ctx.preset.connect_timeout)
        have += step["ok"]
        held = server.sample()
        order = RunOrder(messages=1, expect_receiver=1, expect_peer=0, deadline_s=60.0)
        before = server.sample()
        results = harness.run(ctx.pool, everyone, order)
        figures: dict[str, Any] = metrics.merge_run(
            results, server.dialect, before, server.sample()
        )
        figures.update(_memory(base, held, have))
        figures["connect"] = step
        figures["connect_per_s"] = step["per_s"]
        figures["connect_failed"] = step["failed"]
        figures["reached_all"] = figures["deliveries"] == have
        if step["failed"]:
            figures["status"] = "limit: " + "; ".join(sorted(step["failures"]))
        figures["connected"] = have
        ctx.record("connections", "idle", {"clients": level}, name, figures)
        if step["failed"] or not server.alive():
            break


def _memory(base: Any, held: Any, clients: int) -> dict[str, Any]:
    if base is None or held is None or not clients:
        return {"server_rss_kib": None, "kib_per_client": None, "server_threads": None}
    return {
        "server_rss_kib": held.rss_kib,
        "kib_per_client": (held.rss_kib - base.rss_kib) / clients,
        "server_threads": held.threads,
    }
