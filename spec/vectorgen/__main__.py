"""Command line: ``python -m spec.vectorgen --write | --check``."""

from __future__ import annotations

import argparse
import json
import sys

from . import FILES, VECTOR_DIR, generate, stale_files, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spec.vectorgen",
        description="Generate the chatwire/1 test vectors in spec/vectors/ from spec/schema.py.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the vector files")
    mode.add_argument("--check", action="store_true", help="fail if any file is out of date")
    args = parser.parse_args(argv)
    if args.write:
        changed = write()
        total = sum(len(json.loads(text)["vectors"]) for text in generate().values())
        print(
            f"wrote {len(changed)} changed of {len(FILES)} files in {VECTOR_DIR} ({total} vectors)"
        )
        return 0
    stale = stale_files()
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run: python -m spec.vectorgen --write",
            file=sys.stderr,
        )
        return 1
    print(f"vector files in {VECTOR_DIR} are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
