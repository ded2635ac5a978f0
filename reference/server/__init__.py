"""The reference chatwire/1 server: ``Server(ServerConfig(...)).start()``, or
``python -m reference.server`` (see ``reference/server/__main__.py`` for the flags)."""

from .config import ServerConfig
from .core import Server

__all__ = ["Server", "ServerConfig"]
