"""Generate PROTOCOL.md §17 (frame reference) and §18 (error registry) from the code.

The bytes are defined once, in :mod:`spec.schema`; this module walks those construct
structures, so the field tables cannot drift from what the codec does. Per-field meanings are
prose and live in :data:`FIELD_MEANINGS`; the section and one-line purpose of each frame type
and error code are read from the ``#:`` comments in :mod:`spec.constants`.

Usage::

    python -m spec.doctables --write   # rewrite the generated blocks of spec/PROTOCOL.md
    python -m spec.doctables --check   # exit 1 if they are out of date
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from construct import Const, FocusedSeq, Int8ub, Int16ub, Int32ub, Int64ub, Struct

from . import constants, schema
from .codec import encode, encode_with_construct
from .constants import (
    CLIENT_TYPES,
    HEADER_SIZE,
    SERVER_TYPES,
    Capability,
    ErrorCode,
    FrameType,
    LeaveReason,
    is_fatal,
)
from .events import Event
from .examples import EXAMPLES

PROTOCOL_PATH = Path(__file__).resolve().parent / "PROTOCOL.md"
BLOCKS = ("frames", "errors")

#: One line per body field: what it means. A test fails if a field of the schema is missing.
FIELD_MEANINGS: dict[tuple[FrameType, str], str] = {
    (FrameType.HELLO, "magic"): "Always `CHAT`; anything else is BAD_MAGIC.",
    (FrameType.HELLO, "version"): "Protocol version the client speaks: 1.",
    (FrameType.HELLO, "caps"): "Capability bits the client asks for (§4.6).",
    (FrameType.HELLO, "nick"): "Nick the client wants (§5.1).",
    (FrameType.WELCOME, "version"): "Protocol version of the session: 1.",
    (FrameType.WELCOME, "caps"): "Capabilities granted: requested AND supported.",
    (FrameType.WELCOME, "max_frame"): "Frame limit in both directions from now on (§3.2).",
    (FrameType.WELCOME, "max_text"): "Longest message text accepted, in bytes (§2.3).",
    (FrameType.WELCOME, "max_rooms"): "Most rooms a client may be in at once (§6.2).",
    (FrameType.WELCOME, "idle_timeout_ms"): "Silence that gets a client cut; 0 = never (§10.2).",
    (FrameType.WELCOME, "out_limit"): "Pending output above which a client is congested (§12).",
    (FrameType.WELCOME, "slow_timeout_ms"): "How long a client may stay congested (§12.2).",
    (FrameType.WELCOME, "rate"): "Flood limit in messages per second; 0 = none (§13).",
    (FrameType.WELCOME, "burst"): "Flood limit bucket size (§13).",
    (FrameType.WELCOME, "nick"): "The registered nick, exactly as asked.",
    (FrameType.WELCOME, "room"): "The room the client was placed in: `lobby`.",
    (FrameType.SEND, "room"): "Room to speak in; the sender must be a member.",
    (FrameType.SEND, "text"): "The message, at most `max_text` bytes.",
    (FrameType.DELIVER, "room"): "Room the message was said in (canonical form).",
    (FrameType.DELIVER, "seq"): "The message's sequence number in that room (§8.1).",
    (FrameType.DELIVER, "sender"): "Registered nick of the sender, set by the server (§5.3).",
    (FrameType.DELIVER, "text"): "The message, as sent.",
    (FrameType.ACK, "room"): 'Room of the acknowledged SEND (canonical form); "" for DIRECT.',
    (FrameType.ACK, "seq"): "Sequence number the message got; 0 for DIRECT.",
    (FrameType.DIRECT, "nick"): "Nick of the addressee (any case).",
    (FrameType.DIRECT, "text"): "The message, at most `max_text` bytes.",
    (FrameType.WHISPER, "sender"): "Registered nick of the sender, set by the server (§5.3).",
    (FrameType.WHISPER, "text"): "The message, as sent.",
    (FrameType.JOIN, "room"): "Room to join; created if it does not exist.",
    (FrameType.LEAVE, "room"): "Room to leave.",
    (FrameType.WHO, "room"): "Room whose members are asked for.",
    (FrameType.ROSTER, "room"): "The room (canonical form).",
    (FrameType.ROSTER, "seq"): "Last sequence number assigned in the room; 0 if none (§8.4).",
    (FrameType.ROSTER, "more"): "1 if another part of this roster follows, 0 on the last (§3.3).",
    (FrameType.ROSTER, "members"): "Nicks of (this part of) the members, in no order.",
    (FrameType.ROOMS, "more"): "1 if another part of this list follows, 0 on the last (§3.3).",
    (FrameType.ROOMS, "rooms"): "The rooms that exist (this part of them), in no order.",
    (FrameType.ROOMS, "rooms[].name"): "Room name (canonical form).",
    (FrameType.ROOMS, "rooms[].members"): "Number of members.",
    (FrameType.JOINED, "room"): "The room (canonical form).",
    (FrameType.JOINED, "nick"): "Who joined.",
    (FrameType.LEFT, "room"): "The room (canonical form).",
    (FrameType.LEFT, "nick"): "Who left; the receiver's own nick after its LEAVE.",
    (FrameType.LEFT, "reason"): "Why (§9.2); unknown values mean an unstated reason.",
    (FrameType.LEFT, "text"): "The BYE text for QUIT; otherwise a note or empty.",
    (FrameType.PING, "token"): "Any value; the PONG carries it back.",
    (FrameType.PONG, "token"): "The token of the PING answered.",
    (FrameType.BYE, "text"): "Parting words, passed on in LEFT (§11.4).",
    (FrameType.ERROR, "code"): "What went wrong (§18); `0x01xx` is non-fatal (§11.2).",
    (FrameType.ERROR, "in_reply_to"): "Type of the frame that caused it; 0 if none (§11.1).",
    (FrameType.ERROR, "text"): "For people; may be empty.",
}

_INTEGERS: tuple[tuple[Any, str, int], ...] = (
    (Int8ub, "u8", 1),
    (Int16ub, "u16", 2),
    (Int32ub, "u32", 4),
    (Int64ub, "u64", 8),
)


@dataclass(frozen=True, slots=True)
class Field:
    """One body field as the tables show it."""

    name: str
    encoding: str
    size: int | None  #: fixed size in bytes, None if it depends on the value
    min_size: int
    subcon: Any  #: the construct that builds it (for lists: the item construct)
    count: Any = None  #: for lists: the construct of the item count
    entry_fields: tuple[Field, ...] = ()  #: for lists of structures: the entry's fields


def _integer(subcon: Any) -> tuple[str, int] | None:
    for construct_, name, size in _INTEGERS:
        if subcon is construct_:
            return name, size
    return None


def _field(name: str, subcon: Any) -> Field:
    if (integer := _integer(subcon)) is not None:
        return Field(name, integer[0], integer[1], integer[1], subcon)
    if subcon is schema.Str8:
        return Field(name, "str8", None, 1, subcon)
    if subcon is schema.Str16:
        return Field(name, "str16", None, 2, subcon)
    if isinstance(subcon, Const):
        value: bytes = subcon.value
        shown = " ".join(f"{b:02x}" for b in value)
        enc = f'{len(value)} bytes `{shown}` ("{value.decode()}")'
        return Field(name, enc, len(value), len(value), subcon)
    if isinstance(subcon, FocusedSeq) and [s.name for s in subcon.subcons] == ["count", "items"]:
        count = subcon.subcons[0].subcon.subcon  # Rebuild(count) -> the integer
        item = subcon.subcons[1].subcon.subcon  # Array(items) -> the item
        count_enc = _integer(count)
        if count_enc is None:
            raise TypeError(f"{name}: list count {count!r} is not an integer")
        if item is schema.Str8:
            enc = f"list of str8 ({count_enc[0]} count)"
            return Field(name, enc, None, count_enc[1], item, count)
        if isinstance(item, Struct):
            entry = tuple(_field(f"{name}[].{s.name}", s.subcon) for s in item.subcons)
            label = _schema_name(item)
            enc = f"list of {label} ({count_enc[0]} count)"
            return Field(name, enc, None, count_enc[1], item, count, entry)
    raise TypeError(f"{name}: no rendering for construct {subcon!r}")


def _schema_name(obj: Any) -> str:
    for name, value in vars(schema).items():
        if value is obj:
            return name
    raise TypeError(f"{obj!r} is not named in spec.schema")


def body_fields(ftype: FrameType) -> tuple[Field, ...]:
    """The fields of a frame type's body, in wire order, walked from :mod:`spec.schema`."""
    return tuple(_field(sc.name, sc.subcon) for sc in schema.BODY_STRUCTS[ftype].subcons)


def all_field_keys() -> list[tuple[FrameType, str]]:
    """Every (type, field) the frame tables show, list entries included."""
    keys: list[tuple[FrameType, str]] = []
    for ftype in schema.BODY_STRUCTS:
        for f in body_fields(ftype):
            keys.append((ftype, f.name))
            keys.extend((ftype, e.name) for e in f.entry_fields)
    return keys


# -- the #: comments of spec.constants ---------------------------------------------------

_SECTION = re.compile(r"§\d+(?:\.\d+)*")


@dataclass(frozen=True, slots=True)
class Doc:
    sections: tuple[str, ...]  #: e.g. ("§4.4", "§15.1")
    text: str  #: the comment after the dash


def member_docs(class_name: str) -> dict[str, Doc]:
    """The ``#:`` comment above each member of a class in spec/constants.py."""
    source = inspect.getsource(constants)
    lines = source.splitlines()
    docs: dict[str, Doc] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.ClassDef) and node.name == class_name):
            continue
        for stmt in node.body:
            if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
                continue
            comment: list[str] = []
            i = stmt.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#:"):
                comment.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            head, _, text = " ".join(comment).partition(" — ")
            text = text.strip().replace("``", "`")  # reST literals -> Markdown code
            docs[stmt.targets[0].id] = Doc(tuple(_SECTION.findall(head)), text)
    return docs


# -- rendering -----------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _direction(ftype: FrameType) -> str:
    if ftype in CLIENT_TYPES and ftype in SERVER_TYPES:
        return "both directions"
    return "client → server" if ftype in CLIENT_TYPES else "server → client"


def _size(fields: Sequence[Field]) -> str:
    if not fields:
        return "empty"
    if all(f.size is not None for f in fields):
        return f"{sum(f.size or 0 for f in fields)} bytes"
    return f"at least {sum(f.min_size for f in fields)} bytes"


def _value(ftype: FrameType, name: str, value: Any) -> str:
    if isinstance(value, str):
        return _cell(json.dumps(value, ensure_ascii=False))
    if name == "caps":
        names = " + ".join(c.name or "" for c in Capability if value & c)
        return f"0x{value:08x} ({names})" if names else f"0x{value:08x}"
    if name == "code":
        return f"0x{value:04x} ({ErrorCode(value).name})"
    if name == "in_reply_to":
        return f"0x{value:02x} ({FrameType(value).name})" if value else "0 (none)"
    if name == "reason":
        return f"{value} ({LeaveReason(value).name})"
    if name == "token":
        return f"0x{value:016x}"
    return str(value)


def _example_rows(ftype: FrameType, event: Event, fields: Sequence[Field]) -> list[list[str]]:
    """[bytes, field, value] for every field of the example, built field by field."""
    rows: list[list[str]] = []
    for f in fields:
        if isinstance(f.subcon, Const):
            rows.append([_hex(f.subcon.build(None)), f.name, _value(ftype, f.name, "CHAT")])
            continue
        value = getattr(event, f.name)
        if f.count is None:
            rows.append([_hex(f.subcon.build(value)), f.name, _value(ftype, f.name, value)])
            continue
        rows.append([_hex(f.count.build(len(value))), f.name, f"{len(value)} entries"])
        for i, item in enumerate(value):
            if not f.entry_fields:
                rows.append([_hex(f.subcon.build(item)), f"{f.name}[{i}]", _value(ftype, "", item)])
            for e in f.entry_fields:
                sub = e.name.rsplit(".", 1)[1]
                part = getattr(item, sub)
                rows.append(
                    [_hex(e.subcon.build(part)), f"{f.name}[{i}].{sub}", _value(ftype, sub, part)]
                )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_frame(number: int, ftype: FrameType) -> str:
    """The §17 subsection of one frame type."""
    doc = member_docs("FrameType")[ftype.name]
    purpose = re.sub(r"^(?:both ways|[CS]→[CS]):\s*", "", doc.text)
    fields = body_fields(ftype)
    lines = [
        f"### 17.{number} {ftype.name} (0x{ftype.value:02X})",
        "",
        f"Direction: {_direction(ftype)}. Defined in {', '.join(doc.sections)}: {purpose}",
        f"Body: {_size(fields)}.",
        "",
    ]
    rows: list[list[str]] = []
    offset: int | None = 0
    for f in [g for field in fields for g in (field, *field.entry_fields)]:
        shown = "—" if offset is None or "[]" in f.name else str(offset)
        if "[]" not in f.name:
            offset = None if offset is None or f.size is None else offset + f.size
        meaning = FIELD_MEANINGS.get((ftype, f.name))
        if meaning is None:
            raise KeyError(f"FIELD_MEANINGS has no entry for ({ftype.name}, {f.name!r})")
        rows.append([shown, f"`{f.name}`", f.encoding, _cell(meaning)])
    lines += _table(("Offset", "Field", "Encoding", "Meaning"), rows) if rows else ["No fields."]

    event = EXAMPLES[ftype]
    frame = encode(event)
    if frame != encode_with_construct(event):
        raise RuntimeError(f"{ftype.name}: the fast path and the schema disagree on the example")
    example = _example_rows(ftype, event, fields)
    body = frame[HEADER_SIZE:]
    if b"".join(bytes.fromhex(r[0].replace(" ", "")) for r in example) != body:
        raise RuntimeError(f"{ftype.name}: field-by-field bytes do not add up to the frame")
    length, type_byte = _hex(frame[:4]), _hex(frame[4:5])
    chunks = [_hex(body[i : i + 16]) for i in range(0, len(body), 16)] or ["(empty body)"]
    indent = " " * (len(length) + len(type_byte) + 6)
    hex_lines = [f"{length} | {type_byte} | {chunks[0]}"] + [indent + c for c in chunks[1:]]
    lines += ["", "Example, length | type | body:", "", "```", *hex_lines, "```", ""]
    header_rows = [
        [length, "length", str(int.from_bytes(frame[:4], "big"))],
        [type_byte, "type", f"0x{ftype.value:02x} ({ftype.name})"],
    ]
    rows = [[f"`{b}`", field, value] for b, field, value in header_rows + example]
    lines += _table(("Bytes", "Field", "Value"), rows)
    return "\n".join(lines)


def render_frames() -> str:
    """The whole generated block of §17."""
    return "\n\n".join(render_frame(i, t) for i, t in enumerate(schema.BODY_STRUCTS, start=1))


def render_errors() -> str:
    """The generated table of §18."""
    docs = member_docs("ErrorCode")
    rows = []
    for code in ErrorCode:
        doc = docs[code.name]
        meaning = doc.text[:1].upper() + doc.text[1:]
        fatal = "yes" if is_fatal(code) else "no"
        rows.append(
            [f"`0x{code.value:04X}`", code.name, fatal, _cell(meaning), ", ".join(doc.sections)]
        )
    return "\n".join(_table(("Code", "Name", "Fatal", "Meaning", "Section"), rows))


RENDERERS = {"frames": render_frames, "errors": render_errors}


def update(text: str) -> str:
    """``text`` with every generated block replaced by a fresh rendering."""
    for block in BLOCKS:
        begin, end = f"<!-- BEGIN GENERATED: {block} -->", f"<!-- END GENERATED: {block} -->"
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise ValueError(f"expected one '{begin}' followed by one '{end}'")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = f"{head}{begin}\n\n{RENDERERS[block]()}\n\n{end}{tail}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spec.doctables", description=__doc__.split("\n")[0]
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if they are out of date")
    parser.add_argument("--path", type=Path, default=PROTOCOL_PATH, help="the document")
    args = parser.parse_args(argv)
    try:
        text = args.path.read_text(encoding="utf-8")
        fresh = update(text)
    except (OSError, ValueError) as exc:
        print(f"doctables: {args.path}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if fresh != text:
            print(
                f"doctables: {args.path}: §17/§18 are out of date; run "
                "python -m spec.doctables --write",
                file=sys.stderr,
            )
            return 1
        return 0
    if fresh != text:
        args.path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
