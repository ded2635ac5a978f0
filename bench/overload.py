"""overload: K senders flood a room faster than its members read.

Members read with their receive buffers shrunk and all stop reading for ``PAUSE_S`` at the
start of every ``PAUSE_EVERY_S`` (the same instants in every worker), so every buffer on the
way fills and the room is congested again and again, yet each member keeps reading often
enough that a correct server never cuts it (§12.4). What must hold: delivered fraction 1.0
and no member cut; what it costs: the senders' effective rate.
"""

from __future__ import annotations

import math

from .context import Context, frozen, spread
from .harness import Layout
from .orders import ClientSpec, Role, RunOrder
from .servers import ServerError

PAUSE_EVERY_S = 0.5
PAUSE_S = 0.1
MEMBER_RCVBUF = 16_384


def run(ctx: Context) -> None:
    p = ctx.preset
    k, n = p.overload_senders, p.overload_members
    messages = math.ceil(p.overload_deliveries / (k * n))
    params = {"K": k, "N": n, "messages_each": messages, "offered": k * n * messages}
    for target in ctx.targets:
        try:
            with ctx.server(target) as server:
                tag = ctx.unique("o")
                senders = [
                    ClientSpec(f"{tag}s{i}", Role.SENDER, i * messages + 1) for i in range(k)
                ]
                members = [ClientSpec(f"{tag}m{i}", Role.RECEIVER) for i in range(n)]
                clients = spread(members, list(range(1, ctx.pool.size)) or [0])
                clients.setdefault(0, [])[:0] = senders
                layout = Layout(
                    room=tag,
                    join=True,
                    clients=frozen(clients),
                    payload=p.payload,
                    receiver_rcvbuf=MEMBER_RCVBUF,
                )
                order = RunOrder(
                    messages=messages,
                    expect_receiver=k * messages,
                    expect_peer=0,
                    deadline_s=p.overload_deadline_s,
                    batch=p.batch,
                    window=p.window,
                    pause_every_s=PAUSE_EVERY_S,
                    pause_s=PAUSE_S,
                    sample_every=max(1, k * messages * n // 20_000),
                )
                figures = ctx.measure(server, layout, order)
        except ServerError as exc:
            figures = {"status": f"server failed: {exc}"}
        figures["pause"] = {"every_s": PAUSE_EVERY_S, "for_s": PAUSE_S}
        ctx.record("overload", "flood", params, target.name, figures)
