"""``python -m spec._speedups_build``: compile the optional ``spec._speedups`` extension in
place (``make speedups``; ``make test`` runs it). Optional: without a C compiler or Python's
headers it says so in one line and exits 0, and everything runs on the pure-Python path.
Rebuilds only when ``_speedups.c`` is newer than the built module. ``--check`` exits 1 if the
module is not built (for a machine that must test both paths; ``.ci/run`` does not ask).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_speedups.c"


def target() -> Path:
    return HERE / f"_speedups{sysconfig.get_config_var('EXT_SUFFIX')}"


def build() -> str:
    """Build if needed; returns what happened, in one line."""
    out = target()
    if out.exists() and out.stat().st_mtime >= SOURCE.stat().st_mtime:
        return f"speedups: {out.name} is up to date"
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if shutil.which(compiler[0]) is None:
        return f"speedups: no C compiler ({compiler[0]}): the pure-Python path is used"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"speedups: no Python.h in {include}: the pure-Python path is used"
    command = [
        *compiler,
        "-O2",
        "-Wall",
        "-Werror",
        "-fPIC",
        "-shared",
        f"-I{include}",
        str(SOURCE),
        "-o",
        str(out) + ".tmp",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
        return f"speedups: the build failed ({first}): the pure-Python path is used"
    os.replace(str(out) + ".tmp", out)
    return f"speedups: built {out.name}"


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        if target().exists():
            return 0
        print(f"speedups: {target().name} is not built", file=sys.stderr)
        return 1
    print(build())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
