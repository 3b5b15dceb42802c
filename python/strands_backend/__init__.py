"""A Python SDK for strands backends: the upstream PyStrands client's API
(switch with one import), plus token, TLS, query, the protocol extensions,
typed events and errors."""

import logging

from ._engine import EventStream
from .app import PyStrands
from .async_client import AsyncPyStrandsClient
from .errors import *  # noqa: F401,F403 (the exceptions, listed in errors.__all__)
from .errors import __all__ as _errors
from .sync_client import PyStrandsClient
from .types import AckResult, ConnectEvent, ConnectionRequestContext, Context, DisconnectEvent, ErrorEvent, Event, MessageEvent, RoomInfo

# A library only adds a NullHandler: levels and output are the application's choice.
logging.getLogger("strands_backend").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "PyStrands",
    "PyStrandsClient",
    "AsyncPyStrandsClient",
    "Context",
    "ConnectionRequestContext",
    "ConnectEvent",
    "MessageEvent",
    "DisconnectEvent",
    "ErrorEvent",
    "Event",
    "EventStream",
    "AckResult",
    "RoomInfo",
    *_errors,
]
