"""IMAP in, against the local IMAP server (integrations/tests/imap_server.py), through
``integrations.sync.sync_mailbox`` as the worker runs it: first sync, incremental sync,
a UIDVALIDITY change, SSL and STARTTLS, a refused password beside a mailbox that keeps
syncing, the per-mailbox lock, a crash mid-batch, and the beat job's choice of mailboxes.

Workspace A's mailbox help@acme.test reads the server's INBOX as help@acme.test / s3cret.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from enque.celery import app as celery_app
from enque.testing import postgres_only
from integrations import imap, services, tasks
from integrations.errors import ReconnectNeeded, SyncInProgress
from integrations.imap import _uid_set
from integrations.inbound import pipeline
from integrations.models import (
    EmailSyncConfig,
    InboundEmail,
    InboundEmailStatus,
    MailboxConnection,
    SyncStatus,
)
from integrations.sync import SyncOutcomeStatus, mailbox_sync_lock, sync_mailbox
from integrations.tests.imap_server import ImapTestServer, parse_uid_set, raw_message
from tickets.models import Ticket
from tickets.tests.api_support import use_memory_storage
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

USER, PASSWORD = "help@acme.test", "s3cret"


@pytest.fixture(autouse=True)
def mail_settings(settings: Any) -> None:
    use_memory_storage(settings)
    # The test server listens on 127.0.0.1, which production refuses (SSRF).
    settings.MAIL_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def server(settings: Any) -> Iterator[ImapTestServer]:
    with ImapTestServer(users={USER: PASSWORD}) as imap:
        settings.MAIL_TLS_CA_FILE = imap.ca_file
        yield imap


MailboxMaker = Callable[..., MailboxConnection]


@pytest.fixture
def make_mailbox(alice: Agent) -> MailboxMaker:
    def make(
        imap: ImapTestServer,
        *,
        address: str = USER,
        password: str = PASSWORD,
        security: str = "none",
    ) -> MailboxConnection:
        return services.mailbox_create_imap(
            workspace=alice.workspace,
            actor=alice,
            email_address=address,
            imap_host=imap.host,
            imap_port=imap.port,
            imap_security=security,
            imap_username=USER,
            imap_password=password,
        )

    return make


def subjects() -> list[str]:
    return sorted(Ticket.objects.values_list("subject", flat=True))


def fetched_uid_sets(imap: ImapTestServer) -> list[str]:
    return [c.split()[2] for c in imap.commands if c.startswith("UID FETCH")]


def test_first_sync_imports_the_folder_without_marking_it_read(
    server: ImapTestServer, make_mailbox: MailboxMaker
) -> None:
    for n in range(3):
        server.folder().append(raw_message(subject=f"Printer {n}", body=f"Broken {n}"))
    mailbox = make_mailbox(server)

    outcome = sync_mailbox(mailbox.pk)

    assert (outcome.status, outcome.fetched) == (SyncOutcomeStatus.OK, 3)
    assert subjects() == ["Printer 0", "Printer 1", "Printer 2"]
    assert set(Ticket.objects.values_list("customer__email", flat=True)) == {"carol@customer.test"}
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.OK
    assert mailbox.last_synced_at is not None
    assert (mailbox.last_error, mailbox.last_error_at) == ("", None)
    config = EmailSyncConfig.objects.get(mailbox=mailbox)
    assert (config.imap_uidvalidity, config.imap_last_uid) == (1001, 3)
    assert sorted(InboundEmail.objects.values_list("provider_message_id", flat=True)) == [
        "1001:1",
        "1001:2",
        "1001:3",
    ]
    # Read-only and PEEK: the customer's mailbox keeps its unread messages unread.
    assert 'EXAMINE "INBOX"' in server.commands
    assert all("BODY.PEEK[]" in c for c in server.commands if c.startswith("UID FETCH"))
    assert not any(server.folder().seen(uid) for uid in (1, 2, 3))
    # The password never reaches the log of commands in clear (the server masks LOGIN).
    assert not any(PASSWORD in c for c in server.commands)


def test_an_incremental_sync_fetches_only_new_uids(
    server: ImapTestServer, make_mailbox: MailboxMaker
) -> None:
    server.folder().append(raw_message(subject="Old one"))
    server.folder().append(raw_message(subject="Old two"))
    mailbox = make_mailbox(server)
    assert sync_mailbox(mailbox.pk).fetched == 2

    # Nothing new: "UID 3:*" still answers UID 2 (RFC 3501's n:* rule); nothing is fetched.
    server.commands.clear()
    assert sync_mailbox(mailbox.pk).fetched == 0
    assert "UID SEARCH UID 3:*" in server.commands
    assert fetched_uid_sets(server) == []

    server.folder().append(raw_message(subject="New three"))
    server.folder().append(raw_message(subject="New four"))
    server.commands.clear()
    outcome = sync_mailbox(mailbox.pk)

    assert outcome.fetched == 2
    assert fetched_uid_sets(server) == ["3:4"]
    assert subjects() == ["New four", "New three", "Old one", "Old two"]
    assert EmailSyncConfig.objects.get(mailbox=mailbox).imap_last_uid == 4


def test_a_uidvalidity_change_refetches_without_duplicates(
    server: ImapTestServer, make_mailbox: MailboxMaker
) -> None:
    for n in range(3):
        server.folder().append(raw_message(subject=f"Before {n}"))
    mailbox = make_mailbox(server)
    sync_mailbox(mailbox.pk)

    # The server rebuilt the mailbox: new UIDVALIDITY, UIDs from 1 again; and one new mail.
    server.folder().renumber(2002)
    server.folder().append(raw_message(subject="After"))
    server.commands.clear()
    outcome = sync_mailbox(mailbox.pk)

    assert (outcome.status, outcome.fetched) == (SyncOutcomeStatus.OK, 1)
    assert "UID SEARCH UID 1:*" in server.commands
    assert subjects() == ["After", "Before 0", "Before 1", "Before 2"]
    assert InboundEmail.objects.count() == 4
    config = EmailSyncConfig.objects.get(mailbox=mailbox)
    assert (config.imap_uidvalidity, config.imap_last_uid) == (2002, 4)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_connections_verify_the_certificate(
    settings: Any, make_mailbox: MailboxMaker, security: str
) -> None:
    with ImapTestServer(users={USER: PASSWORD}, security=security) as imap:
        imap.folder().append(raw_message(subject=f"Over {security}"))
        mailbox = make_mailbox(imap, security=security)

        # Without the server's CA the certificate is refused, and the admin is told why.
        settings.MAIL_TLS_CA_FILE = ""
        outcome = sync_mailbox(mailbox.pk)
        assert outcome.status == SyncOutcomeStatus.ERROR
        assert "certificate" in outcome.error and "not trusted" in outcome.error
        assert not Ticket.objects.exists()

        settings.MAIL_TLS_CA_FILE = imap.ca_file
        outcome = sync_mailbox(mailbox.pk)

    assert (outcome.status, outcome.fetched) == (SyncOutcomeStatus.OK, 1)
    assert subjects() == [f"Over {security}"]
    if security == "starttls":
        # LOGIN only after the upgrade.
        assert imap.commands.index("STARTTLS") < imap.commands.index("LOGIN ***")
    mailbox.refresh_from_db()
    assert (mailbox.sync_status, mailbox.last_error) == (SyncStatus.OK, "")


def test_a_refused_password_needs_a_reconnect_while_another_mailbox_syncs(
    server: ImapTestServer, make_mailbox: MailboxMaker, alice: Agent, eager_tasks: None
) -> None:
    server.folder().append(raw_message(subject="Still arriving"))
    broken = make_mailbox(server, address="old@acme.test", password="expired")
    working = make_mailbox(server)

    assert tasks.sync_due_mailboxes() == 2

    broken.refresh_from_db()
    working.refresh_from_db()
    assert broken.sync_status == SyncStatus.RECONNECT_NEEDED
    assert "refused the login" in broken.last_error
    assert broken.last_error_at is not None and broken.last_synced_at is None
    assert working.sync_status == SyncStatus.OK
    assert subjects() == ["Still arriving"]
    # The beat leaves it alone until an admin reconnects it (even when it would be due).
    later = timezone.now() + timedelta(hours=1)
    assert tasks.due_mailbox_ids(later) == [working.pk]
    assert sync_mailbox(broken.pk).status == SyncOutcomeStatus.SKIPPED

    # The admin enters the right password: the error is cleared and the next sync works.
    services.mailbox_update(
        workspace=alice.workspace, actor=alice, mailbox=broken, imap_password=PASSWORD
    )
    broken.refresh_from_db()
    assert (broken.sync_status, broken.last_error) == (SyncStatus.IDLE, "")
    assert sync_mailbox(broken.pk).status == SyncOutcomeStatus.OK


def test_one_sync_at_a_time_per_mailbox(server: ImapTestServer, make_mailbox: MailboxMaker) -> None:
    server.folder().append(raw_message(subject="Once"))
    mailbox = make_mailbox(server)
    other = make_mailbox(server, address="other@acme.test")

    with mailbox_sync_lock(mailbox.pk):
        # Another worker's attempt meanwhile: skipped, without connecting or changing state.
        with pytest.raises(SyncInProgress), mailbox_sync_lock(mailbox.pk):
            pass
        outcome = sync_mailbox(mailbox.pk)
        assert outcome.status == SyncOutcomeStatus.BUSY
        assert server.commands == []
        mailbox.refresh_from_db()
        assert mailbox.sync_status == SyncStatus.IDLE
        # The lock is per mailbox.
        assert sync_mailbox(other.pk).status == SyncOutcomeStatus.OK

    # Released: the next sync runs.
    assert sync_mailbox(mailbox.pk).status == SyncOutcomeStatus.OK
    assert Ticket.objects.count() == 1


def test_a_crash_mid_batch_resumes_after_the_last_stored_batch(
    server: ImapTestServer, make_mailbox: MailboxMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch is ingested at once (pipeline.ingest_many): the UID moves on per batch.
    monkeypatch.setattr(imap, "FETCH_BATCH", 2)
    for n in range(4):
        server.folder().append(raw_message(subject=f"Message {n}"))
    mailbox = make_mailbox(server)
    real_ingest = pipeline.ingest_many
    batches = []

    def failing_ingest(mailbox: Any, messages: list[tuple[bytes, str]]) -> list[InboundEmail]:
        batches.append([provider_id for _, provider_id in messages])
        if len(batches) == 2:
            raise RuntimeError("storage went away")
        return real_ingest(mailbox, messages)

    monkeypatch.setattr(pipeline, "ingest_many", failing_ingest)
    outcome = sync_mailbox(mailbox.pk)

    assert outcome.status == SyncOutcomeStatus.ERROR
    assert outcome.error == "Unexpected error: RuntimeError: storage went away"
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.ERROR
    assert mailbox.last_error == outcome.error
    assert EmailSyncConfig.objects.get(mailbox=mailbox).imap_last_uid == 2

    monkeypatch.setattr(pipeline, "ingest_many", real_ingest)
    server.commands.clear()
    outcome = sync_mailbox(mailbox.pk)
    assert (outcome.status, outcome.fetched) == (SyncOutcomeStatus.OK, 2)
    assert fetched_uid_sets(server) == ["3:4"]
    assert subjects() == [f"Message {n}" for n in range(4)]
    mailbox.refresh_from_db()
    assert (mailbox.sync_status, mailbox.last_error, mailbox.last_error_at) == (
        SyncStatus.OK,
        "",
        None,
    )


def test_a_batch_stored_but_never_processed_is_kept_once_for_the_takeover(
    server: ImapTestServer, make_mailbox: MailboxMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        server.folder().append(raw_message(subject=f"Message {n}"))
    mailbox = make_mailbox(server)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker killed")

    # The raw rows commit first; the process dies before processing them.
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "_process_page", crash)
        outcome = sync_mailbox(mailbox.pk)
    assert outcome.status == SyncOutcomeStatus.ERROR
    assert InboundEmail.objects.filter(mailbox=mailbox).count() == 3
    assert EmailSyncConfig.objects.get(mailbox=mailbox).imap_last_uid == 0

    outcome = sync_mailbox(mailbox.pk)

    # Fetched again, stored once: the rows stay claimed by the process that died...
    assert (outcome.status, outcome.fetched) == (SyncOutcomeStatus.OK, 0)
    rows = list(InboundEmail.objects.filter(mailbox=mailbox).order_by("pk"))
    assert [row.status for row in rows] == [InboundEmailStatus.PROCESSING] * 3
    assert EmailSyncConfig.objects.get(mailbox=mailbox).imap_last_uid == 3
    # ...until reprocessing takes them over as abandoned, from the stored raw messages.
    InboundEmail.objects.filter(mailbox=mailbox).update(
        updated_at=timezone.now() - pipeline.STALE_PROCESSING_AFTER - timedelta(minutes=1)
    )
    for row in rows:
        pipeline.reprocess_inbound_email(row)
    assert subjects() == [f"Message {n}" for n in range(3)]


def test_an_unreachable_server_is_an_error_retried_at_the_next_interval(
    make_mailbox: MailboxMaker, settings: Any
) -> None:
    with ImapTestServer(users={USER: PASSWORD}) as imap:
        mailbox = make_mailbox(imap)
    # The server is gone: connection refused.
    outcome = sync_mailbox(mailbox.pk)

    assert outcome.status == SyncOutcomeStatus.ERROR
    assert "Cannot connect" in outcome.error
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.ERROR
    now = timezone.now()
    assert tasks.due_mailbox_ids(now) == []
    assert tasks.due_mailbox_ids(now + timedelta(seconds=settings.EMAIL_SYNC_INTERVAL)) == [
        mailbox.pk
    ]


def test_private_hosts_are_refused_unless_allowed(
    server: ImapTestServer, make_mailbox: MailboxMaker, settings: Any
) -> None:
    mailbox = make_mailbox(server)
    settings.MAIL_ALLOW_PRIVATE_HOSTS = False

    outcome = sync_mailbox(mailbox.pk)

    assert outcome.status == SyncOutcomeStatus.ERROR
    assert "private, loopback or link-local" in outcome.error
    assert server.commands == []


def test_the_beat_job_picks_only_due_mailboxes(
    server: ImapTestServer, make_mailbox: MailboxMaker, settings: Any, eager_tasks: None
) -> None:
    settings.EMAIL_SYNC_INTERVAL = 180
    now = timezone.now()
    never = make_mailbox(server, address="never@acme.test")
    fresh = make_mailbox(server, address="fresh@acme.test")
    stale = make_mailbox(server, address="stale@acme.test")
    slow = make_mailbox(server, address="slow@acme.test")
    inactive = make_mailbox(server, address="inactive@acme.test")
    disabled = make_mailbox(server, address="disabled@acme.test")
    reconnect = make_mailbox(server, address="reconnect@acme.test")
    MailboxConnection.objects.filter(pk=fresh.pk).update(last_synced_at=now - timedelta(minutes=1))
    MailboxConnection.objects.filter(pk=stale.pk).update(last_synced_at=now - timedelta(minutes=4))
    # Its own interval, an hour: synced 10 minutes ago is not due.
    MailboxConnection.objects.filter(pk=slow.pk).update(last_synced_at=now - timedelta(minutes=10))
    EmailSyncConfig.objects.filter(mailbox=slow).update(interval_seconds=3600)
    MailboxConnection.objects.filter(pk=inactive.pk).update(is_active=False)
    EmailSyncConfig.objects.filter(mailbox=disabled).update(enabled=False)
    MailboxConnection.objects.filter(pk=reconnect.pk).update(
        sync_status=SyncStatus.RECONNECT_NEEDED
    )

    assert tasks.due_mailbox_ids(now) == [never.pk, stale.pk]
    assert tasks.sync_due_mailboxes() == 2
    synced = MailboxConnection.objects.filter(sync_status=SyncStatus.OK)
    assert set(synced.values_list("pk", flat=True)) == {never.pk, stale.pk}
    # Just synced: nothing is due now.
    assert tasks.due_mailbox_ids() == []


def test_a_queued_sync_is_not_queued_twice(
    server: ImapTestServer, make_mailbox: MailboxMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = make_mailbox(server)
    sent: list[int] = []
    monkeypatch.setattr(tasks.sync_mailbox_task, "delay", lambda pk: sent.append(pk))

    assert tasks.enqueue_sync(mailbox.pk) is True
    assert tasks.enqueue_sync(mailbox.pk) is False
    assert sent == [mailbox.pk]
    # The worker takes it: the marker goes, so the next request queues again.
    assert tasks.sync_mailbox_task.run(mailbox.pk) == SyncOutcomeStatus.OK
    assert tasks.enqueue_sync(mailbox.pk) is True
    assert sent == [mailbox.pk, mailbox.pk]


def test_microsoft_mailboxes_sync_through_graph_and_can_need_a_reconnect(
    alice: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.microsoft import sync as microsoft_sync

    mailbox = MailboxConnection.objects.create(
        workspace=alice.workspace, provider="microsoft", email_address="m365@acme.test"
    )
    seen: list[int] = []

    def revoked(box: MailboxConnection) -> int:
        seen.append(box.pk)
        raise ReconnectNeeded("The Microsoft 365 grant was revoked.")

    monkeypatch.setattr(microsoft_sync, "sync_microsoft_mailbox", revoked)
    outcome = sync_mailbox(mailbox.pk)

    assert seen == [mailbox.pk]
    assert outcome.status == SyncOutcomeStatus.RECONNECT
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.RECONNECT_NEEDED
    assert mailbox.last_error == "The Microsoft 365 grant was revoked."


def test_uid_sets() -> None:
    assert _uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert _uid_set([5]) == "5"
    # The server's reading of "n:*" past the end: the last message (RFC 3501 6.4.8).
    assert parse_uid_set("9:*", 4) == {4, 5, 6, 7, 8, 9}
    assert parse_uid_set("2:3,7", 10) == {2, 3, 7}


def test_the_admin_sync_now_action(
    admin_client: Any,
    alice: Agent,
    server: ImapTestServer,
    make_mailbox: MailboxMaker,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.urls import reverse

    ready = make_mailbox(server)
    waiting = make_mailbox(server, address="waiting@acme.test")
    MailboxConnection.objects.filter(pk=waiting.pk).update(sync_status=SyncStatus.RECONNECT_NEEDED)
    sent: list[int] = []
    monkeypatch.setattr(tasks.sync_mailbox_task, "delay", lambda pk: sent.append(pk))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:integrations_mailboxconnection_changelist"),
            {"action": "sync_now", "_selected_action": [ready.pk, waiting.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert sent == [ready.pk]
    assert b"Queued a sync of 1 mailbox(es). Skipped 1" in response.content


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_syncing_one_mailbox_at_once(
    server: ImapTestServer, make_mailbox: MailboxMaker
) -> None:
    for n in range(3):
        server.folder().append(raw_message(subject=f"Concurrent {n}"))
    mailbox = make_mailbox(server)
    # The first sync holds the lock while the server takes its time to open the folder.
    server.select_delay = 1.0
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait()
            outcomes.append(sync_mailbox(mailbox.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [SyncOutcomeStatus.BUSY, SyncOutcomeStatus.OK]
    assert server.commands.count('EXAMINE "INBOX"') == 1
    assert subjects() == [f"Concurrent {n}" for n in range(3)]
    assert InboundEmail.objects.count() == 3


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_queued_sync(
    server: ImapTestServer, make_mailbox: MailboxMaker
) -> None:
    """The task through the Redis broker to a Celery worker (in a thread of this process,
    consuming the mail_sync queue), as "Sync now" and the beat job send it."""
    from celery.contrib.testing.worker import start_worker

    from enque import queues

    server.folder().append(raw_message(subject="Through the broker"))
    mailbox = make_mailbox(server)
    assert not celery_app.conf.task_always_eager
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        queues=[queues.MAIL_SYNC],
        shutdown_timeout=30,
    ):
        assert tasks.enqueue_sync(mailbox.pk) is True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            mailbox.refresh_from_db()
            if mailbox.sync_status == SyncStatus.OK:
                break
            time.sleep(0.2)

    assert mailbox.sync_status == SyncStatus.OK, mailbox.last_error
    assert subjects() == ["Through the broker"]
