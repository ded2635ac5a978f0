"""MAL-5..MAL-9: every kind of bad UTF-8, and U+0000, in every string a client sends."""

from __future__ import annotations

from spec.constants import ErrorCode, FrameType

from .case import POST_TYPES, Malformed
from .raw import string_fields, typed

#: Bad text of each kind of MAL-5..MAL-9.
BAD_TEXT: dict[str, list[tuple[str, bytes]]] = {
    "MAL-5": [("stray-continuation", b"a\x80b"), ("truncated", b"ab\xc3"), ("byte-ff", b"\xff")],
    "MAL-6": [("overlong-slash", b"\xe0\x80\xaf"), ("overlong-c0", b"\xc0\xaf")],
    "MAL-7": [("surrogate-d800", b"\xed\xa0\x80"), ("surrogate-dfff", b"\xed\xbf\xbf")],
    "MAL-8": [("above-10ffff", b"\xf4\x90\x80\x80")],
    "MAL-9": [("nul", b"hi\x00there")],
}


def bad_text_cases() -> list[Malformed]:
    cases: list[Malformed] = []
    add = cases.append
    for rule, kinds in BAD_TEXT.items():
        for kind, bad in kinds:
            for name in string_fields(FrameType.HELLO):
                add(
                    Malformed(
                        f"{kind}-in-HELLO-{name}",
                        (rule,),
                        False,
                        ErrorCode.INVALID_UTF8,
                        typed(FrameType.HELLO, **{name: bad}),
                        int(FrameType.HELLO),
                    )
                )
            for ftype in POST_TYPES:
                for name in string_fields(ftype):
                    add(
                        Malformed(
                            f"{kind}-in-{ftype.name}-{name}",
                            (rule,),
                            True,
                            ErrorCode.INVALID_UTF8,
                            typed(ftype, **{name: bad}),
                            int(ftype),
                        )
                    )
    return cases
