"""Types of the optional compiled module built from ``_speedups.c`` (see ``spec.fastpath``)."""

def scan_sends(
    buf: bytes | bytearray, pos: int, max_frame: int, limit: int, /
) -> tuple[list[tuple[bytes, bytes]], int]: ...
