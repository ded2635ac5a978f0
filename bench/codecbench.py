"""codec: encode and decode cost per frame, construct definitions against the fast path.

In-process and single-threaded: it measures the codec, not a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from spec.codec import decode_body, decode_body_with_construct, encode, encode_with_construct
from spec.constants import HEADER_SIZE
from spec.events import Ack, Deliver, Event, Send

from .context import Context
from .dialects import message_text


def _frames(payload: int) -> list[Event]:
    text = message_text(payload, time.monotonic_ns()).decode()
    return [
        Send("lobby", text),
        Deliver("lobby", 123_456, "alice", text),
        Ack("lobby", 123_456),
    ]


#: The frames measured (SEND, DELIVER, ACK): one point each.
FRAMES = 3


def _ns_per_call(fn: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: the least disturbed by other load on the machine
        start = time.perf_counter_ns()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / rounds)
    return best


def run(ctx: Context) -> None:
    rounds = ctx.preset.codec_rounds
    for event in _frames(ctx.preset.payload):
        frame = encode(event)
        body, ftype = frame[HEADER_SIZE:], int(event.type)
        assert encode_with_construct(event) == frame
        assert decode_body_with_construct(ftype, body) == decode_body(ftype, body) == event
        enc_c = _ns_per_call(partial(encode_with_construct, event), rounds)
        enc_f = _ns_per_call(partial(encode, event), rounds)
        dec_c = _ns_per_call(partial(decode_body_with_construct, ftype, body), rounds)
        dec_f = _ns_per_call(partial(decode_body, ftype, body), rounds)
        figures = {
            "status": "complete",
            "frame_bytes": len(frame),
            "encode_construct_ns": enc_c,
            "encode_fast_ns": enc_f,
            "encode_speedup": enc_c / enc_f,
            "decode_construct_ns": dec_c,
            "decode_fast_ns": dec_f,
            "decode_speedup": dec_c / dec_f,
        }
        params = {"frame": event.type.name, "rounds": rounds}
        ctx.progress.phase(f"timing the codec on {event.type.name}")
        ctx.record("codec", event.type.name, params, "in-process", figures)
