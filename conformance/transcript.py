"""The wire record of one case: every frame each client sent or received, with timestamps.

Recording must be cheap (a flood case moves tens of thousands of frames), so a record keeps the
raw bytes and the decoded event, and hex and text are only rendered when a report needs them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

#: Bytes of a frame shown in hex; longer frames are cut (the length is always given).
HEX_LIMIT = 256
#: Frames kept per client in a report: the first ones and the last ones, the middle elided.
HEAD_FRAMES = 150
TAIL_FRAMES = 50


@dataclass(slots=True)
class Record:
    t: float  #: seconds since the case started
    client: str
    direction: str  #: "send", "recv" or "note" (connect, close, timeout...)
    event: object  #: the decoded event, or a string for notes and undecodable frames
    raw: bytes  #: the frame's first HEX_LIMIT bytes (floods would not fit in memory whole)
    length: int  #: the frame's full length in bytes

    def describe(self) -> str:
        text = self.event if isinstance(self.event, str) else repr(self.event)
        return text if len(text) <= 400 else text[:400] + f"… ({len(text)} chars)"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": round(self.t, 6),
            "dir": self.direction,
            "event": self.describe(),
        }
        if self.direction != "note":
            out["len"] = self.length
            out["hex"] = self.raw.hex()
            if self.length > len(self.raw):
                out["hex_truncated"] = True
        return out


class Transcript:
    """One timeline for every client of a case; appended to from many threads."""

    def __init__(self) -> None:
        self.epoch = time.monotonic()
        self._records: list[Record] = []
        self._lock = threading.Lock()

    def add(self, client: str, direction: str, event: object, raw: bytes = b"") -> None:
        t = time.monotonic() - self.epoch
        record = Record(t, client, direction, event, raw[:HEX_LIMIT], len(raw))
        with self._lock:
            self._records.append(record)

    def note(self, client: str, text: str) -> None:
        self.add(client, "note", text)

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def clients(self) -> list[str]:
        return list(dict.fromkeys(r.client for r in self.records()))

    def to_json(self) -> dict[str, Any]:
        """Per client, its frames in order (long transcripts keep their head and tail)."""
        by_client: dict[str, list[Record]] = {}
        for record in self.records():
            by_client.setdefault(record.client, []).append(record)
        clients = []
        for name, records in by_client.items():
            kept, elided = _trim(records)
            entry: dict[str, Any] = {
                "client": name,
                "frames_total": len(records),
                "frames": [r.to_json() for r in kept],
            }
            if elided:
                entry["frames_elided"] = elided
            clients.append(entry)
        return {"clients": clients}

    def render(self, max_clients: int = 8) -> str:
        """A human-readable transcript for terminals and JUnit ``system-out``."""
        lines = []
        names = self.clients()
        shown = set(names[:max_clients])
        for record in self.records():
            if record.client not in shown:
                continue
            arrow = {"send": "->", "recv": "<-"}.get(record.direction, "..")
            line = f"{record.t:9.4f} {record.client:>12} {arrow} {record.describe()}"
            if record.length:
                shown_hex = record.raw[:48].hex()
                line += f"  [{record.length} B {shown_hex}{'…' if record.length > 48 else ''}]"
            lines.append(line)
        if len(names) > max_clients:
            lines.append(f"… and {len(names) - max_clients} more clients (see the JSON report)")
        return "\n".join(_trim_lines(lines))


def _trim(records: list[Record]) -> tuple[list[Record], int]:
    if len(records) <= HEAD_FRAMES + TAIL_FRAMES:
        return records, 0
    return records[:HEAD_FRAMES] + records[-TAIL_FRAMES:], len(records) - HEAD_FRAMES - TAIL_FRAMES


def _trim_lines(lines: list[str], head: int = 400, tail: int = 100) -> list[str]:
    if len(lines) <= head + tail:
        return lines
    return [*lines[:head], f"… {len(lines) - head - tail} lines elided …", *lines[-tail:]]
