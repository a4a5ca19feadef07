"""Every periodic job, declared in one place.

Beat runs django-celery-beat's DatabaseScheduler, so the schedule lives in its tables;
``install_periodic_tasks`` writes this declaration there after every ``migrate`` (and
``manage.py serve`` start), so code stays the source of truth while admins can still pause
a job in the admin. Jobs named with our prefix that are no longer declared are disabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

PREFIX = "enque:"


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int
    description: str


def declared_jobs() -> list[PeriodicJob]:
    return [
        # Replies agents scheduled with "send later"; due time lives in the database, so a
        # one-minute tick (SCHEDULED_COMMENTS_INTERVAL) bounds the delay and nothing depends
        # on long countdown tasks.
        PeriodicJob(
            name="send-due-scheduled-comments",
            task="tickets.tasks.send_due_scheduled_comments",
            every_seconds=settings.SCHEDULED_COMMENTS_INTERVAL,
            description="Post scheduled replies whose time has come.",
        ),
        # SLA breaches and warnings, then time-based rules, then webhook deliveries whose
        # task was lost: rules promise minute resolution ("2 hours without a reply").
        PeriodicJob(
            name="automation-minutely",
            task="automation.tasks.run_minutely",
            every_seconds=60,
            description="Record SLA breaches and warnings, fire time rules, requeue webhooks.",
        ),
        # Digests go out from DIGEST_HOUR in each workspace's own zone; a quarter-hour tick
        # sends them within 15 minutes of it (a claim row makes each go out once).
        PeriodicJob(
            name="automation-digests",
            task="automation.tasks.send_digests",
            every_seconds=15 * 60,
            description="Send the daily outstanding-tickets and weekly summary emails.",
        ),
        # Mailbox sync (IMAP and Microsoft 365): each mailbox is synced when its interval
        # (EmailSyncConfig.interval_seconds, else EMAIL_SYNC_INTERVAL) has passed since its
        # last attempt. The tick is a minute (or EMAIL_SYNC_INTERVAL when shorter), so a
        # 3-minute interval is 3 minutes, not rounded up to the next tick.
        PeriodicJob(
            name="sync-due-mailboxes",
            task="integrations.tasks.sync_due_mailboxes",
            every_seconds=max(1, min(60, settings.EMAIL_SYNC_INTERVAL)),
            description="Queue a sync of every active mailbox whose interval has passed.",
        ),
        # Outbound mail: retries whose backoff has passed, sends whose task was lost, replies
        # a crash left without their email, and sends a dead worker left half done. Every
        # reply is first sent on commit; this tick bounds the delay of everything else.
        PeriodicJob(
            name="send-due-outbound-email",
            task="integrations.outbound.send_due_outbound",
            every_seconds=60,
            description="Send due and retried outbound email; recover stalled sends.",
        ),
        # The inbox counts read every delta row the triggers appended since the last fold
        # (tickets.counts); folding every 5 minutes keeps that to a few minutes' changes
        # per workspace, and drops the rows of deleted workspaces.
        PeriodicJob(
            name="compact-ticket-counts",
            task="tickets.tasks.compact_ticket_counts",
            every_seconds=5 * 60,
            description="Fold the inbox counts' delta rows into one row per key.",
        ),
        # Idempotency-Keys live 24 hours and refresh tokens two weeks; an hourly sweep keeps
        # both tables to about a day's (resp. two weeks') traffic.
        PeriodicJob(
            name="purge-expired-api-records",
            task="enque.tasks.purge_expired_api_records",
            every_seconds=60 * 60,
            description="Delete expired Idempotency-Keys and refresh-token records.",
        ),
    ]


def install_periodic_tasks() -> list[str]:
    """Create or update the declared jobs in the beat tables; returns their names."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    names = []
    for job in declared_jobs():
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=job.every_seconds, period=IntervalSchedule.SECONDS
        )
        name = PREFIX + job.name
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": job.task,
                "interval": interval,
                "crontab": None,
                "description": job.description,
            },
        )
        names.append(name)
    PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(name__in=names).update(
        enabled=False
    )
    return names


def install_after_migrate(sender: object, **kwargs: object) -> None:
    # post_migrate fires once per app; install when the beat tables' app has migrated.
    if getattr(sender, "label", None) != "django_celery_beat":
        return
    using = kwargs.get("using", "default")
    if using != "default" or not settings.CELERY_BEAT_SCHEDULER:
        return
    install_periodic_tasks()
