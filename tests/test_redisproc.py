"""redisproc starts a real redis-server on loopback, stops it by PID and restarts it on its port."""

from __future__ import annotations

import socket

import pytest

from redisproc import RedisServer, find_redis_server

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"*1\r\n$4\r\nPING\r\n")
        return conn.recv(16)


def test_finds_an_executable() -> None:
    assert find_redis_server().endswith("redis-server")


def test_start_stop_restart_on_the_same_port() -> None:
    with RedisServer() as server:
        assert server.port is not None
        port = server.port
        assert server.url == f"redis://127.0.0.1:{port}"
        assert _ping(port) == b"+PONG\r\n"
        server.stop()
        with pytest.raises(OSError):
            _ping(port)
        server.start(port=port)
        assert _ping(port) == b"+PONG\r\n"
    with pytest.raises(OSError):
        _ping(port)


def test_bad_explicit_executable_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATWIRE_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(RuntimeError, match="not an executable"):
        find_redis_server()
