"""SLA clocks: the policy that applies, due times in business hours, the pause while
pending, breaches recorded once (and seen by rules), warnings, and the time left."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from automation import engine, services, sla
from automation.models import Notification, TicketSLA
from automation.tests.support import write_in
from enque.tests.factories import CategoryFactory, CompanyFactory, CustomerFactory
from tickets.actors import Actor
from tickets.models import Ticket, TicketEvent, TicketEventKind
from tickets.services import comment_create, ticket_update

pytestmark = pytest.mark.django_db

# A Friday, 16:00 UTC.
FRIDAY_4PM = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


@pytest.fixture
def office(alice, workspace_a):
    """Mon-Fri 9-17 in Berlin, Monday 23 November a holiday."""
    return services.business_hours_create(
        workspace=workspace_a,
        actor=alice,
        name="Berlin office",
        timezone="Europe/Berlin",
        slots=[{"weekday": d, "opens_at": time(9), "closes_at": time(17)} for d in range(5)],
        holidays=[{"date": date(2026, 11, 23), "name": "Staff day"}],
    )


def policy(alice, targets, **kwargs):
    return services.sla_policy_create(
        workspace=alice.workspace,
        actor=alice,
        name=kwargs.pop("name", "Standard"),
        targets=[
            {"priority": p, "first_response_minutes": f, "resolution_minutes": r}
            for p, (f, r) in targets.items()
        ],
        **kwargs,
    )


def created_at(ticket: Ticket, when: datetime) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(created_at=when)
    ticket.refresh_from_db()
    return ticket


def refresh(ticket: Ticket, now: datetime) -> Ticket:
    sla.sla_refresh(ticket_id=ticket.pk, workspace_id=ticket.workspace_id, now=now)
    ticket.refresh_from_db()
    return ticket


def test_a_new_ticket_gets_its_due_times(alice, customer_a, hooks_run) -> None:
    policy(alice, {"normal": (60, 8 * 60), "urgent": (15, 120)})

    with hooks_run():
        ticket = write_in(customer_a)

    ticket.refresh_from_db()
    assert ticket.first_response_due_at == ticket.created_at + timedelta(minutes=60)
    assert ticket.sla_due_at == ticket.created_at + timedelta(hours=8)
    state = TicketSLA.objects.get(ticket=ticket)
    assert (state.first_response_minutes, state.resolution_minutes) == (60, 480)


def test_a_priority_change_recomputes_them(alice, bob, customer_a, hooks_run) -> None:
    policy(alice, {"normal": (60, 8 * 60), "urgent": (15, 120)})
    with hooks_run():
        ticket = write_in(customer_a)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), priority="urgent")

    ticket.refresh_from_db()
    assert ticket.first_response_due_at == ticket.created_at + timedelta(minutes=15)
    assert ticket.sla_due_at == ticket.created_at + timedelta(hours=2)


def test_a_priority_without_a_target_has_no_due_time(alice, bob, customer_a, hooks_run) -> None:
    policy(alice, {"normal": (60, 480)})
    with hooks_run():
        ticket = write_in(customer_a)
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), priority="low")

    ticket.refresh_from_db()
    assert ticket.first_response_due_at is None and ticket.sla_due_at is None


def test_due_times_in_business_hours_across_the_weekend_and_a_holiday(
    alice, customer_a, office
) -> None:
    policy(alice, {"normal": (120, 16 * 60)}, business_hours=office)
    ticket = created_at(write_in(customer_a), FRIDAY_4PM)  # 17:00 in Berlin: closing time

    ticket = refresh(ticket, FRIDAY_4PM)

    berlin = ticket.first_response_due_at.astimezone(office_zone())
    # Closed Friday evening, the weekend and Monday (holiday): Tuesday 9-11.
    assert (berlin.date(), berlin.hour) == (date(2026, 11, 24), 11)
    assert ticket.sla_due_at.astimezone(office_zone()).date() == date(2026, 11, 25)
    assert ticket.sla_due_at.astimezone(office_zone()).hour == 17


def office_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


def test_the_first_fitting_policy_applies(alice, workspace_a) -> None:
    vip_company = CompanyFactory(workspace=workspace_a, name="VIP Corp")
    vip = CustomerFactory(workspace=workspace_a, email="boss@vip.test", company=vip_company)
    other = CustomerFactory(workspace=workspace_a, email="someone@else.test")
    billing = CategoryFactory(workspace=workspace_a, name="Billing")
    policy(alice, {"normal": (10, 60)}, name="VIP", company=vip_company, position=0)
    policy(alice, {"normal": (20, 120)}, name="Billing", category=billing, position=1)
    policy(alice, {"normal": (30, 180)}, name="Everyone", position=2)

    def first_response_minutes(customer, **kwargs):
        ticket = write_in(customer, **kwargs)
        ticket = refresh(ticket, ticket.created_at)
        return (ticket.first_response_due_at - ticket.created_at) // timedelta(minutes=1)

    assert first_response_minutes(vip) == 10
    assert first_response_minutes(other, category=billing) == 20
    assert first_response_minutes(other) == 30


def test_pending_pauses_the_clock_and_resuming_extends_the_due_time(alice, bob, customer_a) -> None:
    policy(alice, {"normal": (60, 8 * 60)})
    ticket = write_in(customer_a)
    start = ticket.created_at
    ticket = refresh(ticket, start)
    comment_create(ticket=ticket, actor=Actor.for_agent(bob), body_text="Which printer?")

    # Pending from +1h to +4h: the resolution clock stops, its due time is cleared.
    ticket_update(ticket=ticket, actor=Actor.for_agent(bob), status="pending")
    ticket = refresh(ticket, start + timedelta(hours=1))
    state = TicketSLA.objects.get(ticket=ticket)
    assert state.paused_at == start + timedelta(hours=1)
    assert ticket.sla_due_at is None
    status = sla.sla_status(ticket, now=start + timedelta(hours=2))
    assert status["paused"] is True
    assert status["resolution"]["business_seconds_left"] == 7 * 3600  # frozen at 7 hours

    comment_create(ticket=ticket, actor=Actor.for_customer(customer_a), body_text="The red one.")
    ticket = refresh(ticket, start + timedelta(hours=4))

    state.refresh_from_db()
    assert state.paused_at is None and state.paused_seconds == 3 * 3600
    assert ticket.sla_due_at == start + timedelta(hours=8 + 3)
    # The first response was met before the pause: its due time stays as it was.
    assert ticket.first_response_due_at == start + timedelta(hours=1)


def test_a_pause_in_business_hours_counts_only_open_time(alice, bob, customer_a, office) -> None:
    policy(alice, {"normal": (None, 16 * 60)}, business_hours=office)
    # Thursday 19 Nov 15:00 Berlin (14:00 UTC): 2 hours that day, then Friday.
    start = datetime(2026, 11, 19, 14, 0, tzinfo=UTC)
    ticket = refresh(created_at(write_in(customer_a), start), start)
    assert ticket.sla_due_at.astimezone(office_zone()) == datetime(
        2026, 11, 24, 15, 0, tzinfo=office_zone()
    )

    # Pending from Thursday 16:00 to Saturday noon Berlin: 1 + 8 open hours paused.
    ticket_update(ticket=ticket, actor=Actor.for_agent(bob), status="pending")
    refresh(ticket, datetime(2026, 11, 19, 15, 0, tzinfo=UTC))
    ticket_update(ticket=ticket, actor=Actor.for_agent(bob), status="open")
    ticket = refresh(ticket, datetime(2026, 11, 21, 11, 0, tzinfo=UTC))

    assert TicketSLA.objects.get(ticket=ticket).paused_seconds == 9 * 3600
    # 16 hours: 1 on Thursday before the pause, then from Tuesday (Monday a holiday):
    # Tuesday 8, Wednesday 7 -> Wednesday 16:00.
    assert ticket.sla_due_at.astimezone(office_zone()) == datetime(
        2026, 11, 25, 16, 0, tzinfo=office_zone()
    )


def test_resolving_stops_the_clock_and_keeps_the_due_time(alice, bob, customer_a) -> None:
    policy(alice, {"normal": (60, 480)})
    ticket = write_in(customer_a)
    ticket = refresh(ticket, ticket.created_at)
    due = ticket.sla_due_at

    ticket_update(ticket=ticket, actor=Actor.for_agent(bob), status="resolved")
    ticket = refresh(ticket, ticket.created_at + timedelta(hours=2))

    assert ticket.sla_due_at == due
    assert TicketSLA.objects.get(ticket=ticket).paused_at is not None


def test_a_breach_is_recorded_once(alice, customer_a, hooks_run) -> None:
    policy(alice, {"normal": (60, 120)})
    with hooks_run():
        ticket = write_in(customer_a)
    ticket.refresh_from_db()

    with hooks_run():
        early = sla.sla_check(now=ticket.created_at + timedelta(minutes=59))
        first = sla.sla_check(now=ticket.created_at + timedelta(minutes=61))
        again = sla.sla_check(now=ticket.created_at + timedelta(minutes=62))
        both = sla.sla_check(now=ticket.created_at + timedelta(minutes=121))

    assert early["breached"] == 0
    assert first["breached"] == 1 and again["breached"] == 0 and both["breached"] == 1
    breaches = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.SLA_BREACHED)
    assert sorted(e.data["target"] for e in breaches) == ["first_response", "resolution"]
    state = TicketSLA.objects.get(ticket=ticket)
    assert state.first_response_breached_at and state.resolution_breached_at


def test_a_pending_ticket_is_not_breached(alice, bob, customer_a, hooks_run) -> None:
    policy(alice, {"normal": (None, 60)})
    with hooks_run():
        ticket = write_in(customer_a)
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), status="pending")

    assert sla.sla_check(now=timezone.now() + timedelta(hours=5))["breached"] == 0


def test_a_breach_can_trigger_a_time_rule(alice, rule, customer_a, hooks_run) -> None:
    policy(alice, {"normal": (None, 60)})
    rule(
        "time",
        conditions=[("sla_breached", "is", True)],
        actions=[("set_priority", {"priority": "urgent"}), ("add_tags", {"tags": ["late"]})],
    )
    with hooks_run():
        ticket = write_in(customer_a)
    later = timezone.now() + timedelta(minutes=90)

    with hooks_run():
        sla.sla_check(now=later)
        fired = engine.run_time_rules(now=later)
        again = engine.run_time_rules(now=later + timedelta(minutes=1))

    assert (fired, again) == (1, 0)
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"


def test_the_assignee_is_warned_once_before_a_due_time(
    alice, bob, customer_a, hooks_run, settings
) -> None:
    settings.SLA_WARNING_MINUTES = 30
    policy(alice, {"normal": (None, 60)})
    with hooks_run():
        ticket = write_in(customer_a)
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)
    mail.outbox.clear()
    Notification.objects.all().delete()

    with hooks_run():
        quiet = sla.sla_check(now=ticket.created_at + timedelta(minutes=20))
        warned = sla.sla_check(now=ticket.created_at + timedelta(minutes=40))
        again = sla.sla_check(now=ticket.created_at + timedelta(minutes=45))

    assert (quiet["warned"], warned["warned"], again["warned"]) == (0, 1, 0)
    notification = Notification.objects.get()
    assert notification.recipient == bob and notification.kind == "sla_warning"
    assert notification.data["target"] == "resolution"
    assert [m.to for m in mail.outbox] == [["bob@a.test"]]


def test_the_api_shows_the_time_left(alice, bob, customer_a, client_for, hooks_run) -> None:
    policy(alice, {"normal": (60, 480)})
    with hooks_run():
        ticket = write_in(customer_a)

    response = client_for(bob).get(f"/v1/tickets/{ticket.number}/sla")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["policy"]["name"] == "Standard" and body["paused"] is False
    left = body["resolution"]["seconds_left"]
    assert 8 * 3600 - 60 < left <= 8 * 3600
    assert body["resolution"]["business_seconds_left"] == pytest.approx(left, abs=2)
    assert body["first_response"]["target_minutes"] == 60
    assert body["first_response"]["breached"] is False


def test_charlie_gets_404_for_another_workspaces_ticket_sla(
    charlie, customer_a, customer_b, client_for
) -> None:
    write_in(customer_b)  # B's #1
    write_in(customer_a)
    only_in_a = write_in(customer_a)  # A's #2: B has no #2
    client = client_for(charlie)
    assert client.get("/v1/tickets/1/sla").json()["ticket"] == 1  # his own #1
    response = client.get(f"/v1/tickets/{only_in_a.number}/sla")
    assert response.status_code == 404
