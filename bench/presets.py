"""Sizes of the standard sweep and of the smoke run. Every run is bounded in count and time."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Preset:
    name: str
    fanout_sizes: tuple[int, ...]
    #: Deliveries one flooding fan-out point aims at (messages = this / N, clamped).
    fanout_deliveries: int
    fanout_messages: tuple[int, int]
    #: Paced fan-out: deliveries per second offered, and how long.
    paced_deliveries_per_s: int
    paced_seconds: float
    paced_hz: tuple[float, float]
    #: Which fan-out runs to make per N: "flood", "paced", or both.
    fanout_variants: tuple[str, ...]
    throughput_sizes: tuple[int, ...]
    throughput_deliveries: int
    throughput_messages: tuple[int, int]
    connection_levels: tuple[int, ...]
    #: Clients that connect at one shared instant (burst), and how long they may take.
    burst_sizes: tuple[int, ...]
    burst_timeout_s: float
    #: Idle clients registered before the server is sent SIGTERM (shutdown), and how long
    #: the bench waits for it to exit before killing it.
    shutdown_sizes: tuple[int, ...]
    shutdown_wait_s: float
    slow_members: int
    slow_messages: int
    #: Text bytes in the slow-consumer run: big enough that the stalled member's buffers
    #: (kernel and server) fill within the run.
    slow_payload: int
    #: ``--slow-timeout`` for the reference server the bench starts (seconds).
    slow_timeout_s: float
    overload_senders: int
    overload_members: int
    overload_deliveries: int
    overload_deadline_s: float
    codec_rounds: int
    #: Longest one measured run may take before it is stopped and marked "deadline".
    run_deadline_s: float
    slow_deadline_s: float
    connect_timeout: float = 120.0
    #: shutdown: the clients flood rooms of 10 for this long when SIGTERM comes (``--flood``);
    #: 0 = they are idle.
    shutdown_flood_s: float = 0.0
    payload: int = 64
    batch: int = 64
    window: int = 512
    #: hostile: registered connections that all close at one instant (mass close), and
    #: connections that trickle a HELLO a byte a second (trickle).
    hostile_close_sizes: tuple[int, ...] = (3000,)
    hostile_trickle_sizes: tuple[int, ...] = (2000,)
    #: hostile: seconds of probes before the attack, and the attack's window.
    hostile_before_s: float = 2.0
    hostile_window_s: float = 8.0
    #: hostile: after the window, how long probes under way may still arrive, and how long
    #: the server may take to be back to its descriptors before the crowd came.
    hostile_grace_s: float = 5.0
    hostile_settle_s: float = 10.0
    #: hostile: one bystanders' probe message every this many seconds.
    probe_every_s: float = 0.02

    def messages_for(self, deliveries: int, fan: int, bounds: tuple[int, int]) -> int:
        low, high = bounds
        return max(low, min(high, deliveries // max(1, fan)))

    def with_sizes(self, sizes: tuple[int, ...] | None) -> Preset:
        if not sizes:
            return self
        return replace(
            self,
            fanout_sizes=sizes,
            throughput_sizes=sizes,
            connection_levels=sizes,
            burst_sizes=sizes,
            shutdown_sizes=sizes,
            hostile_close_sizes=sizes,
            hostile_trickle_sizes=sizes,
        )


STANDARD = Preset(
    name="standard",
    fanout_sizes=(1, 4, 16, 64, 256, 1000),
    fanout_deliveries=1_000_000,
    #: Up to 1,000,000 messages a point: at N=1 and 4, 20,000 made a flood of 20-40 ms and
    #: 200,000 one of 0.2-0.3 s, too short to measure (ramp-up and a few clock ticks of CPU
    #: decided the figures); now about a second.
    fanout_messages=(500, 1_000_000),
    paced_deliveries_per_s=10_000,
    paced_seconds=1.0,
    paced_hz=(5.0, 500.0),
    fanout_variants=("flood", "paced"),
    throughput_sizes=(2, 8, 32, 64),
    throughput_deliveries=1_000_000,
    throughput_messages=(100, 20_000),
    connection_levels=(1000, 5000, 10_000, 15_000),
    burst_sizes=(2000,),
    burst_timeout_s=15.0,
    shutdown_sizes=(2000, 15_000),
    shutdown_wait_s=10.0,
    slow_members=16,
    slow_messages=10_000,
    slow_payload=1000,
    slow_timeout_s=2.0,
    overload_senders=4,
    overload_members=250,
    overload_deliveries=10_000_000,
    overload_deadline_s=30.0,
    codec_rounds=20_000,
    run_deadline_s=30.0,
    slow_deadline_s=10.0,
)

SMOKE = Preset(
    name="smoke",
    fanout_sizes=(1, 4),
    fanout_deliveries=400,
    fanout_messages=(50, 200),
    paced_deliveries_per_s=400,
    paced_seconds=0.2,
    paced_hz=(20.0, 200.0),
    fanout_variants=("flood", "paced"),
    throughput_sizes=(2, 3),
    throughput_deliveries=300,
    throughput_messages=(20, 100),
    connection_levels=(10, 20),
    burst_sizes=(20,),
    burst_timeout_s=10.0,
    shutdown_sizes=(10,),
    shutdown_wait_s=10.0,
    slow_members=2,
    slow_messages=3_000,
    slow_payload=1000,
    slow_timeout_s=0.5,
    overload_senders=2,
    overload_members=4,
    overload_deliveries=4_000,
    overload_deadline_s=20.0,
    codec_rounds=200,
    run_deadline_s=20.0,
    slow_deadline_s=3.0,
    connect_timeout=20.0,
    hostile_close_sizes=(50,),
    hostile_trickle_sizes=(50,),
    hostile_before_s=0.5,
    hostile_window_s=1.5,
    hostile_grace_s=2.0,
    hostile_settle_s=3.0,
)

PRESETS = {p.name: p for p in (STANDARD, SMOKE)}
