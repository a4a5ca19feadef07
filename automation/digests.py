"""Digest emails, as the original service sent them: every morning an agent's outstanding
tickets, every Monday a summary of the week before.

``digests_send`` runs from beat every quarter hour. For each active workspace it looks at
the local time in the workspace's zone: from ``DIGEST_HOUR`` (default 8:00) on, each agent
who wants the digest by email (``NotificationPreference``, default yes) and has not had
today's (this week's) gets it. ``DigestDelivery`` has one row per agent, kind and period
under a unique constraint, inserted *before* sending: that insert is the claim, so however
many ticks and workers run, a digest goes out once. A send that fails removes the claim
(the next tick tries again); a digest with nothing in it is recorded as skipped.
"""

from __future__ import annotations

import logging
import smtplib
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from automation.models import DigestDelivery, DigestStatus, NotificationKind
from automation.notifications import preferences_of
from tickets.models import ACTIVE_STATUSES, Comment, Ticket, TicketEvent, TicketEventKind
from workspaces.models import Agent, Workspace

logger = logging.getLogger(__name__)

MAX_LISTED = 25


def digest_hour() -> int:
    return int(getattr(settings, "DIGEST_HOUR", 8))


def _zone(workspace: Workspace) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(workspace.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def daily_text(agent: Agent, day: date, now: datetime) -> tuple[str, str] | None:
    """The agent's outstanding tickets: (subject, body), or None when there are none."""
    tickets = Ticket.objects.filter(
        workspace_id=agent.workspace_id,
        assignee=agent,
        status__in=ACTIVE_STATUSES,
        deleted_at__isnull=True,
    )
    by_status = dict(tickets.values_list("status").annotate(n=Count("pk")).order_by())
    total = sum(by_status.values())
    if not total:
        return None
    overdue = tickets.filter(sla_due_at__lt=now, resolved_at__isnull=True).count()
    lines = [
        f"Good morning {agent.name},",
        "",
        f"You have {total} outstanding ticket(s): "
        + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())),
    ]
    if overdue:
        lines.append(f"{overdue} of them are past their SLA due time.")
    lines.append("")
    for ticket in tickets.order_by("sla_due_at", "-updated_at")[:MAX_LISTED]:
        due = f" (due {ticket.sla_due_at:%Y-%m-%d %H:%M} UTC)" if ticket.sla_due_at else ""
        lines.append(f"#{ticket.number} [{ticket.status}] {ticket.subject}{due}")
        lines.append(f"  {settings.APP_BASE_URL}/tickets/{ticket.number}")
    if total > MAX_LISTED:
        lines.append(f"... and {total - MAX_LISTED} more.")
    subject = f"Your outstanding tickets for {day:%A %d %B}: {total}"
    return subject, "\n".join(lines)


def weekly_text(agent: Agent, week_start: date, tz: zoneinfo.ZoneInfo) -> tuple[str, str] | None:
    """The week before ``week_start`` (a Monday) in the workspace and for the agent."""
    end = datetime.combine(week_start, time(0), tzinfo=tz)
    start = end - timedelta(days=7)
    ws = agent.workspace_id
    tickets = Ticket.objects.filter(workspace_id=ws, deleted_at__isnull=True)
    created = tickets.filter(created_at__gte=start, created_at__lt=end).count()
    resolved = tickets.filter(resolved_at__gte=start, resolved_at__lt=end).count()
    mine_resolved = tickets.filter(
        assignee=agent, resolved_at__gte=start, resolved_at__lt=end
    ).count()
    replies = Comment.objects.filter(
        workspace_id=ws,
        author_agent=agent,
        is_internal=False,
        created_at__gte=start,
        created_at__lt=end,
    ).count()
    breaches = TicketEvent.objects.filter(
        workspace_id=ws,
        kind=TicketEventKind.SLA_BREACHED,
        created_at__gte=start,
        created_at__lt=end,
    ).count()
    open_mine = tickets.filter(assignee=agent, status__in=ACTIVE_STATUSES).count()
    if not any((created, resolved, mine_resolved, replies, breaches, open_mine)):
        return None
    last_day = week_start - timedelta(days=1)
    lines = [
        f"Hello {agent.name}, here is the week of {start.date():%d %B} to {last_day:%d %B}.",
        "",
        "The workspace:",
        f"  {created} new ticket(s), {resolved} resolved, {breaches} SLA breach(es).",
        "You:",
        f"  {replies} repl(y/ies) sent, {mine_resolved} of your tickets resolved, "
        f"{open_mine} still open.",
        "",
        f"{settings.APP_BASE_URL}/",
    ]
    return f"Your week in review: {created} new, {resolved} resolved", "\n".join(lines)


def _deliver(
    agent: Agent,
    kind: str,
    period: date,
    compose: Callable[[], tuple[str, str] | None],
) -> str | None:
    """Claim, compose and send one digest; returns its status, or None if already done."""
    try:
        with transaction.atomic():
            claim = DigestDelivery.objects.create(
                workspace_id=agent.workspace_id, agent=agent, kind=kind, period_start=period
            )
    except IntegrityError:
        return None
    content = compose()
    if content is None:
        DigestDelivery.objects.filter(pk=claim.pk).update(
            status=DigestStatus.SKIPPED, updated_at=timezone.now()
        )
        return DigestStatus.SKIPPED
    subject, body = content
    try:
        send_mail(subject, body, None, [agent.user.email])
    except (smtplib.SMTPException, OSError):
        logger.exception("digest %s for agent %s could not be sent", kind, agent.pk)
        claim.delete()
        return None
    now = timezone.now()
    DigestDelivery.objects.filter(pk=claim.pk).update(
        status=DigestStatus.SENT, sent_at=now, updated_at=now
    )
    return DigestStatus.SENT


def digests_send(*, now: datetime | None = None) -> dict[str, int]:
    """Send the digests that are due now in every active workspace; returns counts."""
    now = now or timezone.now()
    counts = {"sent": 0, "skipped": 0}
    for workspace in Workspace.objects.filter(is_active=True).order_by("pk"):
        tz = _zone(workspace)
        local = now.astimezone(tz)
        if local.hour < digest_hour():
            continue
        today = local.date()
        monday = today - timedelta(days=today.weekday())
        agents = list(
            Agent.objects.filter(workspace=workspace, is_active=True, user__is_active=True)
            .select_related("user")
            .order_by("pk")
        )
        if not agents:
            continue
        jobs = (
            (NotificationKind.DAILY_DIGEST, today, partial(daily_text, day=today, now=now)),
            (
                NotificationKind.WEEKLY_DIGEST,
                monday,
                partial(weekly_text, week_start=monday, tz=tz),
            ),
        )
        for kind, period, compose in jobs:
            done = set(
                DigestDelivery.objects.filter(
                    workspace=workspace, kind=kind, period_start=period
                ).values_list("agent_id", flat=True)
            )
            wanted = preferences_of([a.pk for a in agents if a.pk not in done], kind)
            for agent in agents:
                if agent.pk in done or not wanted[agent.pk][1]:
                    continue
                status = _deliver(agent, kind, period, lambda a=agent, c=compose: c(a))
                if status:
                    counts[status] += 1
    return counts
