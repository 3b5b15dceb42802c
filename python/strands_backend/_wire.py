"""The backend protocol's lines: what a backend writes, how the broker's byte
stream is cut into lines, and what those lines mean."""

import base64
import binascii
import json
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union
from uuid import uuid4

from .errors import ProtocolError
from .types import AckResult, ConnectEvent, ConnectionRequestContext, Context, DisconnectEvent, ErrorEvent, Event, MessageEvent

Message = Union[str, bytes, bytearray, memoryview]

MAX_EXCLUDE = 1000
MAX_REASON_BYTES = 123


def new_request_id() -> str:
    return str(uuid4())


def encode_line(action: str, request_id: str, params: Dict[str, Any], ack: bool = False) -> bytes:
    """One line as the upstream client writes it: keys action, request_id,
    params (then ack), ASCII (json.dumps escapes the rest), newline-terminated.
    NaN and infinities are refused: they are not JSON."""
    envelope: Dict[str, Any] = {"action": action, "request_id": request_id, "params": params}
    if ack:
        envelope["ack"] = True
    return (json.dumps(envelope, allow_nan=False) + "\n").encode("ascii")


class LineSplitter:
    """Cuts the broker's byte stream into lines on b"\\n", never inside a
    character: each line is decoded only once it is whole. A partial line is
    held up to max_line bytes; a longer line is dropped up to its newline and
    counted. A trailing \\r is dropped and blank lines are skipped."""

    def __init__(self, max_line: int) -> None:
        self._max_line = max_line
        self._partial = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> Tuple[List[bytes], int]:
        """The whole lines completed by `data`, and how many over-long lines were dropped."""
        lines: List[bytes] = []
        dropped = 0
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if self._discarding:
                self._discarding = False
                dropped += 1
            else:
                if self._partial:
                    self._partial += data[start:nl]
                    line = bytes(self._partial)
                    self._partial.clear()
                else:
                    line = data[start:nl]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if len(line) > self._max_line:
                    dropped += 1
                elif line:
                    lines.append(line)
            start = nl + 1
        if start < len(data) and not self._discarding:
            # +1: room for a \r that the next read's newline turns into a line ending.
            if len(self._partial) + len(data) - start > self._max_line + 1:
                self._discarding = True
                self._partial.clear()
            else:
                self._partial += data[start:]
        return lines, dropped


ERROR_REQUEST_ID = re.compile(r"\(request_id (.*)\)$")


def parse_line(line: bytes) -> Tuple[str, Optional[str], Dict[str, Any]]:
    """(action, request_id, params) of one line; ProtocolError if it is not an envelope."""
    try:
        envelope = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("action"), str):
        raise ProtocolError("a line without an action")
    request_id = envelope.get("request_id")
    params = envelope.get("params")
    return envelope["action"], request_id if isinstance(request_id, str) else None, params if isinstance(params, dict) else {}


def _context(params: Dict[str, Any]) -> Context:
    context = params.get("context")
    return Context.from_json(context if isinstance(context, dict) else {})


def decode_base64(text: str) -> bytes:
    """Standard base64, padding optional."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def to_event(action: str, request_id: Optional[str], params: Dict[str, Any]) -> Union[Event, ConnectionRequestContext, None]:
    """The typed event of a broker line; None for actions that are not events
    (heartbeat, response, unknown ones). ProtocolError if its params are unusable."""
    if action == "connection_request":
        if request_id is None:
            raise ProtocolError("connection_request without a request_id")
        request = ConnectionRequestContext.from_json(params)
        request.request_id = request_id
        return request
    if action == "new_message":
        message = params.get("message")
        if not isinstance(message, str):
            raise ProtocolError("new_message without a string message")
        if params.get("binary") is True:
            try:
                return MessageEvent(decode_base64(message), _context(params))
            except (binascii.Error, ValueError):
                raise ProtocolError("new_message with invalid base64") from None
        return MessageEvent(message, _context(params))
    if action == "new_connection":
        return ConnectEvent(_context(params))
    if action == "disconnected":
        return DisconnectEvent(_context(params))
    if action == "error":
        error = params.get("error")
        return ErrorEvent(error if isinstance(error, str) else str(error), _context(params))
    return None


# --- what a backend sends ----------------------------------------------------


def require_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def message_params(message: Message) -> Dict[str, Any]:
    """A message as params: text as it is, bytes as base64 with binary: true."""
    if isinstance(message, str):
        return {"message": message}
    if isinstance(message, (bytes, bytearray, memoryview)):
        return {"message": base64.b64encode(message).decode("ascii"), "binary": True}
    raise TypeError(f"message must be str or bytes, not {type(message).__name__}")


def exclude_param(exclude: Union[str, Iterable[str], None]) -> Union[str, List[str], None]:
    """`exclude` as the broker takes it (a str, or a list of at most 1000), None when empty."""
    if exclude is None or isinstance(exclude, str):
        return exclude
    ids = list(exclude)
    for client_id in ids:
        require_str("every id in exclude", client_id)
    if len(ids) > MAX_EXCLUDE:
        raise ValueError(f"exclude holds {len(ids)} client ids; the broker takes at most {MAX_EXCLUDE}")
    return ids or None


def with_exclude(params: Dict[str, Any], exclude: Union[str, Iterable[str], None]) -> Dict[str, Any]:
    """`params` with `exclude` added as the broker takes it, when it names anyone."""
    excluded = exclude_param(exclude)
    if excluded is not None:
        params["exclude"] = excluded
    return params


def response_params(request: ConnectionRequestContext, accepted: Any) -> Dict[str, Any]:
    """The answer to a connection request; only True accepts, as only true does at the broker."""
    context = request.context
    if not isinstance(context, Context):
        raise TypeError(f"request.context must be a Context, not {type(context).__name__}")
    if not isinstance(context.metadata, dict):
        raise TypeError(f"context.metadata must be a dict, not {type(context.metadata).__name__}")
    return {
        "accepted": accepted is True,
        "client_id": require_str("context.client_id", context.client_id),
        "room_id": require_str("context.room_id", context.room_id),
        "metadata": context.metadata,
    }


def disconnect_params(client_id: str, code: int, reason: str) -> Dict[str, Any]:
    require_str("client_id", client_id)
    if isinstance(code, bool) or not isinstance(code, int) or not (code == 1000 or 4000 <= code <= 4999):
        raise ValueError(f"close code must be 1000 or 4000..4999, not {code!r}")
    if len(require_str("reason", reason).encode("utf-8")) > MAX_REASON_BYTES:
        raise ValueError(f"reason must be at most {MAX_REASON_BYTES} UTF-8 bytes")
    return {"conn_id": client_id, "code": code, "reason": reason}


# --- answers to requests -------------------------------------------------------


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def ack_result(params: Dict[str, Any]) -> AckResult:
    ok = params.get("ok")
    delivered = _count(params.get("delivered"))
    error = params.get("error")
    if not isinstance(ok, bool) or delivered is None:
        raise ProtocolError(f"an ack answer needs ok (bool) and delivered (int): {params!r}")
    return AckResult(ok, delivered, error if isinstance(error, str) else None)


def room_page(params: Dict[str, Any]) -> Tuple[int, List[str], Optional[str], Optional[int], Optional[int]]:
    """(count, client_ids, next, nodes, nodes_total) of one room_info answer."""
    count = _count(params.get("count"))
    ids = params.get("client_ids")
    following = params.get("next")
    if count is None or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ProtocolError(f"a room_info answer needs count (int) and client_ids (list of str): {params!r}")
    if following is not None and not isinstance(following, str):
        raise ProtocolError(f"room_info next must be a str: {following!r}")
    return count, ids, following, _count(params.get("nodes")), _count(params.get("nodes_total"))
