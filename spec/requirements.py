"""The requirements of PROTOCOL.md, read from the document itself.

PROTOCOL.md tags every normative sentence with a requirement ID in square brackets, right after
the sentence (``... before the body arrives [FRAME-4].``), and lists every ID once in the §19
index table (``ID | Level | Side | Section | Summary``). This module reads both:

* :func:`load_requirements` — the index, as :class:`Requirement` records in document order.
  This is what the conformance suite maps its cases to.
* :func:`body_tags` — the tags used in the body, each with the level keyword of its sentence.
* :func:`tag_uses` and :func:`stray_keywords` — the detail behind ``body_tags``, for the test
  that keeps index and body in agreement.

A "sentence" here is the text of one paragraph, list item or table row, from the previous tag
in it (or its start) up to the tag. Code spans, fenced code, the generated §17/§18 blocks and
the §19 index itself are not body text (§20 after it is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: The protocol this document and package describe (PROTOCOL.md's title names it too).
SPEC_VERSION = "chatwire/1"

#: Where the normative text lives.
PROTOCOL_PATH = Path(__file__).resolve().parent / "PROTOCOL.md"

#: The requirement levels, as written in the document (RFC 2119 / RFC 8174 keywords).
LEVELS = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY")
#: Which conformance class a requirement binds.
SIDES = ("server", "client", "both")
#: ID prefixes, in the order their sections come.
PREFIXES = (
    "TEXT",
    "FRAME",
    "HS",
    "NICK",
    "ROOM",
    "MSG",
    "ORD",
    "PRES",
    "KEEP",
    "ERR",
    "SLOW",
    "FLOOD",
    "MAL",
    "EXT",
    "CLIENT",
    "CLUSTER",
)

#: A well-formed requirement ID: a known prefix, a hyphen, a number without leading zero.
ID_PATTERN = re.compile(rf"(?:{'|'.join(PREFIXES)})-[1-9][0-9]*")

_TAG = re.compile(r"\[([A-Z]+-[0-9A-Za-z?]+)\]")
_KEYWORD = re.compile(r"\b(MUST NOT|MUST|SHOULD NOT|SHOULD|MAY)\b")
_CODE_SPAN = re.compile(r"`[^`]*`")
_HEADING = re.compile(r"^(#{1,6})\s+(?:§\s*)?(\d+(?:\.\d+)*)?\.?\s*(.*?)\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")
_VERSION_LINE = re.compile(r"^Protocol version:\s*(\S+)", re.MULTILINE)
_INDEX_SECTION = "19"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One row of the §19 index."""

    id: str  #: e.g. "FRAME-3"
    level: str  #: one of :data:`LEVELS`
    side: str  #: one of :data:`SIDES`
    section: str  #: the section that states it, without "§": "3.2"
    summary: str  #: one line


@dataclass(frozen=True, slots=True)
class TagUse:
    """One ``[ID]`` tag in the body, with the sentence it closes."""

    id: str
    keywords: tuple[str, ...]  #: every level keyword in the sentence (exactly one if correct)
    section: str  #: number of the nearest heading above it
    sentence: str

    @property
    def level(self) -> str:
        """The sentence's level keyword, or the keywords joined by "+" if not exactly one."""
        return "+".join(self.keywords)


def _read(path: Path | None) -> str:
    return (path or PROTOCOL_PATH).read_text(encoding="utf-8")


def spec_version(path: Path | None = None) -> str:
    """The version named on the document's ``Protocol version:`` line."""
    found = _VERSION_LINE.search(_read(path))
    if found is None:
        raise ValueError("PROTOCOL.md has no 'Protocol version:' line")
    return found.group(1)


def load_requirements(path: Path | None = None) -> dict[str, Requirement]:
    """Every requirement of the §19 index, by ID, in the order the index lists them.

    Raises ValueError on a malformed index row or a repeated ID.
    """
    requirements: dict[str, Requirement] = {}
    in_index = False
    for line in _read(path).splitlines():
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) == 2:
            in_index = heading.group(2) == _INDEX_SECTION
            continue
        if not in_index or not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] in ("ID", "") or set(cells[0]) <= set("-: "):
            continue  # header or separator row
        if len(cells) != 5:
            raise ValueError(f"index row does not have 5 cells: {line}")
        rid, level, side, section, summary = cells
        rid = rid.strip("`")
        if rid in requirements:
            raise ValueError(f"{rid} is listed twice in the index")
        requirements[rid] = Requirement(rid, level, side, section.lstrip("§").strip(), summary)
    return requirements


def _blocks(text: str) -> list[tuple[str, str]]:
    """(section, text) for each paragraph, list item, table row and heading of the body."""
    blocks: list[tuple[str, str]] = []
    section = ""
    current: list[str] = []
    skipping_generated = in_fence = in_index = False

    def flush() -> None:
        if current:
            blocks.append((section, " ".join(current)))
            current.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("<!-- BEGIN GENERATED"):
            flush()
            skipping_generated = True
        elif stripped.startswith("<!-- END GENERATED"):
            skipping_generated = False
            continue
        if skipping_generated:
            continue
        if stripped.startswith("```"):
            flush()
            in_fence = not in_fence
            continue
        if in_fence or stripped.startswith("<!--"):
            continue
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) == 2:  # the index is no body; what follows is
            in_index = heading.group(2) == _INDEX_SECTION
        if in_index:
            continue
        if heading:
            flush()
            if heading.group(2):
                section = heading.group(2)
            blocks.append((section, heading.group(3)))
            continue
        if not stripped:
            flush()
        elif stripped.startswith("|") or _LIST_ITEM.match(line):
            flush()
            current.append(stripped)
            if stripped.startswith("|"):
                flush()
        else:
            current.append(stripped)
    flush()
    return blocks


def _keywords(text: str) -> tuple[str, ...]:
    return tuple(_KEYWORD.findall(_CODE_SPAN.sub("", text)))


def tag_uses(path: Path | None = None) -> list[TagUse]:
    """Every ``[ID]`` tag in the body (all but the §19 index), in document order."""
    uses: list[TagUse] = []
    for section, block in _blocks(_read(path)):
        block = _CODE_SPAN.sub("", block)
        start = 0
        for tag in _TAG.finditer(block):
            sentence = block[start : tag.start()].strip()
            uses.append(TagUse(tag.group(1), _keywords(sentence), section, sentence))
            start = tag.end()
    return uses


def stray_keywords(path: Path | None = None) -> list[str]:
    """Body text holding a level keyword but no tag after it: untagged normative text."""
    strays: list[str] = []
    for section, block in _blocks(_read(path)):
        block = _CODE_SPAN.sub("", block)
        tail = _TAG.split(block)[-1] if _TAG.search(block) else block
        if _keywords(tail):
            strays.append(f"§{section}: {tail.strip()[:120]}")
    return strays


def body_tags(path: Path | None = None) -> dict[str, str]:
    """ID -> the level keyword seen in its sentence, for every tag in the body.

    A sentence without exactly one keyword maps to its keywords joined by "+" ("" for none),
    which never equals an index level. A tag used twice keeps its first use.
    """
    tags: dict[str, str] = {}
    for use in tag_uses(path):
        tags.setdefault(use.id, use.level)
    return tags


__all__ = [
    "ID_PATTERN",
    "LEVELS",
    "PREFIXES",
    "PROTOCOL_PATH",
    "SIDES",
    "SPEC_VERSION",
    "Requirement",
    "TagUse",
    "body_tags",
    "load_requirements",
    "spec_version",
    "stray_keywords",
    "tag_uses",
]
