"""The inbox: views and counts, filters, search, sort, keyset pages, bulk actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from enque.tests.factories import AgentFactory, CategoryFactory, CustomerFactory, TeamFactory
from tickets import selectors
from tickets.actors import Actor
from tickets.models import SavedView, Ticket, TicketEvent, TicketEventKind
from tickets.services import saved_view_create, ticket_create, ticket_update
from workspaces.models import Agent, AgentRole, Customer, Workspace

pytestmark = pytest.mark.django_db

INBOX = reverse("ui:inbox")


def make_ticket(workspace: Workspace, customer: Customer, subject: str, **fields) -> Ticket:
    return ticket_create(
        workspace=workspace,
        actor=Actor.for_customer(customer),
        subject=subject,
        body_text=f"Body of {subject}",
        customer=customer,
        channel="email",
        **fields,
    )


def numbers_on(response) -> list[int]:
    return [t.number for t in response.context["tickets"]]


@pytest.fixture
def team(workspace_a: Workspace):
    return TeamFactory(workspace=workspace_a, name="Billing")


@pytest.fixture
def tickets(workspace_a: Workspace, customer_a: Customer, alice: Agent, bob: Agent, team):
    """#1 mine (open), #2 unassigned (new), #3 pending Bob's, #4 resolved, #5 team Billing."""
    mine = make_ticket(workspace_a, customer_a, "Printer jam", assignee=alice, priority="high")
    new = make_ticket(workspace_a, customer_a, "Invoice question", tags=["billing"])
    pending = make_ticket(workspace_a, customer_a, "Password reset", assignee=bob)
    ticket_update(ticket=pending, actor=Actor.for_agent(bob), status="pending")
    resolved = make_ticket(workspace_a, customer_a, "Old problem")
    ticket_update(ticket=resolved, actor=Actor.for_agent(bob), status="resolved")
    billing = make_ticket(workspace_a, customer_a, "Refund please", team=team)
    return {"mine": mine, "new": new, "pending": pending, "resolved": resolved, "team": billing}


def test_views_and_their_counts(alice_client: Client, tickets, team) -> None:
    response = alice_client.get(INBOX)
    assert response.status_code == 200
    counts = response.context["bar"].counts()
    assert counts["mine"] == 1
    assert counts["unassigned"] == 2  # new and billing (pending is Bob's; resolved is done)
    assert counts["open"] == 4
    assert counts["pending"] == 1
    assert counts[f"team-{team.pk}"] == 1
    # Done tickets are not counted (the aggregate reads active tickets only).
    assert counts["resolved"] is None and counts["all"] is None
    assert numbers_on(response) == [tickets["mine"].number]

    def view(key: str) -> list[int]:
        return sorted(numbers_on(alice_client.get(INBOX, {"view": key})))

    assert view("pending") == [tickets["pending"].number]
    assert view("resolved") == [tickets["resolved"].number]
    assert view(f"team-{team.pk}") == [tickets["team"].number]
    assert len(view("all")) == 5


def test_unassigned_is_active_tickets_without_assignee(alice_client: Client, tickets) -> None:
    numbers = numbers_on(alice_client.get(INBOX, {"view": "unassigned"}))
    assert sorted(numbers) == sorted([tickets["new"].number, tickets["team"].number])


def test_counts_read_the_maintained_counts_not_the_tickets(alice_client: Client, tickets) -> None:
    with CaptureQueriesContext(connection) as queries:
        alice_client.get(INBOX)
    sql = [q["sql"] for q in queries]
    # One GROUP BY over the delta rows (tickets.counts) for every built-in and team view...
    assert len([s for s in sql if "tickets_ticketcountdelta" in s]) == 1, sql
    # ...and nothing counts tickets (no saved views here, so no saved-view aggregate).
    assert [s for s in sql if "COUNT(" in s.upper()] == []


def test_every_count_is_the_number_of_tickets_its_view_lists(
    alice: Agent, bob: Agent, workspace_a: Workspace, customer_a: Customer, team, tickets
) -> None:
    from integrations.models import MailboxConnection
    from tickets.services import ticket_delete, ticket_merge
    from ui.inbox import sidebar

    mailbox = MailboxConnection.objects.create(
        workspace=workspace_a, provider="imap", email_address="help@acme.test"
    )
    other_team = TeamFactory(workspace=workspace_a, name="Hardware")
    for index, status in enumerate(["new", "open", "pending", "on_hold", "resolved"] * 3):
        make_ticket(
            workspace_a,
            customer_a,
            f"Mixed {index}",
            status=status,
            assignee=[None, alice, bob][index % 3],
            team=[None, team, other_team][index % 3 if index % 2 else 0],
            mailbox=mailbox if index % 4 == 0 else None,
        )
    ticket_delete(ticket=tickets["team"], actor=Actor.for_agent(alice))
    ticket_merge(source=tickets["mine"], target=tickets["new"], actor=Actor.for_agent(alice))
    Ticket.objects.filter(number=tickets["pending"].number, workspace=workspace_a).update(
        assignee=alice
    )
    saved_view_create(
        workspace=workspace_a, agent=alice, name="High", filters={"priority": ["high"]}
    )

    for agent in (alice, bob):
        bar = sidebar(workspace=workspace_a, agent=agent, teams=[team, other_team])
        for view in bar.all():
            listed = selectors.ticket_filtered(
                workspace=workspace_a, agent=agent, filters=view.filters
            ).count()
            assert view.count == (listed if view.counted or view.saved else None), view.key


def test_an_unknown_or_foreign_view_is_404(
    alice_client: Client, workspace_b: Workspace, charlie: Agent
) -> None:
    other_team = TeamFactory(workspace=workspace_b)
    assert alice_client.get(INBOX, {"view": "nope"}).status_code == 404
    assert alice_client.get(INBOX, {"view": f"team-{other_team.pk}"}).status_code == 404
    theirs = saved_view_create(workspace=workspace_b, agent=charlie, name="Mine", filters={})
    assert alice_client.get(INBOX, {"view": f"saved-{theirs.pk}"}).status_code == 404


# --- Filters, search and sort --------------------------------------------------------------


def test_filters_narrow_the_view(
    alice_client: Client, tickets, team, workspace_a: Workspace, alice: Agent
) -> None:
    def all_with(**params) -> list[int]:
        return sorted(numbers_on(alice_client.get(INBOX, {"view": "all", **params})))

    assert all_with(status="pending") == [tickets["pending"].number]
    assert all_with(priority="high") == [tickets["mine"].number]
    assert all_with(assignee="me") == [tickets["mine"].number]
    assert all_with(assignee=str(tickets["pending"].assignee_id)) == [tickets["pending"].number]
    assert all_with(team=str(team.pk)) == [tickets["team"].number]
    assert all_with(tag="billing") == [tickets["new"].number]
    category = CategoryFactory(workspace=workspace_a, name="Hardware")
    ticket_update(ticket=tickets["mine"], actor=Actor.for_agent(alice), category=category)
    assert all_with(category=str(category.pk)) == [tickets["mine"].number]
    assert len(all_with(category="none")) == 4


def test_a_filter_overrides_the_views_own(alice_client: Client, tickets) -> None:
    # "Resolved & closed" with a status filter: the filter's status wins.
    numbers = numbers_on(alice_client.get(INBOX, {"view": "resolved", "status": "pending"}))
    assert numbers == [tickets["pending"].number]


def test_customer_and_date_filters(alice_client: Client, tickets, workspace_a: Workspace) -> None:
    other = CustomerFactory(workspace=workspace_a, name="Zed Other")
    theirs = make_ticket(workspace_a, other, "Another customer's")
    response = alice_client.get(INBOX, {"view": "all", "customer": str(other.pk)})
    assert numbers_on(response) == [theirs.number]
    assert b"Zed Other" in response.content  # the chip names the customer

    Ticket.objects.filter(pk=theirs.pk).update(created_at=timezone.now() - timedelta(days=10))
    day = (timezone.now() - timedelta(days=10)).date().isoformat()
    response = alice_client.get(INBOX, {"view": "all", "created_from": day, "created_to": day})
    assert numbers_on(response) == [theirs.number]
    response = alice_client.get(INBOX, {"view": "all", "created_from": "last tuesday"})
    assert b"YYYY-MM-DD" in response.content


def test_a_foreign_reference_in_a_filter_is_refused(
    alice_client: Client, tickets, workspace_b: Workspace
) -> None:
    foreign = TeamFactory(workspace=workspace_b)
    response = alice_client.get(INBOX, {"view": "all", "team": str(foreign.pk)})
    assert response.status_code == 200
    assert b"Unknown team in this workspace." in response.content
    # The error does not silently widen or leak anything: the view's own filters apply.
    assert len(numbers_on(response)) == 5


def test_search_finds_subjects_messages_and_numbers(alice_client: Client, tickets) -> None:
    def search(q: str) -> list[int]:
        return sorted(numbers_on(alice_client.get(INBOX, {"view": "all", "q": q})))

    assert search("printer") == [tickets["mine"].number]
    assert search("body refund") == [tickets["team"].number]  # in the message
    assert search(f"#{tickets['pending'].number}") == [tickets["pending"].number]
    response = alice_client.get(INBOX, {"view": "all", "q": "nothingmatches"})
    assert b"No tickets match" in response.content


def test_ordering(alice_client: Client, tickets) -> None:
    numbers = numbers_on(alice_client.get(INBOX, {"view": "all", "ordering": "number"}))
    assert numbers == sorted(numbers)
    numbers = numbers_on(alice_client.get(INBOX, {"view": "all", "ordering": "-number"}))
    assert numbers == sorted(numbers, reverse=True)


# --- Keyset pages ----------------------------------------------------------------------------


def test_pages_are_keyset_not_offset(
    alice_client: Client, workspace_a: Workspace, customer_a: Customer
) -> None:
    for index in range(30):
        make_ticket(workspace_a, customer_a, f"Ticket {index}")
    with CaptureQueriesContext(connection) as queries:
        first = alice_client.get(INBOX, {"view": "all", "ordering": "-number"})
    assert not any("OFFSET" in q["sql"].upper() for q in queries)
    assert numbers_on(first) == list(range(30, 5, -1))
    page = first.context["page"]
    assert page.previous_cursor is None and page.next_cursor

    with CaptureQueriesContext(connection) as queries:
        second = alice_client.get(
            INBOX, {"view": "all", "ordering": "-number", "cursor": page.next_cursor}
        )
    assert not any("OFFSET" in q["sql"].upper() for q in queries)
    assert numbers_on(second) == [5, 4, 3, 2, 1]
    assert second.context["page"].next_cursor is None

    back = alice_client.get(
        INBOX,
        {"view": "all", "ordering": "-number", "cursor": second.context["page"].previous_cursor},
    )
    assert numbers_on(back) == list(range(30, 5, -1))
    # A cursor that does not decode is the first page, not an error.
    garbage = alice_client.get(INBOX, {"view": "all", "ordering": "-number", "cursor": "%%%"})
    assert numbers_on(garbage) == list(range(30, 5, -1))


def test_a_new_ticket_does_not_shift_the_next_page(
    alice_client: Client, workspace_a: Workspace, customer_a: Customer
) -> None:
    for index in range(27):
        make_ticket(workspace_a, customer_a, f"Ticket {index}")
    first = alice_client.get(INBOX, {"view": "all", "ordering": "-created_at"})
    make_ticket(workspace_a, customer_a, "Arrived while paging")
    second = alice_client.get(
        INBOX,
        {"view": "all", "ordering": "-created_at", "cursor": first.context["page"].next_cursor},
    )
    assert numbers_on(second) == [2, 1]


# --- Query budget ------------------------------------------------------------------------------


def build_inbox(workspace: Workspace, agents: list[Agent], teams: list, count: int) -> None:
    customers = [CustomerFactory(workspace=workspace) for _ in range(3)]
    for index in range(count):
        make_ticket(
            workspace,
            customers[index % 3],
            f"Ticket {index}",
            assignee=agents[index % len(agents)],
            team=teams[index % len(teams)],
            tags=[f"tag{index % 4}", "common"],
        )


@pytest.mark.parametrize("count", [3, 25])
def test_inbox_query_budget(
    alice_client: Client,
    alice: Agent,
    bob: Agent,
    workspace_a: Workspace,
    django_assert_max_num_queries,
    count: int,
) -> None:
    teams = [TeamFactory(workspace=workspace_a) for _ in range(3)]
    build_inbox(workspace_a, [alice, bob], teams, count)
    saved_view_create(workspace=workspace_a, agent=alice, name="Urgent", filters={"q": "ticket"})
    # The same at 3 rows as at 25 (a full page):
    #  1 session, 2 user, 3 membership (agent + user + workspace),
    #  4 teams (sidebar, filter bar), 5 active mailboxes, 6 saved views,
    #  7 the maintained view counts (tickets.counts), 8 saved views' counts,
    #  9 the page of tickets (customer, company, team, category joined), 10 their
    # assignees with their users, 11 their tags, 12 the workspace switcher's list, 13 agents,
    # 14 categories, 15 tags (filter bar, bulk tag).
    with django_assert_max_num_queries(15):
        response = alice_client.get(INBOX, {"view": "all"})
    assert len(response.context["tickets"]) == count


def test_each_reference_filter_adds_one_check(
    alice_client: Client, alice: Agent, workspace_a: Workspace, django_assert_max_num_queries
) -> None:
    team = TeamFactory(workspace=workspace_a)
    build_inbox(workspace_a, [alice], [team], 5)
    # 14 as above (no saved views, so no saved-view counts) + 1 EXISTS for the team + 1 for
    # the assignee (check_filter_references).
    with django_assert_max_num_queries(16):
        alice_client.get(INBOX, {"view": "all", "team": str(team.pk), "assignee": str(alice.pk)})


# --- Bulk actions ------------------------------------------------------------------------------


def bulk(client: Client, numbers: list[int], **data):
    return client.post(reverse("ui:bulk"), {"numbers": [str(n) for n in numbers], **data})


def test_bulk_assign_goes_through_the_service(alice_client: Client, tickets, bob: Agent) -> None:
    numbers = [tickets["new"].number, tickets["team"].number]
    response = bulk(alice_client, numbers, action="assign", assignee=str(bob.pk), next="/?view=all")
    assert response.status_code == 302
    assert response["Location"] == "/?view=all"
    for number in numbers:
        ticket = Ticket.objects.get(workspace=bob.workspace, number=number)
        assert ticket.assignee_id == bob.pk
        assert TicketEvent.objects.filter(
            ticket=ticket,
            field="assignee",
            new_value=bob.pk,
            actor_agent__user__email="alice@a.test",
        ).exists()


def test_bulk_unassign_status_and_tag(alice_client: Client, tickets) -> None:
    number = tickets["mine"].number
    bulk(alice_client, [number], action="assign", assignee="none")
    bulk(alice_client, [number], action="status", status="on_hold")
    bulk(alice_client, [number], action="tag", tag="vip")
    ticket = Ticket.objects.get(pk=tickets["mine"].pk)
    assert ticket.assignee_id is None
    assert ticket.status == "on_hold"
    assert list(ticket.tags.values_list("name", flat=True)) == ["vip"]
    kinds = set(TicketEvent.objects.filter(ticket=ticket).values_list("kind", flat=True))
    assert {TicketEventKind.FIELD_CHANGED, TicketEventKind.TAGS_CHANGED} <= kinds


def test_bulk_merge(alice_client: Client, tickets) -> None:
    into = tickets["new"].number
    sources = [tickets["team"].number, tickets["pending"].number]
    response = bulk(alice_client, [into, *sources], action="merge", into=str(into))
    assert response.status_code == 302
    for number in sources:
        source = Ticket.objects.get(workspace=tickets["new"].workspace, number=number)
        assert source.merged_into_id == tickets["new"].pk
        assert source.status == "closed"
    assert (
        TicketEvent.objects.filter(ticket=tickets["new"], kind=TicketEventKind.MERGED_FROM).count()
        == 2
    )


def test_bulk_reports_what_failed(alice_client: Client, tickets) -> None:
    response = bulk(alice_client, [tickets["mine"].number, 999], action="status", status="open")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("#999" in m for m in messages), messages


def test_bulk_needs_a_full_agent(signed_in, workspace_a: Workspace, tickets) -> None:
    light = AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT)
    client = signed_in(light)
    response = bulk(client, [tickets["new"].number], action="status", status="closed")
    assert response.status_code == 302
    assert Ticket.objects.get(pk=tickets["new"].pk).status == "new"


def test_bulk_cannot_reach_another_workspace(
    alice_client: Client, ticket_b: Ticket, charlie: Agent
) -> None:
    bulk(alice_client, [ticket_b.number], action="status", status="closed")
    ticket_b.refresh_from_db()
    assert ticket_b.status == "new"


def test_bulk_refuses_an_agent_of_another_workspace(
    alice_client: Client, tickets, charlie: Agent
) -> None:
    bulk(alice_client, [tickets["new"].number], action="assign", assignee=str(charlie.pk))
    assert Ticket.objects.get(pk=tickets["new"].pk).assignee_id is None


# --- Saved views -------------------------------------------------------------------------------


def test_save_the_current_filters_as_a_view(alice_client: Client, tickets, alice: Agent) -> None:
    response = alice_client.post(
        reverse("ui:saved_view_create"),
        {"name": "High priority", "view": "all", "priority": "high"},
    )
    saved = SavedView.objects.get(name="High priority")
    assert saved.owner_id == alice.pk
    assert saved.filters == {"priority": ["high"]}
    assert response["Location"] == f"{INBOX}?view=saved-{saved.pk}"
    page = alice_client.get(INBOX, {"view": f"saved-{saved.pk}"})
    assert numbers_on(page) == [tickets["mine"].number]
    assert page.context["bar"].get(f"saved-{saved.pk}").count == 1

    alice_client.post(reverse("ui:saved_view_delete", args=[saved.pk]))
    assert not SavedView.objects.filter(pk=saved.pk).exists()


def test_another_agents_personal_view_cannot_be_deleted(
    bob_client: Client, alice: Agent, workspace_a: Workspace
) -> None:
    saved = saved_view_create(workspace=workspace_a, agent=alice, name="Alice's", filters={})
    assert bob_client.post(reverse("ui:saved_view_delete", args=[saved.pk])).status_code == 404
    assert SavedView.objects.filter(pk=saved.pk).exists()


def test_live_refresh_returns_the_list_and_the_counts(alice_client: Client, tickets) -> None:
    response = alice_client.get(
        INBOX, {"view": "all"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inbox-results"
    )
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="inbox-sidebar"' in html and 'hx-swap-oob="true"' in html
    assert tickets["mine"].subject in html
    counts = alice_client.get(reverse("ui:inbox_counts"), HTTP_HX_REQUEST="true")
    assert b'id="inbox-sidebar"' in counts.content


def test_every_ordering_of_the_api_has_a_label() -> None:
    from tickets.api.filters import ORDERINGS
    from ui.inbox import ORDERING_LABELS

    assert set(ORDERING_LABELS) == set(ORDERINGS)


def test_a_view_per_mailbox(
    alice_client: Client, workspace_a: Workspace, customer_a: Customer, tickets
) -> None:
    from integrations.models import MailboxConnection

    mailbox = MailboxConnection.objects.create(
        workspace=workspace_a, provider="imap", email_address="help@acme.test"
    )
    inbound = make_ticket(workspace_a, customer_a, "Arrived by mail", mailbox=mailbox)
    response = alice_client.get(INBOX)
    assert b"help@acme.test" in response.content
    assert response.context["bar"].counts()[f"mailbox-{mailbox.pk}"] == 1
    listed = alice_client.get(INBOX, {"view": f"mailbox-{mailbox.pk}"})
    assert numbers_on(listed) == [inbound.number]
