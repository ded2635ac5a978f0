"""``python -m conformance``: test a chatwire/1 server and report, requirement by requirement.

    python -m conformance --server 127.0.0.1:5000
    python -m conformance --launch "python -m reference.server --port 0" --only 'MAL-*'
    python -m conformance --server 127.0.0.1:5001 --server 127.0.0.1:5002   (a cluster's nodes)
    python -m conformance --list

Exit status: 0 no MUST failed (with --strict: no SHOULD missed either); 1 otherwise; 2 the
target could not be tested (unreachable, not chatwire/1, bad options). Anything after ``--`` is
handed to pytest unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

from . import SUITE_VERSION
from .launch import LaunchedServer, LaunchError
from .options import parse_address
from .preflight import PreflightError, probe

HERE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m conformance",
        description="chatwire/1 conformance suite: judges a server against PROTOCOL.md.",
        epilog="Arguments after -- go to pytest unchanged.",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--server",
        metavar="HOST:PORT",
        action="append",
        help="address of the server to test; repeat it for the nodes of one cluster (§20): "
        "each case's clients are spread over them in turn",
    )
    target.add_argument(
        "--launch",
        metavar="CMD",
        action="append",
        help="start CMD (it must print 'listening on HOST:PORT'), test it, stop it; repeat it "
        "to launch the nodes of one cluster (the suite may then kill one mid-run)",
    )
    p.add_argument("--list", action="store_true", help="list the cases with their requirement IDs")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PAT",
        help="judge only requirements matching an ID glob or section (repeatable)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PAT",
        help="do not judge requirements matching an ID glob or section (repeatable)",
    )
    p.add_argument(
        "--clients",
        type=int,
        default=50,
        metavar="N",
        help="clients in the concurrent scenarios (default 50)",
    )
    p.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every deadline by F (slow servers, slow machines)",
    )
    p.add_argument("--seed", type=int, metavar="S", help="seed for randomised scenarios")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every case N times and report pass rates",
    )
    p.add_argument("--strict", action="store_true", help="a missed SHOULD fails the run")
    p.add_argument("--junitxml", metavar="FILE", help="also write JUnit XML")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per case while running")
    p.add_argument("--version", action="version", version=f"chatwire conformance {SUITE_VERSION}")
    return p


def selection_args(ns: argparse.Namespace) -> list[str]:
    args = [str(HERE / "cases"), "-c", str(HERE / "pytest.ini"), "--rootdir", str(HERE)]
    for pat in ns.only:
        args += ["--only", pat]
    for pat in ns.skip:
        args += ["--skip", pat]
    return args


def pytest_args(ns: argparse.Namespace, extra: list[str]) -> list[str]:
    args = selection_args(ns)
    # -qq: pytest's own "N passed" line would follow the suite's closing count (one is enough).
    args += ["-v"] if ns.verbose else ["-qq"]
    args += ["--tb=no", "-rN", "-p", "no:warnings"]
    args += ["--clients", str(ns.clients), "--timeout-scale", str(ns.timeout_scale)]
    args += ["--repeat", str(ns.repeat)]
    if ns.seed is not None:
        args += ["--seed", str(ns.seed)]
    if ns.strict:
        args.append("--strict-should")
    if ns.json:
        args += ["--json", ns.json]
    if ns.junitxml:
        args += ["--junitxml", ns.junitxml]
    return args + extra


class _Preflighted:
    """Hands the preflight's WELCOME to the plugin, so the cases run without probing again."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        from .plugin import STATE

        config.stash[STATE].server_info = self.info


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    ns = build_parser().parse_args(argv)
    if ns.list:
        args = [*selection_args(ns), "--list-cases", "-p", "no:terminal", *extra]
        return _pytest_status(pytest.main(args))
    if ns.clients < 2 or ns.repeat < 1 or ns.timeout_scale <= 0:
        return _fail("--clients must be >= 2, --repeat >= 1 and --timeout-scale > 0")
    if not ns.server and not ns.launch:
        return _fail("no target: give --server HOST:PORT or --launch CMD")
    launched: list[LaunchedServer] = []
    try:
        if ns.launch:
            for command in ns.launch:
                node = LaunchedServer(command, timeout=15.0 * ns.timeout_scale)
                launched.append(node)
            extra = [
                *(a for n in launched for a in ("--launched", n.command)),
                *(a for n in launched for a in ("--launched-pid", str(n.proc.pid))),
                *extra,
            ]
            addresses = [node.address for node in launched]
        else:
            addresses = [parse_address(text) for text in ns.server]
        infos = [probe(address, ns.timeout_scale) for address in addresses]
        args = pytest_args(ns, extra)
        for host, port in addresses:
            args += ["--server", f"{host}:{port}"]
        return _pytest_status(pytest.main(args, plugins=[_Preflighted(infos[0])]))
    except (LaunchError, PreflightError, ValueError) as exc:
        return _fail(str(exc))
    finally:
        for node in launched:
            node.stop()


def _pytest_status(code: int | pytest.ExitCode) -> int:
    code = int(code)
    return 2 if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) else code


def _fail(message: str) -> int:
    print(f"conformance: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
