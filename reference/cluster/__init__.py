"""Server nodes that share nicks, rooms, order and presence through Redis (PROTOCOL.md §20).

``ClusterHub`` stands behind the same hub interface as the in-process hub
(``reference.hubapi.RoomHub``); ``ClusterNode`` is a server on such a hub, started and
stopped in the right order. ``python -m reference.server --cluster redis://HOST:PORT``
runs one node.
"""

from .connection import RedisAddress, RedisUnavailable
from .hub import ClusterHub
from .node import ClusterNode

__all__ = ["ClusterHub", "ClusterNode", "RedisAddress", "RedisUnavailable"]
