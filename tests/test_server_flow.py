"""Keepalive, flood limit, slow consumers and backpressure, server full, shutdown, the CLI."""

from __future__ import annotations

import gc
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spec.constants import ErrorCode, FrameType, LeaveReason
from spec.events import Ack, Deliver, Direct, Error, Hello, Left, Ping, Send, Welcome
from tests.conditions import until
from tests.rawclient import Closed, Incoming, RawClient, clients, running_server, session_threads

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parent.parent


class Collector(threading.Thread):
    """Reads one client in the background until ``done`` holds for an item (or a deadline)."""

    def __init__(self, client: RawClient, done: Callable[[list[Incoming]], bool], delay: float = 0):
        super().__init__(daemon=True)
        self.client, self.done, self.delay = client, done, delay
        self.items: list[Incoming] = []
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 30
        try:
            while not self.done(self.items) and time.monotonic() < deadline:
                if self.delay:  # a slow but steady reader
                    time.sleep(self.delay)
                item = self.client.recv_event(timeout=max(0.01, deadline - time.monotonic()))
                if not isinstance(item, Ping):
                    self.items.append(item)
                if isinstance(item, Closed):
                    return
        except BaseException as exc:
            self.error = exc

    def result(self) -> list[Incoming]:
        self.join(40)
        assert not self.is_alive() and self.error is None, self.error
        return self.items


def count(kind: type, items: list[Incoming]) -> int:
    return sum(isinstance(i, kind) for i in items)


def test_live_client_is_pinged_not_cut_and_silent_one_times_out() -> None:
    with running_server(idle_timeout=1.0) as server, clients(server, "alice") as (alice,):
        mute = RawClient(server.address, auto_pong=False)
        mute.hello("mute")
        pings, seen = 0, []
        while pings < 3:  # three server PINGs answered: 1.5 s alive on a 1 s idle timeout
            item = alice.recv_event()
            pings += isinstance(item, Ping)
            seen.append(item)
        left = [e for e in seen + alice.barrier() if isinstance(e, Left)]
        assert left == [Left("lobby", "mute", LeaveReason.TIMEOUT, "")]
        assert mute.fatal().code == ErrorCode.IDLE_TIMEOUT
        mute.close()


def test_flood_limit_counts_only_accepted_sends_and_directs() -> None:
    with running_server(rate=1, burst=3) as server, clients(server, "alice", "bob") as (a, b):
        a.send(Send("nowhere", "not counted"), Ping(1), Ping(2))
        a.send(Send("lobby", "1"), Direct("bob", "2"), Send("lobby", "3"), Send("lobby", "4"))
        a.send(Direct("bob", "5"))
        got = [e for e in a.barrier() if isinstance(e, Ack | Error)]
        assert got[0] == Error(ErrorCode.NOT_IN_ROOM, "not in room", FrameType.SEND)
        assert got[1:4] == [Ack("lobby", 1), Ack("", 0), Ack("lobby", 2)]
        assert [(e.code, e.in_reply_to) for e in got[4:] if isinstance(e, Error)] == [
            (ErrorCode.RATE_LIMITED, FrameType.SEND),
            (ErrorCode.RATE_LIMITED, FrameType.DIRECT),
        ]
        assert count(Deliver, b.barrier()) == 2


def test_a_member_that_stops_reading_is_cut_and_nobody_loses_anything() -> None:
    limits = {"out_limit": 16384, "slow_timeout": 0.5, "send_buffer": 4096}
    with running_server(**limits) as server, clients(server, "sender", "watcher") as (s, w):
        sleepy = RawClient(server.address, rcvbuf=4096)
        sleepy.hello("sleepy")
        s.barrier()
        w.barrier()
        total = 400
        text = "z" * 1000
        acks = Collector(s, lambda items: count(Ack, items) >= total)
        seen = Collector(w, lambda items: count(Deliver, items) >= total)
        s.send(*(Send("lobby", f"{i:04d}{text}") for i in range(total)))
        got = seen.result()
        assert [e.seq for e in acks.result() if isinstance(e, Ack)] == list(range(1, total + 1))
        delivered = [e for e in got if isinstance(e, Deliver)]
        assert [e.seq for e in delivered] == list(range(1, total + 1))
        assert [e.text[:4] for e in delivered] == [f"{i:04d}" for i in range(total)]
        lefts = [e for e in got if isinstance(e, Left)]
        assert lefts == [Left("lobby", "sleepy", LeaveReason.SLOW_CONSUMER, "")]
        tail = sleepy.until_closed(timeout=10)  # what reached it, then the close
        seqs = [e.seq for e in tail if isinstance(e, Deliver)]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < total
        errors = [e for e in tail if isinstance(e, Error)]
        assert errors in ([], [Error(ErrorCode.SLOW_CONSUMER, "output not read in time", 0)])
        sleepy.close()


def test_a_slow_reader_is_never_cut_and_the_sender_is_held_instead() -> None:
    limits = {"out_limit": 16384, "slow_timeout": 1.0, "send_buffer": 4096}
    with running_server(**limits) as server, clients(server, "sender", "fast") as (s, fast):
        slow = RawClient(server.address, rcvbuf=4096)
        slow.hello("slow")
        s.barrier()
        fast.barrier()
        total = 300
        acks = Collector(s, lambda items: count(Ack, items) >= total)
        quick = Collector(fast, lambda items: count(Deliver, items) >= total)
        steady = Collector(slow, lambda items: count(Deliver, items) >= total, delay=0.001)
        s.send(*(Send("lobby", f"{i:04d}" + "y" * 996) for i in range(total)))
        for reader in (quick, steady):
            got = reader.result()
            assert [e.seq for e in got if isinstance(e, Deliver)] == list(range(1, total + 1))
            assert count(Left, got) == 0
        assert count(Ack, acks.result()) == total
        assert server.congestion.episodes > 0  # the flood did outrun the slow reader
        slow.close()


def test_server_full_is_refused_with_an_error_not_a_bare_close() -> None:
    with running_server(max_clients=2) as server, clients(server, "alice") as (alice,):
        pending = RawClient(server.address)  # unregistered sessions count too
        alice.barrier()
        refused = RawClient(server.address)
        err = refused.fatal()
        assert (err.code, err.in_reply_to) == (ErrorCode.SERVER_FULL, 0)
        pending.close()
        refused.close()
        assert server.wait_sessions(1, timeout=5)
        late = RawClient(server.address)
        assert late.hello("late").nick == "late"
        late.close()


def test_shutdown_notifies_every_client_and_joins_every_thread() -> None:
    with running_server() as server, clients(server, "alice", "bob") as (alice, bob):
        loner = RawClient(server.address)  # not registered: notified as well
        alice.barrier()
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        for client in (alice, bob, loner):
            assert client.fatal().code == ErrorCode.SERVER_SHUTDOWN
            client.close()
        stopper.join(5)
        assert not stopper.is_alive()
        assert session_threads() == []
        server.shutdown()  # idempotent


def test_shutdown_notice_goes_before_a_backlog_the_client_was_not_reading() -> None:
    """SERVER_SHUTDOWN goes right after the frame going out when shutdown began, and output
    queued behind it is dropped, so a client with a backlog still gets its ERROR within the
    drain time: what arrives is whole DELIVERs in order (a prefix), the ERROR, then FIN. An
    embedded server's shutdown leaves the interpreter's switch interval and collector alone."""
    interval, collecting = sys.getswitchinterval(), gc.isenabled()
    with (
        running_server(send_buffer=4096, out_limit=1 << 20) as server,
        clients(server, "alice") as (alice,),
    ):
        bob = RawClient(server.address, rcvbuf=4096)
        try:
            bob.hello("bob")
            alice.barrier()
            texts = [f"{i:04d}" + "x" * 1996 for i in range(100)]
            for text in texts:  # one at a time: each DELIVER is a piece of bob's backlog
                alice.send(Send("lobby", text))
                alice.expect(Ack)
            alice.barrier()  # every message fanned out: most of it waits in bob's outbox
            (session,) = [s for s in server._sessions if s.nick == "bob"]
            assert session.outbox.pending > 100_000, session.outbox.pending
            stopper = threading.Thread(target=server.shutdown)
            stopper.start()
            # bob reads only once SERVER_SHUTDOWN is queued (phase 2): reading earlier would
            # drain the backlog before there is anything to drop.
            assert until(lambda: session.outbox._final), "SERVER_SHUTDOWN never queued"
            got = [e for e in bob.until_closed(10) if not isinstance(e, Ping)]
            stopper.join(10)
        finally:
            bob.close()
    delivered = [e.text for e in got if isinstance(e, Deliver)]
    # Dropped at the grain of what was pushed: what the kernel held and the DELIVER going out
    # arrive (a prefix, never a torn frame); the rest of the backlog is dropped.
    assert delivered == texts[: len(delivered)]
    assert len(delivered) < len(texts) // 2, len(delivered)
    assert isinstance(got[-2], Error) and got[-2].code == ErrorCode.SERVER_SHUTDOWN
    assert got[-1] == Closed(reset=False)
    assert not stopper.is_alive() and session_threads() == []
    assert (sys.getswitchinterval(), gc.isenabled()) == (interval, collecting)


def _start_cli(
    *args: str, fd_limit: int = 0, stderr: int | None = subprocess.DEVNULL
) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    def limit_fds() -> None:
        if fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    proc = subprocess.Popen(
        [sys.executable, "-m", "reference.server", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=limit_fds,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready, "no 'listening on' line in time"
    line = proc.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:"), line
    host, port = line.split()[-1].rsplit(":", 1)
    return proc, (host, int(port))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_exits_cleanly_on_signal_after_notifying_clients(signum: int) -> None:
    proc, address = _start_cli("--log-level", "WARNING")
    try:
        client = RawClient(address)
        client.hello("alice")
        proc.send_signal(signum)
        sent = time.monotonic()
        assert client.fatal().code == ErrorCode.SERVER_SHUTDOWN
        client.close()
        assert proc.wait(timeout=max(0.1, sent + 2 - time.monotonic())) == 0
        assert proc.stdout is not None and proc.stdout.read() == ""  # exactly one line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_tells_clients_past_the_descriptor_limit_server_full() -> None:
    """Out of descriptors at accept(): a descriptor kept in reserve lets the server accept
    each client past the limit and tell it SERVER_FULL (§4.5) rather than leave it waiting in
    the backlog; once descriptors come free, clients get in again."""
    proc, address = _start_cli("--log-level", "WARNING", fd_limit=120)
    try:
        crowd = [RawClient(address) for _ in range(90)]  # more than the server can hold
        for i, client in enumerate(crowd):
            client.send(Hello(f"c{i}"))
        answers = [client.recv_event(timeout=15) for client in crowd]
        welcomed = [c for c, a in zip(crowd, answers, strict=True) if isinstance(a, Welcome)]
        refused = [a for a in answers if isinstance(a, Error)]
        assert welcomed and refused, answers
        assert len(welcomed) + len(refused) == len(crowd), answers
        assert all(e.code == ErrorCode.SERVER_FULL for e in refused)
        for client in crowd:
            client.close()
        for _ in range(20):  # descriptors come free as the server sees the closes
            late = RawClient(address)
            late.send(Hello("late"))
            answer = late.recv_event(timeout=5)
            late.close()
            if isinstance(answer, Welcome):
                break
        assert isinstance(answer, Welcome), answer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "70000"],
        ["--max-frame", "10"],
        ["--bogus"],
        ["--rate", "x"],
        ["--log-level", "LOUD"],
    ],
)
def test_cli_rejects_bad_flags_with_one_line(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reference.server", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_connections_still_queued_at_shutdown_get_server_shutdown_not_a_reset() -> None:
    """ERR-18 for connections the kernel completed but the server had not accepted yet: they
    are accepted at shutdown and told SERVER_SHUTDOWN like everyone else (closing the listener
    with them in its queue would reset them). The accept thread is held inside the first
    admission so that the others wait in the queue."""
    gate = threading.Event()
    with running_server() as server:
        admit = server._admit

        def held_admit(sock: object, peer: str) -> None:
            gate.wait(5.0)
            admit(sock, peer)  # type: ignore[arg-type]

        server._admit = held_admit  # type: ignore[method-assign]
        first = RawClient(server.address)
        queued = [RawClient(server.address) for _ in range(3)]  # the kernel completes these
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        assert until(lambda: server.closing, 5.0), "shutdown never began"
        gate.set()
        stopper.join(10.0)
        assert not stopper.is_alive()
        for client in [first, *queued]:
            assert client.fatal().code == ErrorCode.SERVER_SHUTDOWN
