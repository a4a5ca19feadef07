"""Celery tasks of the tickets app: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from tickets import counts
from tickets.services import scheduled_comments_send_due


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    # Beat ticks every minute; a run still queued after that is superseded by the next one.
    expires=55,
)
def send_due_scheduled_comments() -> int:
    """Post every due scheduled reply; safe to run concurrently (rows are claimed)."""
    return scheduled_comments_send_due()


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=3,
    # A run still queued when the next tick comes is superseded by it.
    expires=4 * 60,
)
def compact_ticket_counts() -> int:
    """Fold the inbox counts' delta rows (tickets.counts); safe to run concurrently."""
    return counts.compact_ticket_counts()
