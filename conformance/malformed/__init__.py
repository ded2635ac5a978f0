"""The §14 robustness cases, generated from the construct definitions in spec/schema.py.

Bodies are assembled field by field from the schema (``raw.py``; so a string field can hold
bytes that are not UTF-8, which the schema itself refuses to build), then broken one rule at
a time, one module per kind of rule: zero and oversize lengths, strings that overrun the frame,
trailing bytes (``framing.py``), every kind of bad UTF-8 and U+0000 in every string a client
sends (``text.py``), unknown types before and after WELCOME, server-only types from a client
(``frame_types.py``), the handshake rules: bad magic, bad version, frames before HELLO, a
second HELLO (``handshake.py``), and the order and fatality of the checks (``checks.py``).
Each case names the error it must get and whether it is fatal.
"""

from __future__ import annotations

from .case import POST_TYPES, Malformed
from .checks import check_order_cases, value_check_cases
from .frame_types import UNKNOWN_TYPES, server_type_cases, unknown_type_cases
from .framing import length_cases, overrun_cases, trailing_cases
from .handshake import handshake_order_cases, magic_and_version_cases
from .raw import Value, body, defaults, fields, frame, string_fields
from .text import BAD_TEXT, bad_text_cases

__all__ = [
    "BAD_TEXT",
    "CASES",
    "POST_TYPES",
    "UNKNOWN_TYPES",
    "Malformed",
    "Value",
    "body",
    "defaults",
    "fields",
    "frame",
    "generate",
    "string_fields",
]


def generate() -> list[Malformed]:
    """Every case, in the order of the rules (MAL-1 first)."""
    return [
        *length_cases(),
        *overrun_cases(),
        *trailing_cases(),
        *bad_text_cases(),
        *unknown_type_cases(),
        *server_type_cases(),
        *magic_and_version_cases(),
        *handshake_order_cases(),
        *check_order_cases(),
        *value_check_cases(),
    ]


CASES = generate()
