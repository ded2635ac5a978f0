"""Every limit chatwire/1 lets a server choose, with the reference server's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from spec.constants import (
    HARD_MAX_FRAME,
    HARD_MAX_TEXT,
    MAX_HANDSHAKE_TIMEOUT_MS,
    MAX_SLOW_TIMEOUT_MS,
    MIN_MAX_FRAME,
)

#: Bytes a DELIVER needs besides its text: type, room str8 (<= 33), seq, sender str8 (<= 33),
#: text length. max_text must leave room for them within max_frame (§3.2).
DELIVER_OVERHEAD = 1 + 33 + 8 + 33 + 2


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    #: 0 picks a free port (see ``Server.address``).
    port: int = 0
    #: Connections held at once, handshaking or registered; more get SERVER_FULL (§4.5).
    max_clients: int = 20000
    #: §3.2 — the largest frame accepted after WELCOME, and the largest sent.
    max_frame: int = 65536
    #: §2.3 — the longest message text, in bytes.
    max_text: int = 4096
    #: §6.2 — rooms a client may be in at once, the default room included.
    max_rooms: int = 16
    #: §10.2 — seconds of silence before IDLE_TIMEOUT (a PING goes out at half); 0 = none.
    idle_timeout: float = 60.0
    #: §4.3 — seconds to wait for a successful HELLO.
    handshake_timeout: float = 5.0
    #: §12.1 — pending output bytes above which a client is congested.
    out_limit: int = 256 * 1024
    #: §12.2 — seconds a client may stay congested before it is cut.
    slow_timeout: float = 2.0
    #: §13 — messages per second per client (SEND and DIRECT); 0 = no flood limit.
    rate: int = 0
    #: §13 — token bucket size; 0 means "same as rate".
    burst: int = 0
    #: §11.3 — seconds to flush, then to discard input after FIN, when closing a connection.
    drain_time: float = 1.0
    #: listen() backlog (the kernel caps it at net.core.somaxconn).
    backlog: int = 4096
    #: SO_SNDBUF for client sockets in bytes (0 = kernel default, auto-tuned).
    send_buffer: int = 0
    #: Connections still in the handshake held at once (0: a quarter of max_clients, at least
    #: 64). A new one past it ends the oldest handshake with HANDSHAKE_TIMEOUT.
    max_handshakes: int = 0
    #: Connections from one IP address held at once; more get SERVER_FULL. 0 = no limit.
    max_per_address: int = 0
    #: §11.3 at shutdown — seconds every client gets to read its SERVER_SHUTDOWN and close
    #: (the most ERR-8 allows: one reading a backlog first loses the ERROR if the close comes
    #: first).
    shutdown_drain_time: float = 2.0
    #: Seconds ``Server.shutdown`` gives the handler threads to end (the drain follows).
    shutdown_timeout: float = 1.5

    @property
    def effective_max_handshakes(self) -> int:
        return self.max_handshakes or max(64, self.max_clients // 4)

    @property
    def effective_burst(self) -> int:
        if self.rate <= 0:
            return 0
        return self.burst or self.rate

    def validate(self) -> None:
        """Raise ValueError naming the first setting the spec does not allow."""
        checks = [
            (0 <= self.port <= 65535, "port must be in 0..65535"),
            (self.max_clients >= 1, "max-clients must be at least 1"),
            (
                MIN_MAX_FRAME <= self.max_frame <= HARD_MAX_FRAME,
                f"max-frame must be in {MIN_MAX_FRAME}..{HARD_MAX_FRAME}",
            ),
            (0 <= self.max_text <= HARD_MAX_TEXT, f"max-text must be in 0..{HARD_MAX_TEXT}"),
            (
                self.max_text + DELIVER_OVERHEAD <= self.max_frame,
                f"max-text must be at most max-frame - {DELIVER_OVERHEAD}",
            ),
            (1 <= self.max_rooms <= 0xFFFF, "max-rooms must be in 1..65535"),
            (
                0 <= self.idle_timeout * 1000 <= 0xFFFF_FFFF,
                "idle-timeout must be >= 0 and fit in u32 milliseconds",
            ),
            (
                0 < self.handshake_timeout * 1000 <= MAX_HANDSHAKE_TIMEOUT_MS,
                f"handshake-timeout must be in (0, {MAX_HANDSHAKE_TIMEOUT_MS / 1000:g}] s",
            ),
            (1 <= self.out_limit <= 0xFFFF_FFFF, "out-limit must be in 1..4294967295"),
            (
                0 < self.slow_timeout * 1000 <= MAX_SLOW_TIMEOUT_MS,
                f"slow-timeout must be in (0, {MAX_SLOW_TIMEOUT_MS / 1000:g}] s",
            ),
            (0 <= self.rate <= 0xFFFF, "rate must be in 0..65535"),
            (0 <= self.burst <= 0xFFFF, "burst must be in 0..65535"),
            (0 <= self.drain_time <= 2.0, "drain-time must be in 0..2 s"),
            (0 <= self.shutdown_drain_time <= 2.0, "shutdown-drain-time must be in 0..2 s"),
            (self.backlog >= 1, "backlog must be at least 1"),
            (self.send_buffer >= 0, "send-buffer must be >= 0"),
            (self.max_handshakes >= 0, "max-handshakes must be >= 0"),
            (self.max_per_address >= 0, "max-per-address must be >= 0"),
            (0 < self.shutdown_timeout <= 10, "shutdown-timeout must be in (0, 10] s"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
