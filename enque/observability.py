"""Logs and error reporting for every process (web, worker, beat).

- ``LOG_FORMAT=json`` (the production default): one JSON object per line, with the request
  id, workspace and agent that ``enque.api.middleware.RequestContextLogFilter`` puts on
  every record, the task id and name inside a Celery task, and any ``extra=`` fields (the
  access log's method, path, status, duration_ms). ``plain`` is one readable line.
- ``RedactSecretsFilter`` takes tokens out of log lines: uvicorn logs a websocket handshake
  with its query string, and the realtime socket authenticates with ``?token=<JWT>``.
- Sentry, only when ``SENTRY_DSN`` is set (``init_sentry``, called by settings).

Loaded while logging is configured (before the app registry is ready): no model imports.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

# A credential in a query string or a logfmt pair: the name stays, the value goes.
_SECRET_PAIR = re.compile(
    r"(?i)\b(token|access_token|refresh_token|id_token|client_secret|password|secret)"
    r"=[^&\s\"']+"
)
REDACTED = "[redacted]"

# The fields of a JSON line, in this order; then any extra ones, then "time".
JSON_FIELDS = (
    "levelname",
    "name",
    "message",
    "request_id",
    "workspace_id",
    "agent_id",
    "process",
)


def redact(text: str) -> str:
    return _SECRET_PAIR.sub(lambda match: f"{match.group(1)}={REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Installed on the handlers, so it sees every record, whichever logger wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: let the handler report it as usual
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class TaskContextLogFilter(logging.Filter):
    """Adds ``task_id`` and ``task_name`` to records written inside a Celery task."""

    def filter(self, record: logging.LogRecord) -> bool:
        from celery import current_task  # lazily: the web process may log before Celery loads

        task = current_task._get_current_object() if current_task else None
        request_id = getattr(getattr(task, "request", None), "id", None)
        if task is not None and request_id:
            record.task_id = request_id
            record.task_name = task.name
        return True


def json_formatter() -> dict[str, Any]:
    """The LOGGING formatter entry for JSON lines (python-json-logger)."""
    return {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": list(JSON_FIELDS),
        # "time": ISO 8601, UTC.
        "timestamp": "time",
        "rename_fields": {"levelname": "level", "name": "logger"},
        # Django's request loggers pass the request object as `extra`; its repr carries the
        # query string, so it stays out (request_id identifies the request).
        "reserved_attrs": [*RESERVED_ATTRS, "request", "color_message"],
        "json_ensure_ascii": False,
    }


def init_sentry(
    *, dsn: str, environment: str, traces_sample_rate: float, release: str | None
) -> None:
    """Errors (and, sampled, traces) of Django and Celery to Sentry."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # No emails, cookies or client addresses in events; request bodies are kept out
        # too (tickets carry customers' personal data).
        send_default_pii=False,
        max_request_body_size="never",
    )
