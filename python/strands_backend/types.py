"""What the broker tells a backend, and what it answers to requests, as typed objects."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union
from urllib.parse import parse_qs


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass
class Context:
    """The client an event is about: its id, the room it connected with and the
    metadata its backend gave it when accepting it."""

    client_id: str = ""
    room_id: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Context":
        metadata = data.get("metadata")
        return cls(_text(data.get("client_id")), _text(data.get("room_id")), dict(metadata) if isinstance(metadata, dict) else {})

    def to_json(self) -> Dict[str, Any]:
        return {"client_id": self.client_id, "room_id": self.room_id, "metadata": self.metadata}


def _headers(value: Any) -> Dict[str, List[str]]:
    """Go's http.Header shape, keeping only what has it."""
    if not isinstance(value, dict):
        return {}
    headers: Dict[str, List[str]] = {}
    for name, values in value.items():
        if isinstance(name, str) and isinstance(values, list):
            headers[name] = [v for v in values if isinstance(v, str)]
    return headers


@dataclass
class ConnectionRequestContext:
    """A WebSocket client asking to connect. Set `accepted` (or return a bool
    from the handler) and change `context` to pick its client_id, room_id and
    metadata. `query` is the raw query string after `?` ('' when none)."""

    headers: Dict[str, List[str]] = field(default_factory=dict)
    url: str = ""
    remote_addr: str = ""
    context: Context = field(default_factory=Context)
    accepted: bool = False
    query: str = ""
    request_id: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ConnectionRequestContext":
        context = data.get("context")
        return cls(
            headers=_headers(data.get("headers")),
            url=_text(data.get("url")),
            remote_addr=_text(data.get("remote_addr")),
            context=Context.from_json(context if isinstance(context, dict) else {}),
            accepted=data.get("accepted") is True,
            query=_text(data.get("query")),
        )

    def to_json(self) -> Dict[str, Any]:
        return {
            "headers": self.headers,
            "url": self.url,
            "remote_addr": self.remote_addr,
            "context": self.context.to_json(),
            "accepted": self.accepted,
            "query": self.query,
        }

    def header(self, name: str) -> Optional[str]:
        """The first value of a header, its name matched case-insensitively."""
        wanted = name.lower()
        for key, values in self.headers.items():
            if key.lower() == wanted and values:
                return values[0]
        return None

    @property
    def query_params(self) -> Dict[str, List[str]]:
        """The query string parsed: name -> every value, in order."""
        return parse_qs(self.query, keep_blank_values=True)

    def query_param(self, name: str) -> Optional[str]:
        """The first value of a query parameter, or None."""
        values = self.query_params.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class ConnectEvent:
    """A client was accepted and is connected (action new_connection)."""

    context: Context


@dataclass(frozen=True)
class MessageEvent:
    """A client sent a message (action new_message): text as str, a binary frame as bytes."""

    message: Union[str, bytes]
    context: Context

    @property
    def binary(self) -> bool:
        return isinstance(self.message, bytes)


@dataclass(frozen=True)
class DisconnectEvent:
    """A client's socket closed (action disconnected)."""

    context: Context


@dataclass(frozen=True)
class ErrorEvent:
    """The broker reports a problem (action error); `context` is empty
    (client_id '') when no client is involved."""

    error: str
    context: Context


Event = Union[ConnectEvent, MessageEvent, DisconnectEvent, ErrorEvent]


@dataclass(frozen=True)
class AckResult:
    """The broker's answer to an acked send: whether it acted on the line, to
    how many sockets (on the answering node) it was handed, and why not."""

    ok: bool
    delivered: int
    error: Optional[str] = None


@dataclass(frozen=True)
class RoomInfo:
    """Who is in a room: `count` distinct client ids, all of `client_ids`
    (every page fetched), and in a cluster how many nodes answered of how many."""

    room_id: str
    count: int
    client_ids: List[str]
    nodes: Optional[int] = None
    nodes_total: Optional[int] = None
