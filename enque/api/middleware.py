"""Request ids, request-scoped log context and the access log.

``RequestIdMiddleware`` sits first in ``MIDDLEWARE``, so it sees every request and every
response (404s, 500s, static files, the admin):

- the client's ``X-Request-ID`` is kept when well-formed, else one is generated; it is on
  ``request.request_id``, on every response, and in a context variable;
- ``RequestContextLogFilter`` (installed on the log handlers in settings.LOGGING) copies the
  request id, workspace id and agent id from those context variables onto every log record,
  whichever logger wrote it;
- one access log line per request at info on the ``enque.access`` logger.

This module is imported while logging is configured (before the app registry is ready),
so it imports nothing that touches models.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough to be unique, short and plain enough to be safe in a log line or a header.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

request_id_var: ContextVar[str | None] = ContextVar("enque_request_id", default=None)
workspace_id_var: ContextVar[int | None] = ContextVar("enque_workspace_id", default=None)
agent_id_var: ContextVar[int | None] = ContextVar("enque_agent_id", default=None)

access_logger = logging.getLogger("enque.access")


def current_request_id() -> str | None:
    return request_id_var.get()


def bind_actor(*, workspace_id: int | None, agent_id: int | None) -> None:
    """Called by authentication once the token's agent is known: later log lines carry it."""
    workspace_id_var.set(workspace_id)
    agent_id_var.set(agent_id)


def request_id_from_header(value: str | None) -> str:
    """The client's id when well-formed (so their logs and ours line up), else a new one."""
    if value and REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


class RequestContextLogFilter(logging.Filter):
    """Adds ``request_id``, ``workspace_id`` and ``agent_id`` to every record ("-" outside a
    request). A value the caller passed through ``extra=`` is left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs 4xx/5xx answers ("Unauthorized: /v1/...") after the middleware has
        # returned, when the context is already reset; those records carry the request.
        request = getattr(record, "request", None)
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or getattr(request, "request_id", "-")
        if not hasattr(record, "workspace_id"):
            record.workspace_id = _or_dash(workspace_id_var.get(), request, "workspace")
        if not hasattr(record, "agent_id"):
            record.agent_id = _or_dash(agent_id_var.get(), request, "agent")
        return True


def _or_dash(value: int | None, request: Any, attribute: str) -> int | str:
    if value is None:
        value = getattr(getattr(request, attribute, None), "pk", None)
    return "-" if value is None else value


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        started, tokens = self._begin(request)
        try:
            response = self.get_response(request)  # type: ignore[assignment]
            return self._end(request, response, started)
        finally:
            _reset(tokens)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started, tokens = self._begin(request)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
            return self._end(request, response, started)
        finally:
            _reset(tokens)

    def _begin(self, request: HttpRequest) -> tuple[float, list[tuple[ContextVar, Token]]]:
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        tokens: list[tuple[ContextVar, Token]] = [
            (request_id_var, request_id_var.set(request_id)),
            (workspace_id_var, workspace_id_var.set(None)),
            (agent_id_var, agent_id_var.set(None)),
        ]
        return time.monotonic(), tokens

    def _end(
        self, request: HttpRequest, response: HttpResponseBase, started: float
    ) -> HttpResponseBase:
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        # Set by the API's throttles (enque.api.throttling); absent outside /v1.
        rate_limit = getattr(request, "rate_limit", None)
        if rate_limit is not None:
            rate_limit.apply_headers(response)
        log_access(request, response, duration_ms=(time.monotonic() - started) * 1000)
        return response


def _reset(tokens: list[tuple[ContextVar, Token]]) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


def log_access(request: HttpRequest, response: HttpResponseBase, *, duration_ms: float) -> None:
    # request.agent / request.workspace are set by enque.api.authentication on the Django
    # request, so they are visible here even though DRF authenticated lazily inside the view.
    agent = getattr(request, "agent", None)
    workspace = getattr(request, "workspace", None)
    fields = {
        "method": request.method,
        # The path without its query string: tokens must never reach a log line.
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round(duration_ms, 1),
        "workspace_id": workspace.pk if workspace is not None else "-",
        "agent_id": agent.pk if agent is not None else "-",
        "request_id": request.request_id,  # type: ignore[attr-defined]
    }
    # logfmt in the message for people reading a console; the same fields as record
    # attributes for a structured (JSON) handler.
    access_logger.info(" ".join(f"{key}={value}" for key, value in fields.items()), extra=fields)


class SyncChainMiddleware:
    """Last in ``MIDDLEWARE``, sync only: under the ASGI server Django then runs the whole
    middleware chain in one thread, instead of switching between the event loop and a
    thread twice per middleware.

    Django builds the chain from the view outwards and keeps each middleware that can run
    either way in the mode of the handler it wraps; the ASGI handler is async, so Django's
    own middleware (sessions, CSRF, auth, messages...) ran async, each handing its
    ``process_request`` and ``process_response`` to a thread, until WhiteNoise (sync only)
    switched back. That was some 15 thread switches per request (bench/run.py, the HTTP
    figures); with this, two. Every view of the project is sync.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)
