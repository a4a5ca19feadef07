"""Logs (JSON in production, with the request and task context; no tokens) and Sentry
(only with a DSN)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from celery._state import _task_stack

from enque import observability
from enque.tasks import purge_expired_api_records
from enque.tests.test_production_settings import ROOT, production_env

# --- Redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1:5000 - "WebSocket /realtime?token=eyJhbGc.eyJzdWIi.sig" [accepted]',
            '127.0.0.1:5000 - "WebSocket /realtime?token=[redacted]" [accepted]',
        ),
        ("/cb?code=1&access_token=abc&x=1", "/cb?code=1&access_token=[redacted]&x=1"),
        ("refresh_token=r1 password=hunter2", "refresh_token=[redacted] password=[redacted]"),
        ("method=GET path=/v1/tickets status=200", "method=GET path=/v1/tickets status=200"),
    ],
)
def test_credentials_are_redacted(line: str, expected: str) -> None:
    assert observability.redact(line) == expected


def test_the_filter_redacts_the_formatted_message() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '"WebSocket %s"', ("/ws?token=abc",), None
    )

    assert observability.RedactSecretsFilter().filter(record)
    assert record.getMessage() == '"WebSocket /ws?token=[redacted]"'


# --- Task context ---------------------------------------------------------------------------


def test_records_written_inside_a_task_carry_its_id_and_name() -> None:
    task = purge_expired_api_records
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    task.push_request(id="task-123")
    _task_stack.push(task)
    try:
        observability.TaskContextLogFilter().filter(record)
    finally:
        _task_stack.pop()
        task.pop_request()

    assert (record.task_id, record.task_name) == ("task-123", task.name)


def test_records_outside_a_task_carry_no_task_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)

    observability.TaskContextLogFilter().filter(record)

    assert not hasattr(record, "task_id")


# --- JSON lines, as a production process writes them ---------------------------------------

LOGGING_SCRIPT = textwrap.dedent(
    """
    import logging, django
    django.setup()
    from enque.api.middleware import agent_id_var, request_id_var, workspace_id_var

    request_id_var.set("req-0001abcd")
    workspace_id_var.set(7)
    agent_id_var.set(42)
    logging.getLogger("enque.access").info(
        "method=GET status=200", extra={"method": "GET", "status": 200, "duration_ms": 1.5}
    )
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/realtime?token=eyJ.secret.sig"
    )
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("enque.tests").exception("it broke")
    """
)


def log_lines(tmp_path: Path, **overrides: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT],
        cwd=ROOT,
        env=production_env(tmp_path, REDIS_URL="memory", **overrides),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()


def test_production_logs_are_json_lines_with_the_request_context(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in log_lines(tmp_path)]

    access, handshake, error = lines
    assert access["level"] == "INFO"
    assert access["logger"] == "enque.access"
    assert (access["request_id"], access["workspace_id"], access["agent_id"]) == (
        "req-0001abcd",
        7,
        42,
    )
    assert (access["method"], access["status"], access["duration_ms"]) == ("GET", 200, 1.5)
    assert access["time"].endswith("+00:00")
    assert isinstance(access["process"], int)
    # uvicorn's handshake line goes through the same handler: formatted and redacted.
    assert handshake["logger"] == "uvicorn.error"
    assert "token=[redacted]" in handshake["message"]
    assert "secret" not in json.dumps(handshake)
    assert error["level"] == "ERROR"
    assert "ZeroDivisionError" in error["exc_info"]


def test_log_format_plain_writes_readable_lines(tmp_path: Path) -> None:
    lines = log_lines(tmp_path, LOG_FORMAT="plain")

    assert "INFO enque.access [request_id=req-0001abcd workspace=7 agent=42]" in lines[0]
    assert "token=[redacted]" in lines[1]


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=production_env(tmp_path, REDIS_URL="memory", LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "LOG_FORMAT='xml' is not one of json, plain" in result.stderr


# --- Sentry ---------------------------------------------------------------------------------

SENTRY_SCRIPT = textwrap.dedent(
    """
    import json, django
    django.setup()
    import sentry_sdk

    client = sentry_sdk.get_client()
    print(json.dumps({
        "active": client.is_active(),
        "environment": client.options.get("environment"),
        "traces_sample_rate": client.options.get("traces_sample_rate"),
        "send_default_pii": client.options.get("send_default_pii"),
        "integrations": sorted(getattr(client, "integrations", {}) or {}),
    }))
    """
)


def sentry_state(tmp_path: Path, **overrides: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SENTRY_SCRIPT],
        cwd=ROOT,
        env=production_env(tmp_path, REDIS_URL="memory", **overrides),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_a_dsn_sentry_stays_off(tmp_path: Path) -> None:
    assert sentry_state(tmp_path)["active"] is False


def test_with_a_dsn_sentry_reports_django_and_celery(tmp_path: Path) -> None:
    # A DSN on a closed loopback port: initialising sends nothing.
    state = sentry_state(
        tmp_path,
        SENTRY_DSN="http://public@127.0.0.1:9/1",
        SENTRY_TRACES_SAMPLE_RATE="0.25",
    )

    assert state["active"] is True
    assert state["environment"] == "production"
    assert state["traces_sample_rate"] == 0.25
    assert state["send_default_pii"] is False
    assert {"django", "celery"} <= set(state["integrations"])
