"""slow-consumer: the healthy members' rate beside one member that stops reading.

Each point is run twice on a fresh server: without the stalled member, then with it. The
stalled member shrinks its receive buffer so its stall reaches the server's pending output
after a few kilobytes, and watches for the server closing it (POLLRDHUP) without reading.
A correct server cuts it after about ``slow_timeout_ms`` and the others carry on; a server
that neither cuts nor drops is stuck until the run's deadline.
"""

from __future__ import annotations

from spec.constants import ErrorCode

from .context import Context, frozen, spread
from .harness import Layout
from .orders import ClientSpec, Role, RunOrder
from .servers import ServerError

STALL_RCVBUF = 4096


def run(ctx: Context) -> None:
    p = ctx.preset
    n, messages = p.slow_members, p.slow_messages
    for target in ctx.targets:
        without_rate = None
        for stalled in (False, True):
            params = {"N": n, "messages": messages, "stalled": int(stalled)}
            try:
                extra = ("--slow-timeout", str(p.slow_timeout_s))
                with ctx.server(target, extra) as server:
                    layout = _layout(ctx, n, stalled)
                    order = RunOrder(
                        messages=messages,
                        expect_receiver=messages,
                        expect_peer=0,
                        # Without a stalled member a run must finish; with one it may hang.
                        deadline_s=p.slow_deadline_s if stalled else p.run_deadline_s,
                        batch=p.batch,
                        window=p.window,
                        wait_for_cut=stalled,
                        sample_every=max(1, messages * n // 20_000),
                    )
                    figures = ctx.measure(server, layout, order)
            except ServerError as exc:
                figures = {"status": f"server failed: {exc}"}
            cut = [c for c in figures.get("cuts", ()) if c["role"] == Role.STALLER]
            figures["stalled_cut_after_s"] = cut[0]["after_s"] if cut else None
            figures["stalled_told"] = _told(cut[0]["codes"]) if cut else None
            rate = figures.get("deliveries_per_s")
            if stalled and rate and without_rate:
                figures["rate_vs_without"] = rate / without_rate
            without_rate = rate
            ctx.record("slow-consumer", "members", params, target.name, figures)


def _told(codes: list[int]) -> str:
    """What the stalled member found at the end of its stream once it read it."""
    names = []
    for code in codes:
        try:
            names.append(ErrorCode(code).name)
        except ValueError:
            names.append(f"0x{code:04X}")
    return ",".join(names) or "no ERROR"


def _layout(ctx: Context, n: int, stalled: bool) -> Layout:
    tag = ctx.unique("s")
    members = [ClientSpec(f"{tag}r{i}", Role.RECEIVER) for i in range(n)]
    if stalled:
        members.append(ClientSpec(f"{tag}z", Role.STALLER))
    clients = spread(members, list(range(1, ctx.pool.size)) or [0])
    clients.setdefault(0, []).insert(0, ClientSpec(f"{tag}s", Role.SENDER))
    return Layout(
        room=tag,
        join=True,
        clients=frozen(clients),
        payload=ctx.preset.slow_payload,
        staller_rcvbuf=STALL_RCVBUF,
    )
