"""Generate the language-neutral test vectors in ``spec/vectors/`` from the construct schema.

``python -m spec.vectorgen --write`` rewrites the JSON files; ``--check`` exits non-zero if
any committed file differs from what the schema gives now. The committed JSON is what
implementations in other languages consume; its layout is described in spec/vectors/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import invalid, streams, valid
from .jsonform import FORMAT, SPEC, event_from_fields, fields_of

#: Where the vector files live.
VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors"

#: Each vector file and the function that produces its text.
FILES: dict[str, Callable[[], str]] = {
    "frames-valid.json": valid.build,
    "frames-invalid.json": invalid.build,
    "streams.json": streams.build,
}


def generate() -> dict[str, str]:
    """File name -> the text it must hold."""
    return {name: build() for name, build in FILES.items()}


def stale_files(directory: Path = VECTOR_DIR) -> list[str]:
    """The vector files that are missing or differ from what the schema gives now."""
    stale = []
    for name, text in generate().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write(directory: Path = VECTOR_DIR) -> list[str]:
    """Write every vector file; returns the names of those whose content changed."""
    changed = stale_files(directory)
    for name, text in generate().items():
        (directory / name).write_text(text, encoding="utf-8")
    return changed


__all__ = [
    "FILES",
    "FORMAT",
    "SPEC",
    "VECTOR_DIR",
    "event_from_fields",
    "fields_of",
    "generate",
    "stale_files",
    "write",
]
