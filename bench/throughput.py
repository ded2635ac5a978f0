"""throughput: K clients all sending into one room, each receiving the others' messages."""

from __future__ import annotations

from .context import Context, frozen, spread
from .harness import Layout
from .orders import ClientSpec, Role, RunOrder
from .servers import ServerError


def run(ctx: Context) -> None:
    p = ctx.preset
    for k in p.throughput_sizes:
        messages = p.messages_for(p.throughput_deliveries, k * max(1, k - 1), p.throughput_messages)
        params = {"K": k, "messages_each": messages}
        for target in ctx.targets:
            try:
                with ctx.server(target) as server:
                    tag = ctx.unique("t")
                    # Ids far apart, so raw frames from different senders never share one.
                    peers = [
                        ClientSpec(f"{tag}p{i}", Role.PEER, i * messages + 1) for i in range(k)
                    ]
                    clients = frozen(spread(peers, list(range(ctx.pool.size))))
                    layout = Layout(room=tag, join=True, clients=clients, payload=p.payload)
                    order = RunOrder(
                        messages=messages,
                        expect_receiver=0,
                        expect_peer=messages * (k - 1),
                        deadline_s=p.run_deadline_s,
                        batch=p.batch,
                        window=p.window,
                        sample_every=max(1, messages * k * (k - 1) // 20_000),
                    )
                    figures = ctx.measure(server, layout, order)
            except ServerError as exc:
                figures = {"status": f"server failed: {exc}"}
            ctx.record("throughput", "flood", params, target.name, figures)
