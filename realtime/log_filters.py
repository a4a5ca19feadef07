"""Keep websocket tokens out of the logs.

A browser cannot set headers on a websocket, so API clients pass their JWT as
``/realtime?token=…``, and the ASGI server logs every handshake with its query string
(uvicorn: ``"WebSocket /realtime?token=eyJ…" [accepted]``). This filter, attached to the
server's loggers in ``RealtimeConfig.ready``, rewrites any ``token=`` value before a record
is written anywhere.
"""

from __future__ import annotations

import logging
import re

TOKEN_IN_QUERY = re.compile(r"((?:^|[?&\s])(?:access_)?token=)[^&\s\"']+")
REDACTED = r"\1[redacted]"
# The loggers of the ASGI servers that write request lines.
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access", "daphne.server", "daphne.access")


def redact(value: object) -> object:
    if isinstance(value, str) and "token=" in value:
        return TOKEN_IN_QUERY.sub(REDACTED, value)
    return value


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(arg) for key, arg in record.args.items()}
        return True


def install() -> None:
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
