"""Sync one mailbox, whatever its provider, with its status kept for admins to see.

``sync_mailbox(mailbox_id)`` is what the Celery task, the beat job and "Sync now" run:

1. one sync at a time per mailbox, across processes and machines: a lock in the shared
   cache (Redis) taken with ``add`` and a TTL. Not a row lock: a sync runs for minutes and
   commits as it goes (the raw message first, then its ticket), which a transaction held
   open around it would prevent. The TTL frees the lock of a worker that died; a live sync
   extends it after every batch (``heartbeat``). A second sync meanwhile is skipped;
2. ``sync_status`` goes ``syncing`` → ``ok`` (``last_synced_at`` set, the last error
   cleared), or ``reconnect`` when the password or grant no longer works (the periodic sync
   then leaves the mailbox alone until an admin reconnects it), or ``error`` with the
   message and time, for a transient failure (retried next time) or anything unexpected
   (logged with its traceback);
3. a failure is this mailbox's only: it is recorded and returned, never raised, so a beat
   run or a worker goes on with the other mailboxes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone

from integrations.errors import (
    MailError,
    PermanentMailError,
    ReconnectNeeded,
    SyncInProgress,
    TransientMailError,
)
from integrations.models import MailboxConnection, MailboxProvider, SyncStatus

logger = logging.getLogger(__name__)

# Seconds a sync lock lives without a heartbeat: longer than any batch of messages takes.
LOCK_TTL = 10 * 60
MAX_ERROR_LENGTH = 2000


class SyncOutcomeStatus:
    OK = "ok"
    ERROR = "error"
    RECONNECT = "reconnect"
    # Another worker holds the lock; nothing was done.
    BUSY = "busy"
    # Inactive, deleted, or waiting for a reconnect: nothing was done.
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SyncOutcome:
    mailbox_id: int
    status: str
    fetched: int = 0
    error: str = ""
    # Transient failures: seconds the source asked us to wait, when it said.
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.status == SyncOutcomeStatus.ERROR and self.retry_after is not None


def lock_key(mailbox_id: int) -> str:
    return f"mailbox-sync-lock:{mailbox_id}"


@contextmanager
def mailbox_sync_lock(mailbox_id: int) -> Iterator[Callable[[], None]]:
    """Hold this mailbox's sync lock, or raise ``SyncInProgress``; yields the heartbeat."""
    key, token = lock_key(mailbox_id), uuid.uuid4().hex
    if not cache.add(key, token, timeout=LOCK_TTL):
        raise SyncInProgress("This mailbox is being synced right now.")

    def heartbeat() -> None:
        cache.touch(key, timeout=LOCK_TTL)

    try:
        yield heartbeat
    finally:
        # Only our own lock: if it expired and another sync took it, that one keeps it.
        if cache.get(key) == token:
            cache.delete(key)


def _source(mailbox: MailboxConnection) -> Callable[..., int]:
    if mailbox.provider == MailboxProvider.IMAP:
        from integrations.imap import sync_imap_mailbox

        return sync_imap_mailbox
    if mailbox.provider == MailboxProvider.MICROSOFT:
        # Imported here: the Microsoft client (MSAL, Graph) loads only where it is used.
        from integrations.microsoft.sync import sync_microsoft_mailbox

        return lambda mailbox, heartbeat=None: sync_microsoft_mailbox(mailbox)
    raise PermanentMailError(f"Unknown mailbox provider {mailbox.provider!r}.")


def _record(mailbox_id: int, **fields: object) -> None:
    MailboxConnection.objects.filter(pk=mailbox_id).update(updated_at=timezone.now(), **fields)


def sync_mailbox(mailbox_id: int) -> SyncOutcome:
    """Sync one mailbox now (see the module docstring); never raises for a mail failure."""
    mailbox = MailboxConnection.objects.select_related("workspace").filter(pk=mailbox_id).first()
    if mailbox is None or not mailbox.is_active or not mailbox.workspace.is_active:
        return SyncOutcome(mailbox_id, SyncOutcomeStatus.SKIPPED, error="Mailbox inactive.")
    if mailbox.sync_status == SyncStatus.RECONNECT_NEEDED:
        return SyncOutcome(
            mailbox_id, SyncOutcomeStatus.SKIPPED, error="The mailbox must be reconnected."
        )
    try:
        with mailbox_sync_lock(mailbox_id) as heartbeat:
            _record(mailbox_id, sync_status=SyncStatus.SYNCING)
            return _run(mailbox, heartbeat)
    except SyncInProgress as exc:
        return SyncOutcome(mailbox_id, SyncOutcomeStatus.BUSY, error=str(exc))


def _run(mailbox: MailboxConnection, heartbeat: Callable[[], None]) -> SyncOutcome:
    mailbox_id = mailbox.pk
    try:
        fetched = _source(mailbox)(mailbox, heartbeat=heartbeat)
    except ReconnectNeeded as exc:
        logger.warning("mailbox %s needs reconnecting: %s", mailbox_id, exc)
        return _failed(mailbox_id, SyncOutcomeStatus.RECONNECT, str(exc))
    except TransientMailError as exc:
        logger.warning("mailbox %s sync failed, will retry: %s", mailbox_id, exc)
        return _failed(mailbox_id, SyncOutcomeStatus.ERROR, str(exc), exc.retry_after)
    except MailError as exc:
        logger.warning("mailbox %s sync failed: %s", mailbox_id, exc)
        return _failed(mailbox_id, SyncOutcomeStatus.ERROR, str(exc))
    except Exception as exc:
        # A bug or an outage (database, storage) must not stop the other mailboxes' syncs;
        # the traceback goes to the log, the summary to the admin.
        logger.exception("mailbox %s sync crashed", mailbox_id)
        return _failed(
            mailbox_id, SyncOutcomeStatus.ERROR, f"Unexpected error: {type(exc).__name__}: {exc}"
        )
    now = timezone.now()
    _record(
        mailbox_id,
        sync_status=SyncStatus.OK,
        last_synced_at=now,
        last_error="",
        last_error_at=None,
    )
    logger.info("mailbox %s synced: %s new message(s)", mailbox_id, fetched)
    return SyncOutcome(mailbox_id, SyncOutcomeStatus.OK, fetched=fetched)


def _failed(
    mailbox_id: int, status: str, message: str, retry_after: float | None = None
) -> SyncOutcome:
    message = (message or "Unknown error.")[:MAX_ERROR_LENGTH]
    reconnect = status == SyncOutcomeStatus.RECONNECT
    _record(
        mailbox_id,
        sync_status=SyncStatus.RECONNECT_NEEDED if reconnect else SyncStatus.ERROR,
        last_error=message,
        last_error_at=timezone.now(),
    )
    return SyncOutcome(mailbox_id, status, error=message, retry_after=retry_after)
