"""``--only`` / ``--skip``: which requirements a run judges.

A pattern is either a spec section ("8" or "8.2", matching that section and its subsections)
or a glob over requirement IDs ("MAL-*", "FRAME-3"). A requirement is selected when it matches
some ``--only`` pattern (or none was given) and no ``--skip`` pattern. A case runs when at least
one of its requirements is selected, and only selected requirements appear in the report.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

_SECTION = re.compile(r"^§?(\d+(?:\.\d+)*)$")


def split_patterns(values: Sequence[str]) -> list[str]:
    """Options may be repeated and may hold comma-separated lists."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def matches(pattern: str, req_id: str, section: str) -> bool:
    if m := _SECTION.match(pattern):
        wanted = m.group(1)
        return section == wanted or section.startswith(wanted + ".")
    return fnmatch.fnmatchcase(req_id.upper(), pattern.upper())


class Selection:
    def __init__(self, only: Sequence[str] = (), skip: Sequence[str] = ()) -> None:
        self.only = split_patterns(only)
        self.skip = split_patterns(skip)

    def selects(self, req_id: str, section: str) -> bool:
        if self.only and not any(matches(p, req_id, section) for p in self.only):
            return False
        return not any(matches(p, req_id, section) for p in self.skip)

    def unmatched(self, known: dict[str, str]) -> list[str]:
        """Patterns that match no known requirement (``known``: ID -> section): likely typos."""
        return [
            p
            for p in self.only + self.skip
            if not any(matches(p, rid, sec) for rid, sec in known.items())
        ]
