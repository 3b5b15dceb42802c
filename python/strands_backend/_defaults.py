"""What the on_* handlers do when a backend does not define them: log at
DEBUG (errors from the broker at WARNING) and accept every client. They are
cheap and never block, so they run on the event loop, not in a thread."""

import logging
from typing import Any, Callable, TypeVar, Union

from .types import ConnectionRequestContext, Context

log = logging.getLogger("strands_backend")

F = TypeVar("F", bound=Callable[..., Any])


def inline(handler: F) -> F:
    """Marks a plain handler as safe to call on the event loop."""
    handler.strands_inline = True  # type: ignore[attr-defined]
    return handler


@inline
def on_connection_request(request: ConnectionRequestContext) -> bool:
    log.debug("accepting %s (%s) as %s", request.url, request.remote_addr, request.context.client_id)
    return True


@inline
def on_new_connection(context: Context) -> None:
    log.debug("client %s connected (room %s)", context.client_id, context.room_id)


@inline
def on_message(message: Union[str, bytes], context: Context) -> None:
    log.debug("message from %s: %d %s", context.client_id, len(message), "bytes" if isinstance(message, bytes) else "characters")


@inline
def on_disconnect(context: Context) -> None:
    log.debug("client %s disconnected", context.client_id)


@inline
def on_error(error: str, context: Context) -> None:
    log.warning("the broker reports an error%s: %s", f" about {context.client_id}" if context.client_id else "", error)
