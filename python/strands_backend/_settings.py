"""A client's settings, checked once, and its reconnect delays."""

import random
import ssl as _ssl
from dataclasses import dataclass
from typing import Optional, Union

SslOption = Union[_ssl.SSLContext, bool, None]


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    auto_reconnect: bool
    reconnect_delay: float
    max_reconnect_delay: float
    reconnect_backoff: float
    max_reconnect_attempts: Optional[int]
    token: Optional[str]
    ssl_context: Optional[_ssl.SSLContext]
    server_hostname: Optional[str]
    heartbeat_timeout: Optional[float]
    connect_timeout: float
    request_timeout: float
    send_buffer_size: int
    max_line: int
    max_pending_events: int
    handler_threads: Optional[int]

    def reconnect_wait(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max_reconnect_delay, reconnect_delay * reconnect_backoff ** failures)]."""
        ceiling = self.reconnect_delay
        for _ in range(failures):
            ceiling *= self.reconnect_backoff
            if ceiling >= self.max_reconnect_delay:
                break
        return random.uniform(0, min(ceiling, self.max_reconnect_delay))


def _number(name: str, value: object, minimum: float, *, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"{name} must be a number, not {value!r}")
    if value < minimum or (not inclusive and value == minimum):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {minimum}, not {value!r}")
    return float(value)


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value!r}")
    return value


def _ssl_context(ssl: SslOption, cafile: Optional[str]) -> Optional[_ssl.SSLContext]:
    if isinstance(ssl, _ssl.SSLContext):
        if cafile is not None:
            raise ValueError("give cafile or an ssl context, not both (load the CA into the context)")
        return ssl
    if ssl is None or isinstance(ssl, bool):
        return _ssl.create_default_context(cafile=cafile) if ssl or cafile is not None else None
    raise TypeError(f"ssl must be an ssl.SSLContext, a bool or None, not {type(ssl).__name__}")


def make_settings(
    *,
    host: str,
    port: int,
    auto_reconnect: bool,
    reconnect_delay: float,
    max_reconnect_delay: float,
    reconnect_backoff: float,
    max_reconnect_attempts: Optional[int],
    token: Optional[str],
    ssl: SslOption,
    cafile: Optional[str],
    server_hostname: Optional[str],
    heartbeat_timeout: Optional[float],
    connect_timeout: float,
    request_timeout: float,
    send_buffer_size: int,
    max_line: int,
    max_pending_events: int,
    handler_threads: Optional[int],
) -> Settings:
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a non-empty str, not {host!r}")
    if _integer("port", port, 1) > 65535:
        raise ValueError(f"port must be at most 65535, not {port}")
    if token is not None and not isinstance(token, str):
        raise TypeError("token must be a str or None")
    context = _ssl_context(ssl, cafile)
    if server_hostname is not None and context is None:
        raise ValueError("server_hostname needs TLS (ssl=True, an ssl context, or cafile)")
    delay = _number("reconnect_delay", reconnect_delay, 0, inclusive=False)
    return Settings(
        host=host,
        port=port,
        auto_reconnect=bool(auto_reconnect),
        reconnect_delay=delay,
        max_reconnect_delay=_number("max_reconnect_delay", max_reconnect_delay, delay),
        reconnect_backoff=_number("reconnect_backoff", reconnect_backoff, 1),
        max_reconnect_attempts=None if max_reconnect_attempts is None else _integer("max_reconnect_attempts", max_reconnect_attempts, 1),
        token=token,
        ssl_context=context,
        server_hostname=server_hostname,
        heartbeat_timeout=None if heartbeat_timeout is None else _number("heartbeat_timeout", heartbeat_timeout, 0, inclusive=False),
        connect_timeout=_number("connect_timeout", connect_timeout, 0, inclusive=False),
        request_timeout=_number("request_timeout", request_timeout, 0, inclusive=False),
        send_buffer_size=_integer("send_buffer_size", send_buffer_size, 0),
        max_line=_integer("max_line", max_line, 1024),
        max_pending_events=_integer("max_pending_events", max_pending_events, 1),
        handler_threads=None if handler_threads is None else _integer("handler_threads", handler_threads, 1),
    )
