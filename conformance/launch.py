"""``--launch CMD``: start a server, wait for its ``listening on HOST:PORT`` line, stop it after."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import signal
import subprocess
import threading

from .options import parse_address

_LISTENING = re.compile(r"listening on (\S+:\d+)")


class LaunchError(Exception):
    pass


class LaunchedServer:
    def __init__(self, command: str, timeout: float = 15.0) -> None:
        self.command = command
        self.output: list[str] = []
        try:
            self.proc = subprocess.Popen(
                shlex.split(command),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # so stop() can signal the whole process group
            )
        except OSError as exc:
            raise LaunchError(f"cannot start {command!r}: {exc}") from None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(lines,), daemon=True).start()
        try:
            self.address = self._wait_listening(lines, timeout)
        except LaunchError:
            self.stop()
            raise

    def _pump(self, lines: queue.Queue[str | None]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # keep draining so the server never blocks on its stdout
            self.output.append(line.rstrip("\n"))
            lines.put(line)
        lines.put(None)

    def _wait_listening(self, lines: queue.Queue[str | None], timeout: float) -> tuple[str, int]:
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise LaunchError(
                    f"{self.command!r} printed no 'listening on HOST:PORT' within {timeout:g}s"
                ) from None
            if line is None:
                code = self.proc.wait()
                tail = " | ".join(self.output[-3:])
                raise LaunchError(
                    f"{self.command!r} exited with code {code} before listening: {tail}"
                )
            if m := _LISTENING.search(line):
                return parse_address(m.group(1))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
