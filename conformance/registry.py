"""The requirements of PROTOCOL.md as the suite sees them: IDs, levels, sides and sections.

Parsing is spec.requirements' job; this module adds what reports need (section titles, which
levels count as failures) and keeps the import lazy so ``--help`` works on a bare checkout.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

PROTOCOL_MD = Path(__file__).resolve().parent.parent / "spec" / "PROTOCOL.md"
_HEADING = re.compile(r"^#{2,3}\s+(?:§\s*)?(\d+(?:\.\d+)*)\.?\s+(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class Req:
    id: str
    level: str  #: "MUST", "MUST NOT", "SHOULD", "SHOULD NOT" or "MAY"
    side: str  #: which conformance class it binds: "server", "client" or "both"
    section: str  #: e.g. "8.2"
    summary: str

    @property
    def is_should(self) -> bool:
        return self.level.startswith("SHOULD")

    @property
    def is_must(self) -> bool:
        return self.level.startswith("MUST")

    @property
    def binds_server(self) -> bool:
        return self.side in ("server", "both")

    @property
    def top_section(self) -> str:
        return self.section.split(".")[0]


@functools.cache
def requirements() -> dict[str, Req]:
    """Every requirement of PROTOCOL.md, by ID (in document order)."""
    from spec.requirements import load_requirements

    return {
        rid: Req(r.id, str(r.level), str(r.side), str(r.section), r.summary)
        for rid, r in load_requirements().items()
    }


def server_requirements() -> dict[str, Req]:
    """The requirements this suite judges: those binding servers, at MUST or SHOULD level."""
    return {
        rid: r for rid, r in requirements().items() if r.binds_server and (r.is_must or r.is_should)
    }


@functools.cache
def section_titles() -> dict[str, str]:
    """Section number -> heading text, read from PROTOCOL.md ("8" -> "Ordering and delivery")."""
    titles: dict[str, str] = {}
    if PROTOCOL_MD.exists():
        for line in PROTOCOL_MD.read_text(encoding="utf-8").splitlines():
            if m := _HEADING.match(line):
                titles.setdefault(m.group(1), m.group(2))
    return titles


def section_key(section: str) -> tuple[int, ...]:
    """Sort key for "8.10" after "8.9"."""
    return tuple(int(p) if p.isdigit() else 0 for p in section.split("."))
