"""fanout: one sender, N receivers in one room — flooding (capacity) and paced (latency)."""

from __future__ import annotations

from .context import Context, frozen, spread
from .harness import Layout
from .orders import ClientSpec, Role, RunOrder
from .servers import ServerError


def run(ctx: Context) -> None:
    p = ctx.preset
    for n in p.fanout_sizes:
        flood = p.messages_for(p.fanout_deliveries, n, p.fanout_messages)
        hz = max(p.paced_hz[0], min(p.paced_hz[1], p.paced_deliveries_per_s / n))
        paced = max(2, round(hz * p.paced_seconds))
        for target in ctx.targets:
            for variant, messages, pace in (("flood", flood, 0.0), ("paced", paced, hz)):
                if variant not in p.fanout_variants:
                    continue
                params = {"N": n, "messages": messages, "pace_hz": round(pace, 1)}
                try:
                    with ctx.server(target) as server:
                        layout = _layout(ctx, n)
                        order = RunOrder(
                            messages=messages,
                            expect_receiver=messages,
                            expect_peer=0,
                            # a paced run takes its time by design
                            deadline_s=p.run_deadline_s + (p.paced_seconds if pace else 0),
                            batch=p.batch,
                            window=p.window,
                            pace_hz=pace,
                            sample_every=max(1, messages * n // 20_000),
                        )
                        figures = ctx.measure(server, layout, order)
                except ServerError as exc:
                    figures = {"status": f"server failed: {exc}"}
                ctx.record("fanout", variant, params, target.name, figures)


def _layout(ctx: Context, n: int) -> Layout:
    """The sender alone in worker 0 (its loop never waits behind reads), receivers elsewhere."""
    tag = ctx.unique("f")
    receivers = [ClientSpec(f"{tag}r{i}", Role.RECEIVER) for i in range(n)]
    others = list(range(1, ctx.pool.size)) or [0]
    clients = spread(receivers, others)
    clients.setdefault(0, []).insert(0, ClientSpec(f"{tag}s", Role.SENDER))
    return Layout(room=tag, join=True, clients=frozen(clients), payload=ctx.preset.payload)
