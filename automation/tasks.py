"""Celery tasks of the automation app: thin wrappers that take ids and call a service.

The periodic ones are declared in ``enque.schedules``.
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.db import OperationalError

from automation import digests, engine, notifications, sla, webhooks

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    # Beat ticks every minute; a run still queued after that is superseded by the next one.
    expires=55,
)
def run_minutely() -> dict[str, int]:
    """SLA breaches and warnings first (time rules may look at them), then time rules,
    then webhook deliveries whose task was lost. Safe to run concurrently: every firing,
    breach and warning is claimed by a constraint or a compare-and-swap."""
    counts = sla.sla_check()
    counts["time_rules_fired"] = engine.run_time_rules()
    lost = webhooks.deliveries_lost()
    for delivery_id in lost:
        deliver_webhook.delay(delivery_id)
    counts["webhooks_requeued"] = len(lost)
    return counts


@shared_task(acks_late=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt; a failure schedules the next one with backoff (the delivery row holds
    the count, so a duplicated task does nothing: the row is claimed)."""
    retry_in = webhooks.delivery_attempt(delivery_id)
    if retry_in is not None:
        deliver_webhook.apply_async((delivery_id,), countdown=retry_in)


@shared_task(
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=60,
    retry_backoff_max=1800,
    max_retries=5,
)
def send_notification_email(agent_id: int, subject: str, body: str) -> bool:
    return notifications.send_email(agent_id, subject, body)


@shared_task(
    autoretry_for=(webhooks.WebhookFailed,),
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=4,
)
def post_to_teams(team_id: int, text: str) -> bool:
    try:
        return notifications.teams_send(team_id, text)
    except webhooks.WebhookRefused as exc:
        # A URL we may not call will not become callable by retrying.
        logger.warning("Teams post for team %s refused: %s", team_id, exc.message)
        return False


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=14 * 60,
)
def send_digests() -> dict[str, int]:
    return digests.digests_send()
