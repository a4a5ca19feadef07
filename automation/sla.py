"""SLA clocks: which policy applies to a ticket, its due times, pauses, breaches, warnings.

Policy. The first active ``SLAPolicy`` (by position) whose narrowing fits the ticket — its
customer, company and category, each only if set — and that has a target for the ticket's
priority. Targets are minutes of the policy's business hours (none: calendar time).

Due times. ``first_response_due_at`` runs from creation until the first agent reply (only
for tickets a customer opened); ``sla_due_at`` (resolution) until the ticket is resolved.
Both are ``created_at`` plus the target plus the business time the clock was stopped::

    due = add_business_seconds(created_at, target * 60 + paused_seconds, schedule)

so a change of priority or policy recomputes them from scratch, and a pause pushes them
back by exactly the open time it lasted. The clock stops while a ticket is pending
(waiting on the customer: its running due times are cleared, the API shows the time left
as frozen) and while it is resolved or closed (due times kept, for reports); it restarts
when the ticket is reopened. A met target's due time is frozen.

``sla_refresh`` (called by the hooks listener on creation and on every change of
priority, category, customer, company or status) keeps ``Ticket.first_response_due_at``
and ``sla_due_at`` true; ``sla_check`` (every minute, from beat) records each breach once —
a ``sla_breached`` history row and a ``ticket.sla_breached`` hook event — and warns the
assignee (else the team) ``SLA_WARNING_MINUTES`` before a due time, once per target.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from automation.business_hours import (
    Schedule,
    add_business_seconds,
    business_seconds_between,
)
from automation.models import BusinessHours, SLAPolicy, SLATarget, TicketSLA
from tickets import hooks
from tickets.actors import Actor
from tickets.models import ActorType, Ticket, TicketEvent, TicketEventKind, TicketStatus
from workspaces.models import Agent

logger = logging.getLogger(__name__)

# The clock is stopped in these statuses; in PENDING its running due times are hidden.
STOPPED = (TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED)
RUNNING = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)
# A ticket change touching one of these may move the due times.
SLA_FIELDS = frozenset({"priority", "category", "customer", "company", "status"})
FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
BATCH = 500


def warning_minutes() -> int:
    return int(getattr(settings, "SLA_WARNING_MINUTES", 30))


# --- Policies ---------------------------------------------------------------------------------


def _hours_prefetch(prefix: str = "") -> list[Any]:
    return [f"{prefix}slots", f"{prefix}holidays"]


def policies_of(workspace_id: int) -> list[SLAPolicy]:
    """The workspace's active policies in order, with targets and business hours: four
    queries (policies with their business hours, targets, slots, holidays)."""
    return list(
        SLAPolicy.objects.for_workspace(workspace_id)
        .filter(is_active=True)
        .select_related("business_hours")
        .prefetch_related(
            Prefetch("targets", queryset=SLATarget.objects.all()),
            *_hours_prefetch("business_hours__"),
        )
        .order_by("position", "id")
    )


def select_policy(
    ticket: Ticket, policies: list[SLAPolicy]
) -> tuple[SLAPolicy | None, SLATarget | None]:
    for policy in policies:
        if policy.customer_id and policy.customer_id != ticket.customer_id:
            continue
        if policy.company_id and policy.company_id != ticket.company_id:
            continue
        if policy.category_id and policy.category_id != ticket.category_id:
            continue
        target = next((t for t in policy.targets.all() if t.priority == ticket.priority), None)
        if target is not None:
            return policy, target
    return None, None


def schedule_of(policy: SLAPolicy | None) -> Schedule | None:
    if policy is None or policy.business_hours is None:
        return None
    return Schedule.from_model(policy.business_hours)


def default_schedule(workspace_id: int) -> Schedule | None:
    """The workspace's default business hours (conditions' ``business_hours``)."""
    hours = (
        BusinessHours.objects.for_workspace(workspace_id)
        .filter(is_default=True)
        .prefetch_related(*_hours_prefetch())
        .first()
    )
    return Schedule.from_model(hours) if hours else None


def due_at(
    start: datetime, minutes: int | None, paused_seconds: int, schedule: Schedule | None
) -> datetime | None:
    if minutes is None:
        return None
    try:
        return add_business_seconds(start, minutes * 60 + paused_seconds, schedule)
    except ValueError:
        logger.warning("SLA: a schedule without opening time within three years")
        return None


# --- Keeping due times true -------------------------------------------------------------------


def _state_for(ticket: Ticket) -> TicketSLA:
    state = TicketSLA.objects.select_for_update().filter(ticket=ticket).first()
    if state is None:
        try:
            with transaction.atomic():
                state = TicketSLA.objects.create(workspace_id=ticket.workspace_id, ticket=ticket)
        except IntegrityError:
            state = TicketSLA.objects.select_for_update().get(ticket=ticket)
    return state


def sla_refresh(*, ticket_id: int, workspace_id: int, now: datetime | None = None) -> Any:
    """Re-derive the ticket's policy, pause state and due times (idempotent).

    Locks the ticket row, like the ticket services, so it serialises with their changes.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update()
            .filter(pk=ticket_id, workspace_id=workspace_id, deleted_at__isnull=True)
            .first()
        )
        if ticket is None:
            return None
        policies = policies_of(workspace_id)
        if (
            not policies
            and ticket.first_response_due_at is None
            and ticket.sla_due_at is None
            and not TicketSLA.objects.filter(ticket=ticket).exists()
        ):
            # No SLA in this workspace and none on the ticket: nothing to keep true.
            return None
        state = _state_for(ticket)
        policy, target = select_policy(ticket, policies)
        schedule = schedule_of(policy)
        state.policy = policy
        state.first_response_minutes = target.first_response_minutes if target else None
        state.resolution_minutes = target.resolution_minutes if target else None

        stopped = ticket.status in STOPPED
        if stopped and state.paused_at is None:
            state.paused_at = now
        elif not stopped and state.paused_at is not None:
            state.paused_seconds += business_seconds_between(state.paused_at, now, schedule)
            state.paused_at = None

        first_due, resolution_due = ticket.first_response_due_at, ticket.sla_due_at
        first_running = ticket.first_response_at is None and ticket.last_customer_reply_at
        resolution_running = ticket.resolved_at is None
        if ticket.status == TicketStatus.PENDING:
            # Waiting on the customer: no due time runs.
            if first_running:
                first_due = None
            if resolution_running:
                resolution_due = None
        elif ticket.status in RUNNING:
            if first_running:
                first_due = due_at(
                    ticket.created_at, state.first_response_minutes, state.paused_seconds, schedule
                )
            elif ticket.first_response_at is None:
                first_due = None
            resolution_due = due_at(
                ticket.created_at, state.resolution_minutes, state.paused_seconds, schedule
            )
        state.save()
        if (first_due, resolution_due) != (ticket.first_response_due_at, ticket.sla_due_at):
            # A plain UPDATE: due times are derived data, not a change anyone made, so
            # neither updated_at (time rules count from it) nor the history moves.
            Ticket.objects.filter(pk=ticket.pk).update(
                first_response_due_at=first_due, sla_due_at=resolution_due
            )
            ticket.first_response_due_at, ticket.sla_due_at = first_due, resolution_due
    return state


def on_ticket_change(change: hooks.TicketChange) -> None:
    """The hooks listener: due times follow the changes that move them."""
    if (
        change.type == "ticket.created"
        and not SLAPolicy.objects.for_workspace(change.workspace_id).filter(is_active=True).exists()
    ):
        # A new ticket has no due times and no SLA row yet, so with no active policy there
        # is nothing to keep true: one read instead of a locking transaction (every mail
        # that opens a ticket comes through here).
        return
    if change.type in ("ticket.created", "ticket.merged") or (
        change.type == "ticket.updated" and SLA_FIELDS & set(change.data.get("changes", {}))
    ):
        sla_refresh(ticket_id=change.ticket_id, workspace_id=change.workspace_id)


# --- Breaches and warnings (every minute) -----------------------------------------------------


def _open_tickets() -> Any:
    return Ticket.objects.filter(
        deleted_at__isnull=True, merged_into__isnull=True, status__in=RUNNING
    )


def _due_field(target: str) -> str:
    return "first_response_due_at" if target == FIRST_RESPONSE else "sla_due_at"


def _running(target: str) -> Q:
    if target == FIRST_RESPONSE:
        return Q(first_response_at__isnull=True)
    return Q(resolved_at__isnull=True)


def breach_record(*, ticket: Ticket, target: str, now: datetime) -> bool:
    """Record the breach of ``target`` once (a compare-and-swap on the ticket's SLA row):
    a ``sla_breached`` history row and a ``ticket.sla_breached`` event after commit."""
    due = getattr(ticket, _due_field(target))
    with transaction.atomic():
        state = _state_for(ticket)
        marked = TicketSLA.objects.filter(
            pk=state.pk, **{f"{target}_breached_at__isnull": True}
        ).update(**{f"{target}_breached_at": now, "updated_at": now})
        if not marked:
            return False
        TicketEvent.objects.create(
            workspace_id=ticket.workspace_id,
            ticket=ticket,
            kind=TicketEventKind.SLA_BREACHED,
            actor_type=ActorType.SYSTEM,
            field=_due_field(target),
            new_value=due.isoformat() if due else None,
            data={"target": target, "policy": state.policy_id},
            created_at=now,
        )
        hooks.emit(
            hooks.TicketChange(
                type="ticket.sla_breached",
                workspace_id=ticket.workspace_id,
                ticket_id=ticket.pk,
                ticket_number=ticket.number,
                actor=Actor.system().as_payload(),
                data={"target": target, "due_at": due.isoformat() if due else None},
            )
        )
    return True


def warning_send(*, ticket: Ticket, target: str, now: datetime) -> bool:
    """Warn once that ``target`` is due soon: the assignee, else the team's agents, in app
    and by email as they chose, and the team's Teams channel."""
    from automation import notifications
    from automation.models import NotificationKind

    due = getattr(ticket, _due_field(target))
    with transaction.atomic():
        state = _state_for(ticket)
        marked = TicketSLA.objects.filter(
            pk=state.pk, **{f"{target}_warned_at__isnull": True}
        ).update(**{f"{target}_warned_at": now, "updated_at": now})
        if not marked:
            return False
        minutes = max(0, int((due - now).total_seconds() // 60)) if due else 0
        what = "first response" if target == FIRST_RESPONSE else "resolution"
        message = f"The {what} of #{ticket.number} is due in {minutes} min: {ticket.subject}"
        if ticket.assignee_id:
            recipients = list(Agent.objects.filter(pk=ticket.assignee_id, is_active=True))
        elif ticket.team_id:
            recipients = notifications.team_members(ticket.team_id, ticket.workspace_id)
        else:
            recipients = []
        notifications.notify(
            recipients=recipients,
            kind=NotificationKind.SLA_WARNING,
            ticket=ticket,
            message=message,
            data={"target": target, "due_at": due.isoformat() if due else None},
        )
        notifications.post_to_team(ticket.team_id, message)
    return True


def sla_check(*, now: datetime | None = None) -> dict[str, int]:
    """Record due breaches and send due warnings, across all workspaces; returns counts.

    Each query reads the partial index on due times; each ticket is marked with a
    compare-and-swap, so overlapping runs record nothing twice.
    """
    now = now or timezone.now()
    soon = now + timedelta(minutes=warning_minutes())
    counts = {"breached": 0, "warned": 0}
    for target in (FIRST_RESPONSE, RESOLUTION):
        due = _due_field(target)
        breached = (
            _open_tickets()
            .filter(_running(target), **{f"{due}__lte": now})
            .exclude(**{f"sla__{target}_breached_at__isnull": False})
            .order_by(due, "pk")[:BATCH]
        )
        for ticket in breached:
            counts["breached"] += breach_record(ticket=ticket, target=target, now=now)
        warned = (
            _open_tickets()
            .filter(_running(target), **{f"{due}__gt": now, f"{due}__lte": soon})
            .exclude(**{f"sla__{target}_warned_at__isnull": False})
            .order_by(due, "pk")[:BATCH]
        )
        for ticket in warned:
            counts["warned"] += warning_send(ticket=ticket, target=target, now=now)
    return counts


# --- Time left, for the API -------------------------------------------------------------------


def _target_status(
    ticket: Ticket,
    state: TicketSLA | None,
    target: str,
    schedule: Schedule | None,
    now: datetime,
) -> dict[str, Any]:
    minutes = getattr(state, f"{target}_minutes", None) if state else None
    due = getattr(ticket, _due_field(target))
    met_at = ticket.first_response_at if target == FIRST_RESPONSE else ticket.resolved_at
    breached_at = getattr(state, f"{target}_breached_at", None) if state else None
    result: dict[str, Any] = {
        "target_minutes": minutes,
        "due_at": due,
        "met_at": met_at,
        "breached": bool(breached_at) or bool(due and (met_at or now) > due),
        "seconds_left": None,
        "business_seconds_left": None,
    }
    if minutes is None or met_at is not None:
        return result
    if state and state.paused_at is not None:
        # Frozen: the open time that was left when the clock stopped.
        used = business_seconds_between(ticket.created_at, state.paused_at, schedule)
        result["business_seconds_left"] = minutes * 60 + state.paused_seconds - used
        return result
    if due is not None:
        result["seconds_left"] = int((due - now).total_seconds())
        if due >= now:
            result["business_seconds_left"] = business_seconds_between(now, due, schedule)
        else:
            result["business_seconds_left"] = -business_seconds_between(due, now, schedule)
    return result


def sla_status(ticket: Ticket, *, now: datetime | None = None) -> dict[str, Any]:
    """The ticket's SLA as the API shows it: policy, pause, and per target the due time,
    whether it was met or breached, and the time left (wall clock and business time)."""
    now = now or timezone.now()
    state = (
        TicketSLA.objects.filter(ticket=ticket)
        .select_related("policy__business_hours")
        .prefetch_related(*_hours_prefetch("policy__business_hours__"))
        .first()
    )
    policy = state.policy if state else None
    schedule = schedule_of(policy)
    return {
        "ticket": ticket.number,
        "policy": {"id": policy.pk, "name": policy.name} if policy else None,
        "paused": bool(state and state.paused_at),
        "paused_seconds": state.paused_seconds if state else 0,
        FIRST_RESPONSE: _target_status(ticket, state, FIRST_RESPONSE, schedule, now),
        RESOLUTION: _target_status(ticket, state, RESOLUTION, schedule, now),
    }
