"""The exceptions this package raises. Every one is a StrandsError."""

__all__ = [
    "StrandsError",
    "NotConnectedError",
    "SendBufferFullError",
    "ConnectionLostError",
    "ConnectFailedError",
    "AuthenticationError",
    "RequestTimeoutError",
    "BrokerError",
    "ProtocolError",
]


class StrandsError(Exception):
    """Base class of every error raised by strands_backend."""


class NotConnectedError(StrandsError):
    """A send or request while no link to the broker is up and none is coming:
    the client was never started, was disconnected, or does not reconnect.
    Requests that wait for an answer (acked sends, room_info) raise it whenever
    the link is down."""


class SendBufferFullError(StrandsError):
    """A send while the link is down and the send buffer (send_buffer_size
    bytes) already holds as much as it may."""


class ConnectionLostError(StrandsError):
    """The link to the broker went down before the answer to a request came, or
    went down and auto_reconnect is off."""


class ConnectFailedError(StrandsError):
    """No connection could be made and no attempt is left (auto_reconnect off,
    or max_reconnect_attempts used up)."""


class AuthenticationError(StrandsError):
    """The broker refused this backend's token, or wants one and got none.
    Retrying cannot help, so the client stops."""


class RequestTimeoutError(StrandsError, TimeoutError):
    """No answer to an acked send or a room_info within its timeout."""


class BrokerError(StrandsError):
    """The broker refused a request with an error event naming its request_id
    (for example a broker that does not know the action)."""


class ProtocolError(StrandsError):
    """The broker answered a request with something this package cannot read."""
