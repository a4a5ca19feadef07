"""Celery tasks of the mail channel's inbound side: thin wrappers over ``integrations.sync``.

Routed to the ``mail_sync`` queue by name (enque/queues.py). ``sync_due_mailboxes`` is the
beat job (enque/schedules.py); it and "Sync now" enqueue ``sync_mailbox_task`` through
``enqueue_sync``, which keeps at most one queued sync per mailbox: a slow worker does not
let beat pile up copies of the same job.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from integrations.models import MailboxConnection, SyncStatus
from integrations.sync import SyncOutcome, sync_mailbox

logger = logging.getLogger(__name__)

# A sync whose `retry_after` is longer than this waits for the next beat run instead.
MAX_RETRY_COUNTDOWN = 15 * 60


def queued_key(mailbox_id: int) -> str:
    return f"mailbox-sync-queued:{mailbox_id}"


def enqueue_sync(mailbox_id: int) -> bool:
    """Queue a sync of the mailbox unless one is queued already; True if queued now.

    Call it on commit. The marker expires after one interval, so a message the broker lost
    never blocks the mailbox for longer than that.
    """
    if not cache.add(queued_key(mailbox_id), 1, timeout=settings.EMAIL_SYNC_INTERVAL):
        return False
    try:
        sync_mailbox_task.delay(mailbox_id)
    except Exception:
        cache.delete(queued_key(mailbox_id))
        raise
    return True


@shared_task(bind=True, max_retries=3, acks_late=True)
def sync_mailbox_task(self: object, mailbox_id: int) -> str:
    """Sync one mailbox; a throttled source (Retry-After) is retried after its wait."""
    # Running now: a later "Sync now" or beat run may queue the next one.
    cache.delete(queued_key(mailbox_id))
    outcome: SyncOutcome = sync_mailbox(mailbox_id)
    if outcome.retryable and outcome.retry_after <= MAX_RETRY_COUNTDOWN:
        raise self.retry(countdown=max(1, int(outcome.retry_after)))  # type: ignore[attr-defined]
    return outcome.status


def _last_attempt(last_synced_at: datetime | None, last_error_at: datetime | None) -> datetime:
    times = [t for t in (last_synced_at, last_error_at) if t is not None]
    return max(times) if times else datetime.min.replace(tzinfo=UTC)


def due_mailbox_ids(now: datetime | None = None) -> list[int]:
    """Active mailboxes whose interval has passed since their last attempt.

    Mailboxes waiting for a reconnect, with sync disabled, or of an inactive workspace are
    left out. One query; the interval test is in Python because the interval is per
    mailbox (``EmailSyncConfig.interval_seconds``, else ``EMAIL_SYNC_INTERVAL``).
    """
    now = now or timezone.now()
    # Half a beat tick of slack: a mailbox synced just after the previous tick is due at
    # this one, not one tick later.
    slack = timedelta(seconds=beat_interval() / 2)
    rows = (
        MailboxConnection.objects.filter(is_active=True, workspace__is_active=True)
        .exclude(sync_status=SyncStatus.RECONNECT_NEEDED)
        .filter(Q(sync_config__isnull=True) | Q(sync_config__enabled=True))
        .order_by("pk")
        .values_list("pk", "last_synced_at", "last_error_at", "sync_config__interval_seconds")
    )
    due = []
    for pk, synced_at, error_at, interval in rows.iterator():
        every = timedelta(seconds=interval or settings.EMAIL_SYNC_INTERVAL)
        if _last_attempt(synced_at, error_at) + every <= now + slack:
            due.append(pk)
    return due


def beat_interval() -> int:
    """How often beat looks for due mailboxes: every minute, or EMAIL_SYNC_INTERVAL when
    shorter, so a per-mailbox interval is honoured to the minute."""
    return max(1, min(60, settings.EMAIL_SYNC_INTERVAL))


@shared_task(expires=55)
def sync_due_mailboxes() -> int:
    """Queue a sync for every due mailbox (see ``due_mailbox_ids``); returns how many."""
    queued = 0
    for mailbox_id in due_mailbox_ids():
        queued += enqueue_sync(mailbox_id)
    if queued:
        logger.info("queued %s mailbox sync(s)", queued)
    return queued
