"""What the bench reads about a server process and the machine, from /proc only (no psutil).

CPU time is the steadiest figure on a shared machine: wall-clock rates move with whatever
else runs, but the CPU seconds a server spends per delivery hardly do.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from spec import fastpath

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: The resolution of every CPU time /proc reports, in seconds.
TICK_S = 1 / _CLOCK_TICKS


#: Up to this many threads, CPU time is summed from each thread's schedstat (nanoseconds)
#: rather than read from /proc/PID/stat (clock ticks, 10 ms here: a small point's whole CPU
#: time may be one or two ticks, which makes CPU per delivery a coin toss).
PRECISE_THREADS = 2048


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One look at a process: CPU seconds so far, resident memory, thread count, and the CPU
    seconds of its live threads to the nanosecond (None when it has too many to read)."""

    cpu_s: float
    rss_kib: int
    threads: int
    threads_cpu_s: float | None = None


def precise(before: ProcSample, after: ProcSample) -> bool:
    """Whether both samples summed every thread's CPU to the nanosecond and no thread ended
    between them (an ended thread's time leaves the per-thread sum)."""
    return (
        before.threads_cpu_s is not None
        and after.threads_cpu_s is not None
        and after.threads >= before.threads
        and after.threads_cpu_s >= before.threads_cpu_s
    )


def cpu_between(before: ProcSample, after: ProcSample) -> float:
    """CPU seconds spent between two samples, to the nanosecond where :func:`precise`."""
    if precise(before, after):
        assert before.threads_cpu_s is not None and after.threads_cpu_s is not None
        return after.threads_cpu_s - before.threads_cpu_s
    return after.cpu_s - before.cpu_s


def _threads_cpu_s(pid: int) -> float | None:
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                total += int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def sample(pid: int) -> ProcSample | None:
    """The process's figures now, or None if it is gone or unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; fields resume after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss = threads = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    precise = _threads_cpu_s(pid) if threads <= PRECISE_THREADS else None
    return ProcSample((utime + stime) / _CLOCK_TICKS, rss, threads, precise)


def open_fds(pid: int) -> int | None:
    """How many descriptors the process holds now, or None if it is gone or unreadable."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


_LISTEN = "0A"


@dataclass(frozen=True)
class TcpSocket:
    """One row of /proc/net/tcp{,6}: ports, the kernel's hex state code, the socket inode."""

    local_port: int
    remote_port: int
    state: str
    inode: str


def tcp_sockets() -> list[TcpSocket]:
    """Every TCP socket of this machine's network namespace, IPv4 and IPv6."""
    rows: list[TcpSocket] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote = (int(c.rsplit(":", 1)[1], 16) for c in (cols[1], cols[2]))
            rows.append(TcpSocket(local, remote, cols[3], cols[9]))
    return rows


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` on this machine, if it can be found.

    Used when the bench is pointed at a server it did not start, so CPU and memory can
    still be read. Finds the listening socket's inode in /proc/net/tcp{,6}, then the
    process holding a descriptor to it.
    """
    inodes = {row.inode for row in tcp_sockets() if row.state == _LISTEN and row.local_port == port}
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(entry.name)
        except OSError:
            continue
    return None


def raise_fd_limit() -> tuple[int, int]:
    """Lift this process's open-file soft limit to its hard limit; return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft, hard


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    """The machine and software a result was measured on, for the JSON report."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "load_average": list(os.getloadavg()),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": {p: _version(p) for p in ("chatwire", "construct", "matplotlib")},
        "git_commit": _git_commit(),
        "rlimit_nofile": [soft, hard],
        #: Whether a reference server this bench starts uses the compiled twins
        #: (``spec/_speedups.c``; it inherits this process's environment, CHATWIRE_PURE too).
        "speedups": fastpath.COMPILED,
    }
