"""Celery tasks of the project package: housekeeping of the API's own records."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from enque.api import idempotency


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5, expires=3000)
def purge_expired_api_records() -> int:
    """Delete Idempotency-Keys past their 24 hours and refresh-token records past their
    expiry (their blacklist rows go with them: an expired token is refused anyway)."""
    now = timezone.now()
    keys = idempotency.purge_expired(now=now)
    tokens, _ = OutstandingToken.objects.filter(expires_at__lte=now).delete()
    return keys + tokens
