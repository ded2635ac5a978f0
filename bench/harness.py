"""The harness side of the workers: spawn them, hand out clients, run, merge what they saw."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from .orders import ClientSpec, ConnectOrder, RunOrder
from .servers import Server
from .worker import worker_main


class WorkerError(RuntimeError):
    """A worker process failed or stopped answering."""


class Pool:
    """Load worker processes (spawned, so each has its own interpreter and GIL)."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for index in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, index), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def size(self) -> int:
        return len(self.pipes)

    def ask(self, orders: dict[int, tuple[str, Any]], timeout: float) -> dict[int, Any]:
        """Send each worker its order at once, then wait for every answer."""
        self.tell(orders)
        return self.answers(list(orders), timeout)

    def tell(self, orders: dict[int, tuple[str, Any]]) -> None:
        """Send each worker its order; collect the answers with :meth:`answers`."""
        for index, order in orders.items():
            self.pipes[index].send(order)

    def answers(self, workers: list[int], timeout: float) -> dict[int, Any]:
        """Wait for the answer of each of these workers to the order it was told."""
        orders = workers
        replies: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        for index in orders:
            pipe = self.pipes[index]
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerError(f"worker {index} did not answer within {timeout:.0f} s")
            try:
                status, reply = pipe.recv()
            except EOFError:
                raise WorkerError(f"worker {index} died") from None
            if status != "ok":
                raise WorkerError(f"worker {index} failed:\n{reply}")
            replies[index] = reply
        return replies

    def reset(self) -> None:
        self.ask({i: ("reset", None) for i in range(self.size)}, 60)

    def close(self) -> None:
        for index, pipe in enumerate(self.pipes):
            try:
                pipe.send(("quit", None))
                pipe.poll(5)
            except (OSError, EOFError):
                pass
            self.procs[index].join(5)
            if self.procs[index].is_alive():
                self.procs[index].terminate()
                self.procs[index].join(5)
            pipe.close()


@dataclass(frozen=True)
class Layout:
    """Which clients each worker holds for one measured point."""

    room: str
    join: bool
    clients: dict[int, tuple[ClientSpec, ...]]
    payload: int = 64
    staller_rcvbuf: int = 0
    receiver_rcvbuf: int = 0


def connect(pool: Pool, server: Server, layout: Layout, timeout: float) -> dict[str, Any]:
    """Connect and register every client of ``layout``; merged figures of the phase."""
    orders: dict[int, tuple[str, Any]] = {}
    for index, specs in layout.clients.items():
        if specs:
            order = ConnectOrder(
                *server.address_for(index),
                server.dialect,
                layout.room,
                layout.join,
                specs,
                layout.payload,
                layout.staller_rcvbuf,
                layout.receiver_rcvbuf,
                timeout_s=timeout,
            )
            orders[index] = ("connect", order)
    replies = pool.ask(orders, timeout + 30)
    failures: dict[str, int] = {}
    for reply in replies.values():
        for why, count in reply["failures"].items():
            failures[why] = failures.get(why, 0) + count
    start = min(r["start_ns"] for r in replies.values())
    end = max(r["end_ns"] for r in replies.values())
    ok = sum(r["ok"] for r in replies.values())
    welcome = next((r["welcome"] for r in replies.values() if r["welcome"]), None)
    return {
        "ok": ok,
        "failed": sum(failures.values()),
        "failures": failures,
        "seconds": (end - start) / 1e9,
        "per_s": ok / ((end - start) / 1e9) if end > start else None,
        "welcome": welcome,
        "fd_limit": next(iter(replies.values()))["fd_limit"],
    }


def run(pool: Pool, workers: list[int], order: RunOrder) -> list[dict[str, Any]]:
    replies = pool.ask({i: ("run", order) for i in workers}, order.deadline_s + 60)
    return list(replies.values())
