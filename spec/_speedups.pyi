"""Types of the optional compiled module built from ``_speedups.c`` (see ``spec.fastpath``)."""

from collections.abc import Sequence

def scan_sends(
    buf: bytes | bytearray, pos: int, max_frame: int, limit: int, /
) -> tuple[list[tuple[bytes, bytes]], int]: ...
def delivers_acks(
    deliver_type: int,
    ack_type: int,
    room8: bytes,
    first_seq: int,
    sender8: bytes,
    texts16: Sequence[bytes],
    /,
) -> tuple[bytes, bytes]: ...
