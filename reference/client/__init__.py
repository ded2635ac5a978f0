"""The reference chatwire/1 client: a blocking library (:mod:`.library`) and the command line
(``python -m reference.client``) built on it."""

from .errors import (
    ClientError,
    ClientTimeout,
    ConnectFailed,
    ConnectionClosed,
    Disconnected,
    EndCause,
    InvalidRequest,
    NickRefused,
    NotChatwireServer,
    RequestFailed,
    ServerError,
    ServerProtocolError,
)
from .library import ChatClient, Request, ServerEvent

__all__ = [
    "ChatClient",
    "ClientError",
    "ClientTimeout",
    "ConnectFailed",
    "ConnectionClosed",
    "Disconnected",
    "EndCause",
    "InvalidRequest",
    "NickRefused",
    "NotChatwireServer",
    "Request",
    "RequestFailed",
    "ServerError",
    "ServerEvent",
    "ServerProtocolError",
]
