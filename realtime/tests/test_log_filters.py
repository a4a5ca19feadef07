"""Tokens in websocket request lines never reach the logs."""

from __future__ import annotations

import logging

import pytest

from realtime.log_filters import RedactTokens, redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/realtime?token=eyJ.abc.def", "/realtime?token=[redacted]"),
        ("/ws/realtime?x=1&token=eyJ&y=2", "/ws/realtime?x=1&token=[redacted]&y=2"),
        ("/realtime?access_token=eyJ", "/realtime?access_token=[redacted]"),
        ("/realtime?mytoken=keep", "/realtime?mytoken=keep"),
        ("/v1/tickets", "/v1/tickets"),
    ],
)
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_the_server_loggers_redact_request_lines(caplog: pytest.LogCaptureFixture) -> None:
    # uvicorn's own line: '%s - "WebSocket %s" [accepted]'
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/realtime?token=eyJsecret"
        )

    assert "eyJsecret" not in caplog.text
    assert '"WebSocket /realtime?token=[redacted]" [accepted]' in caplog.text
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("uvicorn.error").filters)
