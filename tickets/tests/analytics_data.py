"""A hand-built helpdesk week whose analytics are worked out by hand (below), shared by the
report, API, dashboard and browser tests.

Workspace A runs on America/New_York (UTC-5 in January), business hours Monday to Friday
9:00-17:00 there, with Tuesday 6 January 2026 a holiday. The period is Monday 5 to Sunday
11 January 2026. Local times (UTC = local + 5 h):

====  =====================  =============  ==============  ======================================
T     created                first response resolved        other
====  =====================  =============  ==============  ======================================
T1    Mon 5 10:00            Mon 10:30      Mon 12:00       alice, Support, email, high; 1 reply
T2    Mon 5 16:00            Wed 7 10:00    Wed 11:00       bob, Support, tag vip, closed; 2 replies
                                                            + an internal note + a customer reply
T3    Sun 11 23:30 (= Mon    -              -               open: counts on Sunday 11 locally
      12 04:30 UTC)
T4    Thu 1 09:00            -              -               open since before the period
T5    Thu 1 10:00            Thu 1 11:00    Tue 6 09:30     alice; 1 reply (on 1 Jan)
T6    Tue 6 09:00 (holiday)  Tue 09:10      -               alice, Billing; resolved Wed 7 and
                                                            reopened Thu 8 14:00; 1 reply
T7    Wed 7 12:00            -              -               merged into T6: never counted
T8    Wed 7 13:00            -              -               deleted: never counted
====  =====================  =============  ==============  ======================================

Answers for the period (``EXPECTED``):

- created T1 T2 T3 T6 = 4; resolved T1 T2 T5 = 3; reopened T6 = 1; backlog at the end
  T3 T4 T6 = 3.
- First response (T1 1800 s, T2 151200 s, T6 600 s): median 1800, p90 1800 + 0.8 x 149400 =
  121320, average 51200. In business hours: T1 1800, T2 7200 (Mon 16-17, holiday, Wed 9-10),
  T6 0 (holiday): median 1800, p90 6120, average 3000.
- Resolution (T1 7200, T2 154800, T5 430200): median 154800, p90 375120, average 197400.
  Business: T1 7200, T2 10800, T5 82800 (Thu 7 h, Fri 8 h, Mon 8 h, holiday): median 10800,
  p90 68400, average 33600.
- Replies per resolved ticket (1 + 2 + 1) / 3 = 1.33; one-touch T1 T5 = 66.67 %.
- SLA (targets on T1 T2 T3 T6; "now" is the end of the period): first response met T1 T6,
  breached T2, in progress T3 (66.67 %); resolution met T1, breached T2 (late) and T6
  (overdue), in progress T3 (33.33 %); both together 3 / 6 = 50 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from automation.models import BusinessHours, BusinessHoursSlot, Holiday, TicketSLA
from enque.tests.factories import (
    AgentFactory,
    CommentFactory,
    CustomerFactory,
    TagFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)
from tickets.models import (
    ActorType,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    TicketTag,
)
from tickets.reports import Filters, Period
from workspaces.models import Agent, AgentRole, Team, Workspace

NY = ZoneInfo("America/New_York")
PERIOD_START = date(2026, 1, 5)
PERIOD_END = date(2026, 1, 11)
# "Now" for the SLA states: the end of the period.
NOW = datetime(2026, 1, 12, 0, 0, tzinfo=NY)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=NY)


def period() -> Period:
    return Period(start=PERIOD_START, end=PERIOD_END, tz=NY)


EXPECTED: dict[str, Any] = {
    "created": 4,
    "resolved": 3,
    "reopened": 1,
    "backlog": 3,
    "first_response": {"median": 1800.0, "p90": 121320.0, "average": 51200.0, "count": 3},
    "first_response_business": {"median": 1800.0, "p90": 6120.0, "average": 3000.0, "count": 3},
    "resolution": {"median": 154800.0, "p90": 375120.0, "average": 197400.0, "count": 3},
    "resolution_business": {"median": 10800.0, "p90": 68400.0, "average": 33600.0, "count": 3},
    "replies_per_ticket": 1.33,
    "one_touch_rate": 66.67,
    "sla": {
        "first_response": {"met": 2, "breached": 1, "in_progress": 1, "compliance": 66.67},
        "resolution": {"met": 1, "breached": 2, "in_progress": 1, "compliance": 33.33},
    },
    "sla_compliance": 50.0,
}


@dataclass
class Week:
    workspace: Workspace
    alice: Agent
    bob: Agent
    support: Team
    billing: Team
    vip_tag_id: int
    tickets: dict[str, Ticket]


def _ticket(workspace: Workspace, customer: Any, **fields: Any) -> Ticket:
    created_at = fields.pop("created_at")
    ticket = TicketFactory(workspace=workspace, customer=customer, **fields)
    # created_at is stamped at insert: set it (and the rest) afterwards, as stored.
    Ticket.objects.filter(pk=ticket.pk).update(created_at=created_at, updated_at=created_at)
    ticket.refresh_from_db()
    return ticket


def _reply(ticket: Ticket, at: datetime, *, agent: Agent | None, **extra: Any) -> None:
    fields: dict[str, Any] = {"ticket": ticket}
    if agent is not None:
        fields.update(author_type="agent", author_agent=agent, author_customer=None)
    comment = CommentFactory(**fields, **extra)
    type(comment).objects.filter(pk=comment.pk).update(created_at=at)


def _sla(ticket: Ticket, **fields: Any) -> None:
    TicketSLA.objects.create(
        workspace=ticket.workspace,
        ticket=ticket,
        first_response_minutes=60,
        resolution_minutes=240,
        **fields,
    )


def build_week(workspace: Workspace, alice: Agent, bob: Agent) -> Week:
    workspace.timezone = "America/New_York"
    workspace.save(update_fields=["timezone"])
    hours = BusinessHours.objects.create(
        workspace=workspace, name="New York office", timezone="America/New_York", is_default=True
    )
    for weekday in range(5):
        BusinessHoursSlot.objects.create(
            workspace=workspace,
            business_hours=hours,
            weekday=weekday,
            opens_at=time(9),
            closes_at=time(17),
        )
    Holiday.objects.create(
        workspace=workspace, business_hours=hours, date=date(2026, 1, 6), name="Office day off"
    )
    support = TeamFactory(workspace=workspace, name="Support")
    billing = TeamFactory(workspace=workspace, name="Billing")
    vip = TagFactory(workspace=workspace, name="vip")
    customer = CustomerFactory(workspace=workspace, email="week@customer.test")

    t1 = _ticket(
        workspace,
        customer,
        created_at=local(5, 10),
        first_response_at=local(5, 10, 30),
        resolved_at=local(5, 12),
        status=TicketStatus.RESOLVED,
        assignee=alice,
        team=support,
        channel="email",
        priority="high",
        first_response_due_at=local(5, 11),
        sla_due_at=local(5, 14),
    )
    _reply(t1, local(5, 10, 30), agent=alice)
    _sla(t1)

    t2 = _ticket(
        workspace,
        customer,
        created_at=local(5, 16),
        first_response_at=local(7, 10),
        resolved_at=local(7, 11),
        closed_at=local(7, 11),
        status=TicketStatus.CLOSED,
        assignee=bob,
        team=support,
        first_response_due_at=local(5, 17),
        sla_due_at=local(6, 20),
    )
    TicketTag.objects.create(workspace=workspace, ticket=t2, tag=vip)
    _reply(t2, local(7, 10), agent=bob)
    _reply(t2, local(7, 10, 30), agent=bob)
    _reply(t2, local(7, 10, 40), agent=bob, is_internal=True)
    _reply(t2, local(7, 10, 50), agent=None)
    _sla(t2, first_response_breached_at=local(5, 17, 1))

    t3 = _ticket(
        workspace,
        customer,
        created_at=local(11, 23, 30),
        status=TicketStatus.NEW,
        first_response_due_at=local(12, 10),
        sla_due_at=local(12, 13),
    )
    _sla(t3)

    t4 = _ticket(workspace, customer, created_at=local(1, 9), status=TicketStatus.OPEN)

    t5 = _ticket(
        workspace,
        customer,
        created_at=local(1, 10),
        first_response_at=local(1, 11),
        resolved_at=local(6, 9, 30),
        status=TicketStatus.RESOLVED,
        assignee=alice,
    )
    _reply(t5, local(1, 11), agent=alice)

    t6 = _ticket(
        workspace,
        customer,
        created_at=local(6, 9),
        first_response_at=local(6, 9, 10),
        status=TicketStatus.OPEN,
        assignee=alice,
        team=billing,
        first_response_due_at=local(6, 10),
        sla_due_at=local(6, 13),
    )
    _reply(t6, local(6, 9, 10), agent=alice)
    _sla(t6)
    for at, old, new in (
        (local(7, 9), TicketStatus.OPEN, TicketStatus.RESOLVED),
        (local(8, 14), TicketStatus.RESOLVED, TicketStatus.OPEN),
    ):
        event = TicketEvent.objects.create(
            workspace=workspace,
            ticket=t6,
            kind=TicketEventKind.FIELD_CHANGED,
            actor_type=ActorType.AGENT,
            actor_agent=alice,
            field="status",
            old_value=str(old),
            new_value=str(new),
        )
        TicketEvent.objects.filter(pk=event.pk).update(created_at=at)

    t7 = _ticket(workspace, customer, created_at=local(7, 12), merged_into=t6, assignee=alice)
    _reply(t7, local(7, 12, 5), agent=alice)
    t8 = _ticket(
        workspace,
        customer,
        created_at=local(7, 13),
        deleted_at=local(7, 14),
        first_response_at=local(7, 13, 1),
        assignee=alice,
    )
    return Week(
        workspace=workspace,
        alice=alice,
        bob=bob,
        support=support,
        billing=billing,
        vip_tag_id=vip.pk,
        tickets={"T1": t1, "T2": t2, "T3": t3, "T4": t4, "T5": t5, "T6": t6, "T7": t7, "T8": t8},
    )


def build_noise(workspace: Workspace) -> None:
    """Workspace B: tickets on the same days, of every kind, that must never be counted."""
    agent = AgentFactory(
        workspace=workspace,
        user=UserFactory(email=f"noise-{workspace.pk}@b.test"),
        role=AgentRole.AGENT,
    )
    customer = CustomerFactory(workspace=workspace, email=f"noise-{workspace.pk}@other.test")
    for day in range(1, 12):
        ticket = _ticket(
            workspace,
            customer,
            created_at=local(day, 10),
            first_response_at=local(day, 10, 1),
            resolved_at=local(day, 11),
            status=TicketStatus.RESOLVED,
            assignee=agent,
        )
        _reply(ticket, local(day, 10, 1), agent=agent)
        _sla(ticket)


def no_filters() -> Filters:
    return Filters()


def all_days() -> list[date]:
    return [PERIOD_START + timedelta(days=n) for n in range(7)]
