"""The JSON form of events used by the vector files, and the document envelope around them.

Field names and their order are those of the construct definitions in :mod:`spec.schema`
(wire order), leaving out constant fields such as HELLO's magic. Arrays become JSON lists;
ROOMS entries become objects ``{"name": ..., "members": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from construct import Const

from ..constants import CLIENT_TYPES, SERVER_TYPES, FrameType
from ..events import EVENT_CLASSES, Event, RoomEntry, Rooms
from ..schema import BODY_STRUCTS

#: The version of the vector file layout (see spec/vectors/README.md).
FORMAT = "chatwire-vectors/1"
#: The protocol the vectors describe.
SPEC = "chatwire/1"

#: Per frame type, the names of the fields that carry values, in wire order.
FIELD_NAMES: dict[FrameType, tuple[str, ...]] = {
    ftype: tuple(sc.name for sc in st.subcons if sc.name and not isinstance(sc.subcon, Const))
    for ftype, st in BODY_STRUCTS.items()
}


def fields_of(event: Event) -> dict[str, Any]:
    """The JSON-friendly field values of ``event``, in wire order."""
    out: dict[str, Any] = {}
    for name in FIELD_NAMES[event.type]:
        value = getattr(event, name)
        if isinstance(event, Rooms) and name == "rooms":
            out[name] = [{"name": r.name, "members": int(r.members)} for r in value]
        elif isinstance(value, tuple):
            out[name] = list(value)
        elif isinstance(value, int):
            out[name] = int(value)  # plain int, not an IntEnum member
        else:
            out[name] = value
    return out


def event_from_fields(ftype: int, fields: dict[str, Any]) -> Event:
    """The event that :func:`fields_of` turns into ``fields``; the exact inverse."""
    known = FrameType(ftype)
    expected = set(FIELD_NAMES[known])
    if set(fields) != expected:
        raise ValueError(f"{known.name} has fields {sorted(expected)}, not {sorted(fields)}")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if known is FrameType.ROOMS and name == "rooms":
            values[name] = tuple(RoomEntry(r["name"], r["members"]) for r in value)
        elif isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    return EVENT_CLASSES[known](**values)


def sender_of(ftype: FrameType) -> str:
    """Which side sends frames of this type: "client", "server" or "both"."""
    if ftype in CLIENT_TYPES and ftype in SERVER_TYPES:
        return "both"
    return "client" if ftype in CLIENT_TYPES else "server"


def document(description: str, vectors: list[dict[str, Any]]) -> str:
    """One vector file's text: the versioned envelope, 2-space indented, UTF-8, final newline."""
    names = [v["name"] for v in vectors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate vector names: {duplicates}")
    doc = {"format": FORMAT, "spec": SPEC, "description": description, "vectors": vectors}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
