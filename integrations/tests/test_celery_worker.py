"""A real Celery worker sends the reply that a commit enqueued.

The worker is the production command (``enque.deploy_commands.worker``, here consuming the
``mail_out`` queue that ``integrations.outbound.*`` tasks are routed to) started as a
subprocess on the test session's Redis broker — the embedded one, or ``REDIS_URL``. It must
see the test's data, so the test commits for real (``transaction=True``) and:

- on PostgreSQL the worker connects to the test database itself, is started first, and the
  reply is made while it waits;
- on SQLite (pytest-django's database lives in this process's memory) the reply is made
  first — its task waits in the broker — then the database is copied with SQLite's backup
  API into the file the worker's settings use by default (``$ENQUE_VAR_DIR/enque.sqlite3``)
  and the worker is started on it.

Either way the reply's ``OutboundEmail`` row is written by the hook listener on commit, its
``send_outbound_email`` task goes through the broker, and the worker sends it to the local
SMTP server and records it ``sent``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from enque import child_processes, deploy_commands, queues
from enque.celery import app as celery_app
from enque.testing import require_redis
from integrations.models import MailboxConnection, OutboundEmail, OutboundEmailStatus
from integrations.tests.smtp_server import smtp_server
from tickets.actors import Actor
from tickets.services import comment_create, ticket_create
from workspaces.models import Agent, Customer, Workspace

# The budget includes creating the test database, which a loaded machine makes slow.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
SEND_TIMEOUT = 30.0


def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "var" / "enque.sqlite3"


def database_url(tmp_path: Path) -> str:
    """DATABASE_URL of the test database for the worker; on SQLite "" (the worker's default
    file under ENQUE_VAR_DIR), after copying the test database there."""
    db = connection.settings_dict
    if settings.IS_POSTGRES:
        user = quote(db["USER"] or "", safe="")
        password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
        host = db["HOST"] or "localhost"
        return f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    path = sqlite_file(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    return ""


def worker_env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "enque.settings",
            "PYTHONUNBUFFERED": "1",
            "ENVIRONMENT": "development",
            "SECRET_KEY": settings.SECRET_KEY,
            "JWT_SECRET": settings.JWT_SECRET,
            # The mailbox's SMTP password was encrypted with this key.
            "DATABASE_ENCRYPTION_KEY": settings.DATABASE_ENCRYPTION_KEY,
            "DATABASE_ENCRYPTION_KEY_ID": settings.DATABASE_ENCRYPTION_KEY_ID,
            # The session's broker: an external Redis, or the embedded one's socket.
            "REDIS_URL": settings.REDIS_URL,
            "ENQUE_VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "MAIL_ALLOW_PRIVATE_HOSTS": "true",
            "SMTP_TIMEOUT": "10",
            "LOG_LEVEL": "info",
        }
    )
    if url:
        env["DATABASE_URL"] = url
    return env


def purge_mail_out() -> None:
    """Drop tasks other tests of this session left on the mail_out queue."""
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queues.MAIL_OUT)


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    output = log.read_text(errors="replace")[-6000:] if log.exists() else ""
    pytest.fail(f"{what} did not happen within {timeout} s; worker log:\n{output}")


@pytest.mark.django_db(transaction=True)
def test_a_reply_enqueued_on_commit_is_sent_by_a_real_worker(
    tmp_path: Path, workspace_a: Workspace, alice: Agent, customer_a: Customer
) -> None:
    require_redis()
    began = time.monotonic()
    with smtp_server(security="none") as server:
        mailbox = MailboxConnection.objects.create(
            workspace=workspace_a,
            provider="imap",
            email_address="support@acme.test",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
        )
        ticket = ticket_create(
            workspace=workspace_a,
            actor=Actor.for_customer(customer_a),
            subject="Printer on fire",
            customer=customer_a,
            body_text="Help!",
            channel="email",
            mailbox=mailbox,
        )
        purge_mail_out()

        def reply() -> OutboundEmail:
            # A real commit: the listener writes the row and enqueues its task on it.
            comment = comment_create(
                ticket=ticket, actor=Actor.for_agent(alice), body_text="On our way."
            )
            return OutboundEmail.objects.get(comment=comment)

        log = tmp_path / "worker.log"
        out: IO[bytes] = log.open("wb")
        process: subprocess.Popen[Any] | None = None
        try:
            row = None
            if not settings.IS_POSTGRES:
                row = reply()
                # Nobody consumes the queue yet: the task waits in the broker.
                assert row.status == OutboundEmailStatus.PENDING
            process = child_processes.spawn(
                deploy_commands.with_python(
                    deploy_commands.worker(queue_names=[queues.MAIL_OUT], concurrency=1)
                ),
                cwd=ROOT,
                env=worker_env(tmp_path, database_url(tmp_path)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            wait_until(
                lambda: " ready." in log.read_text(errors="replace") or process.poll() is not None,
                START_TIMEOUT,
                "the worker's start",
                log,
            )
            assert process.poll() is None, log.read_text(errors="replace")[-6000:]
            if row is None:
                row = reply()

            [received] = server.wait_for(1, timeout=SEND_TIMEOUT)
            assert received.parsed["Message-ID"] == f"<{row.message_id}>"
            assert received.recipients == ["carol@customer.test"]
            wait_until(
                lambda: worker_status(row.pk, tmp_path) == OutboundEmailStatus.SENT,
                SEND_TIMEOUT,
                "the row's move to sent",
                log,
            )
            time.sleep(0.5)
            assert len(server.messages) == 1
        finally:
            if process is not None:
                child_processes.stop([process], timeout=15)
            out.close()
    # A generous bound for a loaded CI machine; typically well under half of it.
    assert time.monotonic() - began < 60


def worker_status(pk: int, tmp_path: Path) -> str | None:
    """The row's status as the worker wrote it."""
    if settings.IS_POSTGRES:
        return OutboundEmail.objects.filter(pk=pk).values_list("status", flat=True).first()
    with sqlite3.connect(sqlite_file(tmp_path)) as db:
        found = db.execute(
            "SELECT status FROM integrations_outboundemail WHERE id = ?", (pk,)
        ).fetchone()
    return found[0] if found else None
