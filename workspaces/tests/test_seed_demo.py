"""`manage.py seed_demo`: idempotent, resettable, and the history it writes holds together."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Q
from django.test import Client
from django.utils import timezone

from automation.models import Automation, BusinessHoursSlot, SLATarget
from tickets import hooks
from tickets.models import (
    DONE_STATUSES,
    CannedReply,
    Comment,
    Tag,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)
from workspaces import demo_content as content
from workspaces.models import Agent, AgentRole, Company, Customer, Team, User, Workspace
from workspaces.services import workspace_create

# Small enough to seed in well under a second per test, big enough for every path: new,
# pending, resolved, closed, merged.
TICKETS = 20
# A fixed end of the history makes the demo the same on every run, whatever the clock says.
AS_OF = "2025-03-04T15:00:00+01:00"


def seed(*args: str) -> str:
    out = StringIO()
    call_command(
        "seed_demo", "--tickets", str(TICKETS), "--as-of", AS_OF, *args, stdout=out, stderr=out
    )
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "workspaces": Workspace.objects.count(),
        "users": User.objects.count(),
        "agents": Agent.objects.count(),
        "customers": Customer.objects.count(),
        "tickets": Ticket.objects.count(),
        "comments": Comment.objects.count(),
        "events": TicketEvent.objects.count(),
    }


def snapshot(workspace: Workspace) -> list[tuple]:
    """What a visitor sees of each ticket: enough to tell two demos apart."""
    return list(
        Ticket.objects.for_workspace(workspace)
        .order_by("number")
        .annotate(comment_count=Count("comments", distinct=True))
        .values_list(
            "number",
            "subject",
            "status",
            "priority",
            "channel",
            "customer__email",
            "assignee__user__email",
            "created_at",
            "comment_count",
        )
    )


@pytest.fixture
def demo(db: None) -> Workspace:
    seed()
    return Workspace.objects.get(slug=content.DEMO_SLUG)


def test_seeds_the_demo_and_prints_the_login(db: None) -> None:
    out = seed()

    ws = Workspace.objects.get(slug=content.DEMO_SLUG)
    assert ws.name == content.DEMO_WORKSPACE_NAME
    assert ws.timezone == content.DEMO_TIMEZONE
    assert Agent.objects.for_workspace(ws).count() == len(content.AGENTS)
    assert Agent.objects.for_workspace(ws).get(user__email=content.DEMO_EMAIL).role == "owner"
    assert Agent.objects.for_workspace(ws).filter(role=AgentRole.LIGHT).count() == 1
    assert Team.objects.for_workspace(ws).count() == len(content.TEAMS)
    assert Company.objects.for_workspace(ws).count() == len(content.COMPANIES)
    customers = Customer.objects.for_workspace(ws)
    assert customers.count() == len(content.CUSTOMER_NAMES)
    # Customers join their company by mail domain (customer_get_or_create).
    assert customers.filter(company__isnull=False).count() == content.COMPANY_CUSTOMERS
    assert Tag.objects.for_workspace(ws).count() == len(content.TAGS)
    assert CannedReply.objects.for_workspace(ws).count() == len(content.CANNED_REPLIES)
    assert BusinessHoursSlot.objects.for_workspace(ws).count() == 5
    assert SLATarget.objects.for_workspace(ws).count() == 8
    assert (
        Automation.objects.for_workspace(ws).filter(conditions__isnull=False).distinct().count()
        == 5
    )
    assert Ticket.objects.for_workspace(ws).count() == TICKETS

    login = User.objects.get(email=content.DEMO_EMAIL)
    assert login.is_staff and login.is_superuser
    assert login.check_password(content.DEMO_PASSWORD)
    for text in (content.ADMIN_URL, content.DEMO_EMAIL, content.DEMO_PASSWORD):
        assert text in out


def test_a_second_run_changes_nothing_and_prints_the_login(demo: Workspace) -> None:
    before, stamp = counts(), demo.updated_at

    out = seed()

    assert counts() == before
    demo.refresh_from_db()
    assert demo.updated_at == stamp
    assert "exists" in out
    for text in (content.ADMIN_URL, content.DEMO_EMAIL, content.DEMO_PASSWORD):
        assert text in out


def test_the_demo_login_opens_the_admin(demo: Workspace, client: Client) -> None:
    assert client.login(username=content.DEMO_EMAIL, password=content.DEMO_PASSWORD)

    response = client.get("/admin/")

    assert response.status_code == 200


def test_ticket_numbers_run_from_one_without_gaps_in_creation_order(demo: Workspace) -> None:
    tickets = Ticket.objects.for_workspace(demo).order_by("number")

    assert list(tickets.values_list("number", flat=True)) == list(range(1, TICKETS + 1))
    created = list(tickets.values_list("created_at", flat=True))
    assert created == sorted(created)


def test_every_thread_has_its_first_message_and_creation_event(demo: Workspace) -> None:
    tickets = Ticket.objects.for_workspace(demo)

    # A merged ticket's comments moved to the ticket it was merged into.
    merged = tickets.filter(merged_into__isnull=False)
    assert merged.count() == 2
    assert set(merged.values_list("status", flat=True)) == {TicketStatus.CLOSED}
    assert not Comment.objects.filter(ticket__in=merged).exists()
    live = tickets.filter(merged_into__isnull=True)
    assert not live.annotate(n=Count("comments")).filter(n=0).exists()
    assert not live.annotate(n=Count("comments")).filter(n__gt=7).exists()
    assert not tickets.exclude(events__kind=TicketEventKind.CREATED).exists()
    assert TicketEvent.objects.for_workspace(demo).filter(kind=TicketEventKind.MERGED).count() == 2


def test_the_ticket_clocks_agree_with_the_status(demo: Workspace) -> None:
    tickets = Ticket.objects.for_workspace(demo)

    assert not tickets.filter(status__in=DONE_STATUSES, resolved_at__isnull=True).exists()
    assert not tickets.exclude(status__in=DONE_STATUSES).filter(resolved_at__isnull=False).exists()
    assert not tickets.filter(status=TicketStatus.CLOSED, closed_at__isnull=True).exists()
    assert not tickets.exclude(status=TicketStatus.CLOSED).filter(closed_at__isnull=False).exists()
    assert not tickets.filter(first_response_at__lt=F("created_at")).exists()
    assert not tickets.filter(resolved_at__lt=F("created_at")).exists()
    assert not tickets.filter(updated_at__lt=F("created_at")).exists()
    assert tickets.filter(first_response_at__isnull=False).exists()
    # A realistic mix, not one status for everything.
    assert len(set(tickets.values_list("status", flat=True))) >= 4


def test_the_history_is_spread_over_the_past_weeks(demo: Workspace) -> None:
    as_of = datetime.fromisoformat(AS_OF)
    tickets = Ticket.objects.for_workspace(demo)
    comments = Comment.objects.for_workspace(demo)
    events = TicketEvent.objects.for_workspace(demo)

    assert tickets.filter(created_at__lt=as_of - timedelta(days=14)).exists()
    assert tickets.filter(created_at__gt=as_of - timedelta(days=3)).exists()
    assert not tickets.filter(created_at__lt=as_of - timedelta(days=61)).exists()
    # Nothing keeps the real "now" the services stamped while seeding.
    for rows in (tickets, comments, events):
        assert not rows.filter(Q(created_at__gt=as_of) | Q(updated_at__gt=as_of)).exists()
    assert not comments.filter(created_at__lt=F("ticket__created_at")).exists()
    assert not events.filter(created_at__lt=F("ticket__created_at")).exists()


def test_reset_rebuilds_the_same_demo(demo: Workspace) -> None:
    before, first = counts(), snapshot(demo)

    seed("--reset")

    assert counts() == before
    rebuilt = Workspace.objects.get(slug=content.DEMO_SLUG)
    assert rebuilt.pk != demo.pk
    assert snapshot(rebuilt) == first


def test_reset_keeps_demo_accounts_that_belong_to_another_workspace(demo: Workspace) -> None:
    sofia = User.objects.get(email="sofia.jansen@enque.local")
    other = workspace_create(name="Sofia's own helpdesk", owner=sofia)

    seed("--reset")

    assert Workspace.objects.filter(pk=other.pk).exists()
    assert User.objects.filter(email="sofia.jansen@enque.local").count() == 1
    assert Agent.objects.filter(workspace=other, user=sofia).exists()
    rebuilt = Workspace.objects.get(slug=content.DEMO_SLUG)
    assert Agent.objects.for_workspace(rebuilt).filter(user=sofia, role=AgentRole.ADMIN).exists()


@pytest.mark.django_db(transaction=True)
def test_the_imported_history_reaches_no_listener() -> None:
    # transaction=True: the seed's own transaction commits here, as under `manage.py serve`,
    # so its on-commit hooks really run (and must find nobody listening).
    heard: list[hooks.TicketChange] = []
    listener = hooks.subscribe(heard.append)
    try:
        seed()

        assert Ticket.objects.count() == TICKETS
        assert heard == []
        # ...and the listeners are back afterwards.
        change = hooks.TicketChange(
            type="ticket.updated", workspace_id=1, ticket_id=1, ticket_number=1, actor={}
        )
        hooks.dispatch(change)
        assert heard == [change]
    finally:
        hooks.unsubscribe(listener)


def test_skips_outside_development(db: None, settings: Any) -> None:
    # A superuser with a published password must never reach a server.
    settings.ENVIRONMENT = "staging"
    err = StringIO()

    call_command("seed_demo", "--tickets", "1", stdout=StringIO(), stderr=err)

    assert not Workspace.objects.exists()
    assert not User.objects.filter(email=content.DEMO_EMAIL).exists()
    assert "ENVIRONMENT=development" in err.getvalue()


def test_refuses_a_moment_in_the_future(db: None) -> None:
    later = (timezone.now() + timedelta(days=1)).isoformat()

    with pytest.raises(CommandError):
        call_command("seed_demo", "--as-of", later, stdout=StringIO())

    assert not Workspace.objects.exists()
