"""/v1/tickets: the list (filters, search, ordering, pagination, query budget), create,
read, change, delete and restore, assign, merge and bulk changes.

Alice is an admin of workspace A, Bob an agent there, Lena a light agent there; Carol is a
customer of A. Charlie is the admin of workspace B, Dave a customer of B. Ticket numbers
are per workspace, so A's #2 has no twin in B: that is the number Charlie asks for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from enque.tests.factories import (
    AgentFactory,
    CategoryFactory,
    CompanyFactory,
    CustomerFactory,
    TagFactory,
    TeamFactory,
    TicketFactory,
)
from integrations.models import MailboxConnection
from tickets.actors import Actor
from tickets.models import Comment, Tag, Ticket, TicketEvent, TicketStatus, TicketTag
from tickets.services import comment_create, ticket_delete, ticket_merge, ticket_update
from tickets.tests.api_support import error, light_agent, queries_of, write_in
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def lena(workspace_a: Workspace) -> Agent:
    return light_agent(workspace_a)


@pytest.fixture
def alice_api(client_for: Any, alice: Agent) -> APIClient:
    return client_for(alice)


@pytest.fixture
def bob_api(client_for: Any, bob: Agent) -> APIClient:
    return client_for(bob)


@pytest.fixture
def charlie_api(client_for: Any, charlie: Agent) -> APIClient:
    return client_for(charlie)


@pytest.fixture
def ticket_a2(customer_a: Customer, ticket_a: Ticket) -> Ticket:
    """A's ticket #2: workspace B has no #2."""
    return write_in(customer_a, "Scanner jammed", body_text="The scanner eats paper.")


def numbers(response: Any) -> list[int]:
    assert response.status_code == 200, response.json()
    return [item["number"] for item in response.json()["results"]]


# --- The list ------------------------------------------------------------------------------


def test_the_list_embeds_customer_assignee_team_category_tags_and_company(
    alice_api: APIClient, bob: Agent, workspace_a: Workspace
) -> None:
    company = CompanyFactory(workspace=workspace_a, name="Initech")
    customer = CustomerFactory(
        workspace=workspace_a, email="peter@initech.test", name="Peter", company=company
    )
    team = TeamFactory(workspace=workspace_a, name="Hardware")
    category = CategoryFactory(workspace=workspace_a, name="Printers")
    ticket = write_in(customer, "TPS reports", assignee=bob, team=team, category=category)
    ticket_update(ticket=ticket, actor=Actor.for_agent(bob), tags=["vip", "Billing"])

    (item,) = alice_api.get("/v1/tickets").json()["results"]

    assert item["number"] == ticket.number
    assert item["subject"] == "TPS reports"
    assert (item["status"], item["priority"], item["channel"]) == ("open", "normal", "email")
    assert item["customer"] == {"id": customer.pk, "name": "Peter", "email": "peter@initech.test"}
    assert item["company"] == {"id": company.pk, "name": "Initech"}
    assert item["assignee"] == {"id": bob.pk, "name": "Bob Agent"}
    assert item["team"] == {"id": team.pk, "name": "Hardware"}
    assert item["category"] == {"id": category.pk, "name": "Printers"}
    assert item["tags"] == ["Billing", "vip"]
    assert item["merged_into"] is None


def _busy_tickets(workspace: Workspace, count: int, start: int) -> Any:
    """Tickets with every embedded object set, written directly (fast and many)."""
    agent = AgentFactory(workspace=workspace)
    team = TeamFactory(workspace=workspace)
    category = CategoryFactory(workspace=workspace)
    company = CompanyFactory(workspace=workspace)
    tags = [TagFactory(workspace=workspace) for _ in range(2)]
    for n in range(start, start + count):
        customer = CustomerFactory(workspace=workspace, company=company)
        ticket = TicketFactory(
            workspace=workspace,
            number=n,
            customer=customer,
            company=company,
            assignee=agent,
            team=team,
            category=category,
        )
        TicketTag.objects.bulk_create(
            [TicketTag(workspace=workspace, ticket=ticket, tag=tag) for tag in tags]
        )
    return team


def test_the_list_issues_the_same_four_queries_for_5_and_100_tickets(
    alice_api: APIClient, workspace_a: Workspace
) -> None:
    _busy_tickets(workspace_a, 5, start=1)
    response, five = queries_of(lambda: alice_api.get("/v1/tickets?page_size=100"))
    assert len(response.json()["results"]) == 5

    _busy_tickets(workspace_a, 95, start=6)
    response, hundred = queries_of(lambda: alice_api.get("/v1/tickets?page_size=100"))
    assert len(response.json()["results"]) == 100

    # 1. the token's agent, with its user and workspace (authentication)
    # 2. the page of tickets, joined to customer, company, team and category, with the
    #    merge target's number as a subquery
    # 3. the assignees of the page's tickets with their users (prefetch)
    # 4. the tags of the page's tickets (prefetch)
    assert len(five) == len(hundred) == 4, hundred
    assert "workspaces_agent" in hundred[0]
    assert "tickets_ticket" in hundred[1] and "workspaces_customer" in hundred[1]
    assert "workspaces_agent" in hundred[2] and "workspaces_user" in hundred[2]
    assert "tickets_tickettag" in hundred[3]


def test_filters_with_references_add_one_exists_query_each(
    alice_api: APIClient, workspace_a: Workspace
) -> None:
    team = _busy_tickets(workspace_a, 5, start=1)
    response, plain = queries_of(lambda: alice_api.get("/v1/tickets?status=new,open"))
    assert len(response.json()["results"]) == 5
    response, with_team = queries_of(lambda: alice_api.get(f"/v1/tickets?team={team.pk}"))
    assert len(response.json()["results"]) == 5
    # The team's existence in the workspace is checked once before listing.
    assert len(with_team) == len(plain) + 1


def test_b_tickets_never_appear_in_a_list(
    alice_api: APIClient, ticket_a: Ticket, ticket_b: Ticket, ticket_a2: Ticket
) -> None:
    assert numbers(alice_api.get("/v1/tickets")) == [ticket_a2.number, ticket_a.number]
    subjects = [t["subject"] for t in alice_api.get("/v1/tickets").json()["results"]]
    assert "Cannot log in" not in subjects


def test_deleted_tickets_are_not_listed(
    alice_api: APIClient, alice: Agent, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    ticket_delete(ticket=ticket_a2, actor=Actor.for_agent(alice))
    assert numbers(alice_api.get("/v1/tickets")) == [ticket_a.number]


def test_filter_by_several_statuses_repeated_or_comma_separated(
    alice_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    new = write_in(customer_a, "new one")
    opened = write_in(customer_a, "open one", assignee=bob)
    pending = write_in(customer_a, "pending one", status=TicketStatus.PENDING)
    write_in(customer_a, "closed one", status=TicketStatus.CLOSED)

    expected = {new.number, opened.number, pending.number}
    assert set(numbers(alice_api.get("/v1/tickets?status=new,open,pending"))) == expected
    assert (
        set(numbers(alice_api.get("/v1/tickets?status=new&status=open&status=pending"))) == expected
    )
    assert numbers(alice_api.get("/v1/tickets?status=open")) == [opened.number]


def test_filter_by_assignee_me_none_and_id(
    client_for: Any, alice: Agent, bob: Agent, customer_a: Customer
) -> None:
    mine = write_in(customer_a, "bob's", assignee=bob)
    alices = write_in(customer_a, "alice's", assignee=alice)
    nobodys = write_in(customer_a, "nobody's")

    assert numbers(client_for(bob).get("/v1/tickets?assignee=me")) == [mine.number]
    assert numbers(client_for(alice).get("/v1/tickets?assignee=me")) == [alices.number]
    assert numbers(client_for(alice).get("/v1/tickets?assignee=none")) == [nobodys.number]
    assert numbers(client_for(alice).get(f"/v1/tickets?assignee={bob.pk}")) == [mine.number]


def test_filter_by_team_category_customer_company_mailbox_channel_priority_and_tag(
    alice_api: APIClient, bob: Agent, workspace_a: Workspace, customer_a: Customer
) -> None:
    team = TeamFactory(workspace=workspace_a)
    category = CategoryFactory(workspace=workspace_a)
    company = CompanyFactory(workspace=workspace_a)
    other = CustomerFactory(workspace=workspace_a, company=company)
    mailbox = MailboxConnection.objects.create(
        workspace=workspace_a, provider="imap", email_address="help@a.test"
    )
    plain = write_in(customer_a, "plain")
    teamed = write_in(customer_a, "teamed", team=team, priority="urgent")
    categorised = write_in(customer_a, "categorised", category=category)
    companys = write_in(other, "company's", mailbox=mailbox)
    ticket_update(ticket=plain, actor=Actor.for_agent(bob), tags=["VIP"])

    assert numbers(alice_api.get(f"/v1/tickets?team={team.pk}")) == [teamed.number]
    assert teamed.number not in numbers(alice_api.get("/v1/tickets?team=none"))
    assert numbers(alice_api.get(f"/v1/tickets?category={category.pk}")) == [categorised.number]
    assert numbers(alice_api.get(f"/v1/tickets?customer={other.pk}")) == [companys.number]
    assert numbers(alice_api.get(f"/v1/tickets?company={company.pk}")) == [companys.number]
    assert numbers(alice_api.get(f"/v1/tickets?mailbox={mailbox.pk}")) == [companys.number]
    assert numbers(alice_api.get("/v1/tickets?priority=urgent,high")) == [teamed.number]
    assert numbers(alice_api.get("/v1/tickets?tag=vip")) == [plain.number]
    assert numbers(alice_api.get("/v1/tickets?tag=nonexistent")) == []
    assert set(numbers(alice_api.get("/v1/tickets?channel=email"))) == {
        plain.number,
        teamed.number,
        categorised.number,
        companys.number,
    }
    assert numbers(alice_api.get("/v1/tickets?channel=api")) == []


def test_filter_by_created_and_updated_time(
    alice_api: APIClient, customer_a: Customer, bob: Agent
) -> None:
    old = write_in(customer_a, "old")
    Ticket.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10),
        updated_at=timezone.now() - timedelta(days=9),
    )
    recent = write_in(customer_a, "recent")
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()

    assert numbers(alice_api.get("/v1/tickets", {"created_after": cutoff})) == [recent.number]
    assert numbers(alice_api.get("/v1/tickets", {"created_before": cutoff})) == [old.number]
    assert numbers(alice_api.get("/v1/tickets", {"updated_after": cutoff})) == [recent.number]
    assert numbers(alice_api.get("/v1/tickets", {"updated_before": cutoff})) == [old.number]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("priority=highest", "priority"),
        ("channel=fax", "channel"),
        ("assignee=someone", "assignee"),
        ("assignee=-3", "assignee"),
        ("team=abc", "team"),
        ("customer=0", "customer"),
        ("created_after=yesterday", "created_after"),
        ("ordering=subject", "ordering"),
        ("q=" + "x" * 201, "q"),
        ("colour=red", "colour"),
        ("page_size=101", "page_size"),
        (
            "created_after=2024-02-01T00:00:00Z&created_before=2024-01-01T00:00:00Z",
            "created_before",
        ),
    ],
)
def test_every_query_parameter_is_validated(
    alice_api: APIClient, ticket_a: Ticket, query: str, field: str
) -> None:
    response = alice_api.get(f"/v1/tickets?{query}")
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field]


@pytest.mark.parametrize(
    "param", ["assignee", "team", "category", "company", "mailbox", "customer"]
)
def test_a_reference_to_another_workspace_is_a_400_naming_the_parameter(
    alice_api: APIClient, workspace_b: Workspace, charlie: Agent, customer_b: Customer, param: str
) -> None:
    foreign = {
        "assignee": charlie,
        "team": TeamFactory(workspace=workspace_b),
        "category": CategoryFactory(workspace=workspace_b),
        "company": CompanyFactory(workspace=workspace_b),
        "mailbox": MailboxConnection.objects.create(
            workspace=workspace_b, provider="imap", email_address="help@b.test"
        ),
        "customer": customer_b,
    }[param]

    response = alice_api.get(f"/v1/tickets?{param}={foreign.pk}")

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid_reference"
    assert list(body["fields"]) == [param]
    # Exactly what an id that exists nowhere answers.
    missing = error(alice_api.get(f"/v1/tickets?{param}=99999999"))
    assert (missing["code"], missing["fields"]) == (body["code"], body["fields"])


def test_ordering(alice_api: APIClient, customer_a: Customer, bob: Agent) -> None:
    first = write_in(customer_a, "first")
    second = write_in(customer_a, "second")
    third = write_in(customer_a, "third")
    # Touch the first: it is the most recently updated now.
    ticket_update(ticket=first, actor=Actor.for_agent(bob), priority="high")

    assert numbers(alice_api.get("/v1/tickets")) == [first.number, third.number, second.number]
    assert numbers(alice_api.get("/v1/tickets?ordering=number")) == [
        first.number,
        second.number,
        third.number,
    ]
    assert numbers(alice_api.get("/v1/tickets?ordering=-created_at")) == [
        third.number,
        second.number,
        first.number,
    ]
    assert numbers(alice_api.get("/v1/tickets?ordering=updated_at")) == [
        second.number,
        third.number,
        first.number,
    ]


def test_cursor_pages_cover_every_ticket_once_while_tickets_are_added(
    alice_api: APIClient, customer_a: Customer
) -> None:
    created = [write_in(customer_a, f"ticket {n}").number for n in range(7)]
    seen: list[int] = []
    response = alice_api.get("/v1/tickets?page_size=3&ordering=number")
    seen += numbers(response)
    write_in(customer_a, "arrives while paging")  # after the last page in this order... or not
    while response.json()["next"]:
        response = alice_api.get(response.json()["next"])
        seen += numbers(response)
    assert seen[:7] == created
    assert len(seen) == len(set(seen)) == 8


# --- Search ---------------------------------------------------------------------------------


def test_search_finds_words_in_the_subject_and_in_comments(
    alice_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    by_subject = write_in(customer_a, "Printer on fire", body_text="Help!")
    by_comment = write_in(customer_a, "Question", body_text="My invoice number is wrong")
    by_note = write_in(customer_a, "Another question", body_text="Hello")
    comment_create(
        ticket=by_note,
        actor=Actor.for_agent(bob),
        body_text="Escalated to the refund desk",
        internal=True,
    )
    write_in(customer_a, "Unrelated", body_text="Nothing to see")

    assert numbers(alice_api.get("/v1/tickets?q=printer")) == [by_subject.number]
    # Every word must occur, each as a prefix (so "invoi" finds "invoice").
    assert numbers(alice_api.get("/v1/tickets?q=invoi number")) == [by_comment.number]
    assert numbers(alice_api.get("/v1/tickets?q=invoice printer")) == []
    # Internal notes are searched too: only agents search.
    assert numbers(alice_api.get("/v1/tickets?q=refund")) == [by_note.number]
    # Case does not matter.
    assert numbers(alice_api.get("/v1/tickets?q=PRINTER")) == [by_subject.number]
    # A number finds that ticket.
    assert numbers(alice_api.get(f"/v1/tickets?q=%23{by_comment.number}")) == [by_comment.number]


def test_search_combines_with_filters(
    alice_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    write_in(customer_a, "Printer on fire")
    assigned = write_in(customer_a, "Printer jammed", assignee=bob)
    assert numbers(alice_api.get(f"/v1/tickets?q=printer&assignee={bob.pk}")) == [assigned.number]


def test_search_never_finds_another_workspaces_tickets(
    alice_api: APIClient, charlie: Agent, ticket_a: Ticket, ticket_b: Ticket, customer_b: Customer
) -> None:
    # B's ticket says "printer" too, in its subject and in a comment.
    write_in(customer_b, "Printer smoking", body_text="printer printer printer")
    comment_create(ticket=ticket_b, actor=Actor.for_agent(charlie), body_text="printer")

    assert numbers(alice_api.get("/v1/tickets?q=printer")) == [ticket_a.number]
    assert numbers(alice_api.get("/v1/tickets?q=login")) == []


def test_a_search_without_words_matches_nothing(alice_api: APIClient, ticket_a: Ticket) -> None:
    assert numbers(alice_api.get("/v1/tickets?q=%21%21%21")) == []
    # Blank is no search at all.
    assert numbers(alice_api.get("/v1/tickets?q=%20")) == [ticket_a.number]


@pytest.mark.postgres_only
def test_postgresql_search_matches_word_prefixes_not_substrings(
    alice_api: APIClient, customer_a: Customer
) -> None:
    ticket = write_in(customer_a, "Firewall rules", body_text="Blocked port")
    assert numbers(alice_api.get("/v1/tickets?q=firew")) == [ticket.number]
    # Full-text search matches words from their start: "wall" is inside, not a prefix.
    assert numbers(alice_api.get("/v1/tickets?q=wall")) == []


# --- Create ---------------------------------------------------------------------------------


def test_an_agent_opens_a_ticket_for_a_new_customer(
    bob_api: APIClient, bob: Agent, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    category = CategoryFactory(workspace=workspace_a)

    response = bob_api.post(
        "/v1/tickets",
        {
            "subject": "  Laptop   won't boot ",
            "body": "It beeps three times.",
            "customer": {"email": "New.Person@Example.test", "name": "New Person"},
            "priority": "high",
            "assignee_id": bob.pk,
            "team_id": team.pk,
            "category_id": category.pk,
            "tags": ["hardware", "Hardware", "laptop"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == f"/v1/tickets/{body['number']}"
    assert body["subject"] == "Laptop won't boot"
    assert (body["channel"], body["status"], body["priority"]) == ("api", "open", "high")
    assert body["customer"]["email"] == "new.person@example.test"
    assert body["assignee"] == {"id": bob.pk, "name": "Bob Agent"}
    assert body["team"]["id"] == team.pk and body["category"]["id"] == category.pk
    assert body["tags"] == ["hardware", "laptop"]
    assert body["body"]["text"] == "It beeps three times."
    assert body["counts"] == {"public_replies": 1, "internal_notes": 0, "attachments": 0}
    ticket = Ticket.objects.get(workspace=workspace_a, number=body["number"])
    first = Comment.objects.get(ticket=ticket)
    assert (first.author_agent, first.via, first.is_internal) == (bob, "api", False)
    assert TicketEvent.objects.filter(ticket=ticket, kind="created").exists()


def test_a_ticket_for_an_existing_customer_by_id(
    alice_api: APIClient, customer_a: Customer
) -> None:
    response = alice_api.post(
        "/v1/tickets",
        {"subject": "Hello", "body": "Hi", "customer_id": customer_a.pk},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["customer"]["id"] == customer_a.pk
    assert response.json()["status"] == "new"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"subject"}),
        ({"subject": "x", "body": "y"}, {"customer"}),
        (
            {"subject": "x", "body": "y", "customer_id": 1, "customer": {"email": "a@b.test"}},
            {"customer"},
        ),
        ({"subject": "x", "body": "y", "customer": {"email": "not-an-email"}}, {"customer.email"}),
        ({"subject": "x" * 999, "body": "y", "customer": {"email": "a@b.test"}}, {"subject"}),
        (
            {"subject": "x", "body": "y", "customer": {"email": "a@b.test"}, "priority": "meh"},
            {"priority"},
        ),
        (
            {"subject": "x", "body": "y", "customer": {"email": "a@b.test"}, "status": "done"},
            {"status"},
        ),
        (
            {"subject": "x", "body": "y", "customer": {"email": "a@b.test"}, "tags": "one"},
            {"tags"},
        ),
        (
            {"subject": "x", "body": "y", "customer": {"email": "a@b.test"}, "team_id": "a"},
            {"team_id"},
        ),
    ],
)
def test_create_validation_errors_name_their_fields(
    alice_api: APIClient, body: dict[str, Any], fields: set[str]
) -> None:
    response = alice_api.post("/v1/tickets", body, format="json")
    assert response.status_code == 400
    assert set(error(response)["fields"]) == fields
    assert not Ticket.objects.exists()


def test_a_ticket_needs_a_body(alice_api: APIClient) -> None:
    response = alice_api.post(
        "/v1/tickets",
        {"subject": "x", "body": "   ", "customer": {"email": "a@b.test"}},
        format="json",
    )
    assert response.status_code == 400
    assert error(response)["fields"] == {"body": ["The first message needs a body."]}
    # The customer was not created either: it commits with the ticket or not at all.
    assert not Customer.objects.filter(email="a@b.test").exists()


@pytest.mark.parametrize("field", ["assignee_id", "team_id", "category_id", "customer_id"])
def test_create_refuses_another_workspaces_objects(
    alice_api: APIClient,
    charlie: Agent,
    workspace_b: Workspace,
    customer_b: Customer,
    field: str,
) -> None:
    foreign = {
        "assignee_id": charlie.pk,
        "team_id": TeamFactory(workspace=workspace_b).pk,
        "category_id": CategoryFactory(workspace=workspace_b).pk,
        "customer_id": customer_b.pk,
    }
    body: dict[str, Any] = {"subject": "x", "body": "y", field: foreign[field]}
    if field != "customer_id":
        body["customer"] = {"email": "a@b.test"}

    response = alice_api.post("/v1/tickets", body, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_reference"
    assert list(error(response)["fields"]) == [field]
    assert (
        not Ticket.objects.filter(workspace=customer_b.workspace)
        .exclude(customer=customer_b)
        .exists()
    )
    assert Ticket.objects.count() == 0


def test_light_agents_cannot_open_tickets(client_for: Any, lena: Agent) -> None:
    response = client_for(lena).post(
        "/v1/tickets",
        {"subject": "x", "body": "y", "customer": {"email": "a@b.test"}},
        format="json",
    )
    assert response.status_code == 403
    assert error(response)["code"] == "light_agent"


def test_a_replayed_create_with_an_idempotency_key_creates_one_ticket(
    alice_api: APIClient, workspace_a: Workspace
) -> None:
    body = {"subject": "Once", "body": "Only once", "customer": {"email": "a@b.test"}}
    first = alice_api.post("/v1/tickets", body, format="json", HTTP_IDEMPOTENCY_KEY="k-123")
    second = alice_api.post("/v1/tickets", body, format="json", HTTP_IDEMPOTENCY_KEY="k-123")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Ticket.objects.filter(workspace=workspace_a).count() == 1
    # Another body under the same key is refused.
    other = alice_api.post(
        "/v1/tickets", {**body, "subject": "Twice"}, format="json", HTTP_IDEMPOTENCY_KEY="k-123"
    )
    assert other.status_code == 409
    assert error(other)["code"] == "idempotency_key_reused"


# --- Read -----------------------------------------------------------------------------------


def test_one_ticket_with_its_first_message_and_counts(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket
) -> None:
    comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="On it")
    comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Hm", internal=True)

    response, queries = queries_of(lambda: bob_api.get(f"/v1/tickets/{ticket_a.number}"))

    assert response.status_code == 200
    body = response.json()
    assert body["number"] == ticket_a.number
    assert body["body"] == {
        "text": "Our printer is on fire again. Please help.",
        "html": "<p>Our printer is on fire again. Please help.</p>",
    }
    assert body["counts"] == {"public_replies": 2, "internal_notes": 1, "attachments": 0}
    assert body["deleted_at"] is None
    # The agent; the ticket with its embeds, body and counts (subqueries); its tags.
    assert len(queries) == 3, queries


def test_charlie_gets_404_for_a_ticket_of_a(
    charlie_api: APIClient, ticket_a2: Ticket, ticket_b: Ticket
) -> None:
    response = charlie_api.get(f"/v1/tickets/{ticket_a2.number}")
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"
    # Exactly as for a number that exists nowhere.
    assert error(charlie_api.get("/v1/tickets/999"))["code"] == "not_found"
    for method, path in [
        ("patch", ""),
        ("delete", ""),
        ("post", "/reply"),
        ("post", "/assign"),
        ("post", "/merge"),
        ("post", "/restore"),
        ("get", "/comments"),
        ("get", "/events"),
    ]:
        response = getattr(charlie_api, method)(
            f"/v1/tickets/{ticket_a2.number}{path}", {}, format="json"
        )
        assert response.status_code == 404, (method, path, response.json())
    assert Ticket.objects.get(pk=ticket_a2.pk).deleted_at is None


def test_a_deleted_ticket_answers_404(alice_api: APIClient, alice: Agent, ticket_a: Ticket) -> None:
    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))
    assert alice_api.get(f"/v1/tickets/{ticket_a.number}").status_code == 404
    assert alice_api.get(f"/v1/tickets/{ticket_a.number}/comments").status_code == 404


def test_a_number_beyond_any_ticket_is_a_404(alice_api: APIClient) -> None:
    assert alice_api.get("/v1/tickets/99999999999999999999").status_code == 404
    assert alice_api.get("/v1/tickets/abc").status_code == 404


# --- Change ---------------------------------------------------------------------------------


def test_patch_changes_fields_through_the_service(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    response = bob_api.patch(
        f"/v1/tickets/{ticket_a.number}",
        {
            "subject": "Printer on fire (again)",
            "priority": "urgent",
            "assignee_id": bob.pk,
            "team_id": team.pk,
            "tags": ["fire"],
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["subject"] == "Printer on fire (again)"
    assert (body["priority"], body["status"]) == ("urgent", "open")
    assert body["assignee"]["id"] == bob.pk and body["team"]["id"] == team.pk
    assert body["tags"] == ["fire"]
    fields = set(
        TicketEvent.objects.filter(
            ticket=ticket_a, kind__in=["field_changed", "tags_changed"]
        ).values_list("field", flat=True)
    )
    assert fields == {"subject", "priority", "assignee", "team", "status", "tags"}


def test_patch_null_clears_and_absent_keys_stay(
    bob_api: APIClient, bob: Agent, customer_a: Customer, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    ticket = write_in(customer_a, assignee=bob, team=team)

    response = bob_api.patch(f"/v1/tickets/{ticket.number}", {"assignee_id": None}, format="json")

    assert response.status_code == 200
    assert response.json()["assignee"] is None
    assert response.json()["team"]["id"] == team.pk


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"status": "done"}, "status"),
        ({"priority": 3}, "priority"),
        ({"subject": ""}, "subject"),
        ({"tags": ["x" * 65]}, "tags.0"),
        ({"assignee_id": "me"}, "assignee_id"),
    ],
)
def test_patch_validation_errors_name_their_fields(
    bob_api: APIClient, ticket_a: Ticket, body: dict[str, Any], field: str
) -> None:
    response = bob_api.patch(f"/v1/tickets/{ticket_a.number}", body, format="json")
    assert response.status_code == 400
    assert list(error(response)["fields"]) == [field]


@pytest.mark.parametrize("field", ["assignee_id", "team_id", "category_id"])
def test_patch_refuses_another_workspaces_objects(
    bob_api: APIClient, ticket_a: Ticket, charlie: Agent, workspace_b: Workspace, field: str
) -> None:
    foreign = {
        "assignee_id": charlie.pk,
        "team_id": TeamFactory(workspace=workspace_b).pk,
        "category_id": CategoryFactory(workspace=workspace_b).pk,
    }[field]

    response = bob_api.patch(f"/v1/tickets/{ticket_a.number}", {field: foreign}, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_reference"
    assert list(error(response)["fields"]) == [field]
    ticket_a.refresh_from_db()
    assert (ticket_a.assignee_id, ticket_a.team_id, ticket_a.category_id) == (None, None, None)


def test_light_agents_cannot_change_tickets(client_for: Any, lena: Agent, ticket_a: Ticket) -> None:
    api = client_for(lena)
    assert api.get(f"/v1/tickets/{ticket_a.number}").status_code == 200
    for method, path, body in [
        ("patch", "", {"priority": "high"}),
        ("post", "/assign", {"agent_id": lena.pk}),
        ("post", "/merge", {"into": 1}),
        ("delete", "", None),
    ]:
        response = getattr(api, method)(f"/v1/tickets/{ticket_a.number}{path}", body, format="json")
        assert response.status_code == 403
        assert error(response)["code"] == "light_agent"
    bulk = api.post("/v1/tickets/bulk", {"ids": [1], "changes": {"status": "open"}}, format="json")
    assert bulk.status_code == 403


def test_assign_to_an_agent_and_a_team_and_unassign(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    url = f"/v1/tickets/{ticket_a.number}/assign"

    response = bob_api.post(url, {"agent_id": bob.pk, "team_id": team.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["assignee"]["id"] == bob.pk
    assert response.json()["team"]["id"] == team.pk

    response = bob_api.post(url, {"agent_id": None}, format="json")
    assert response.json()["assignee"] is None
    assert response.json()["team"]["id"] == team.pk


def test_assign_validation(
    bob_api: APIClient, ticket_a: Ticket, charlie: Agent, workspace_a: Workspace
) -> None:
    url = f"/v1/tickets/{ticket_a.number}/assign"
    assert error(bob_api.post(url, {}, format="json"))["fields"] == {
        "non_field_errors": ["Give agent_id, team_id or both."]
    }
    foreign = bob_api.post(url, {"agent_id": charlie.pk}, format="json")
    assert (foreign.status_code, error(foreign)["code"]) == (400, "invalid_reference")
    assert list(error(foreign)["fields"]) == ["agent_id"]
    inactive = AgentFactory(workspace=workspace_a, is_active=False)
    refused = bob_api.post(url, {"agent_id": inactive.pk}, format="json")
    assert (refused.status_code, error(refused)["code"]) == (400, "agent_inactive")


# --- Merge ----------------------------------------------------------------------------------


def test_merge_moves_the_thread_and_returns_the_target(
    bob_api: APIClient, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    response = bob_api.post(
        f"/v1/tickets/{ticket_a2.number}/merge", {"into": ticket_a.number}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["number"] == ticket_a.number
    assert response.json()["counts"]["public_replies"] == 2
    merged = bob_api.get(f"/v1/tickets/{ticket_a2.number}").json()
    assert (merged["status"], merged["merged_into"]) == ("closed", ticket_a.number)


def test_merge_errors(
    bob_api: APIClient, ticket_a: Ticket, ticket_a2: Ticket, ticket_b: Ticket
) -> None:
    url = f"/v1/tickets/{ticket_a2.number}/merge"
    assert list(error(bob_api.post(url, {}, format="json"))["fields"]) == ["into"]
    missing = bob_api.post(url, {"into": 404}, format="json")
    assert (missing.status_code, error(missing)["code"]) == (400, "invalid_reference")
    itself = bob_api.post(url, {"into": ticket_a2.number}, format="json")
    assert (itself.status_code, error(itself)["fields"]) == (
        400,
        {"into": [error(itself)["message"]]},
    )
    bob_api.post(url, {"into": ticket_a.number}, format="json")
    again = bob_api.post(url, {"into": ticket_a.number}, format="json")
    assert (again.status_code, error(again)["code"]) == (409, "ticket_merged")


def test_merge_into_a_number_that_only_another_workspace_has_is_a_400(
    charlie_api: APIClient, ticket_a2: Ticket, ticket_b: Ticket
) -> None:
    # A has #1 and #2, B only #1: for Charlie, #2 does not exist.
    response = charlie_api.post(
        f"/v1/tickets/{ticket_b.number}/merge", {"into": ticket_a2.number}, format="json"
    )
    assert (response.status_code, error(response)["code"]) == (400, "invalid_reference")
    assert Ticket.objects.get(pk=ticket_b.pk).merged_into_id is None
    assert (
        not Comment.objects.filter(ticket=ticket_a2).exclude(workspace=ticket_a2.workspace).exists()
    )


# --- Delete and restore ---------------------------------------------------------------------


def test_admins_delete_and_restore(
    alice_api: APIClient, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    response = alice_api.delete(f"/v1/tickets/{ticket_a2.number}")
    assert response.status_code == 204
    assert Ticket.objects.get(pk=ticket_a2.pk).deleted_at is not None
    assert numbers(alice_api.get("/v1/tickets")) == [ticket_a.number]

    response = alice_api.post(f"/v1/tickets/{ticket_a2.number}/restore")
    assert response.status_code == 200
    assert response.json()["deleted_at"] is None
    assert set(numbers(alice_api.get("/v1/tickets"))) == {ticket_a.number, ticket_a2.number}
    kinds = list(TicketEvent.objects.filter(ticket=ticket_a2).values_list("kind", flat=True))
    assert kinds[-2:] == ["deleted", "restored"]


def test_restoring_a_ticket_that_is_not_deleted_is_a_409(
    alice_api: APIClient, ticket_a: Ticket
) -> None:
    response = alice_api.post(f"/v1/tickets/{ticket_a.number}/restore")
    assert (response.status_code, error(response)["code"]) == (409, "not_deleted")


def test_agents_may_not_delete_or_restore(
    bob_api: APIClient, alice: Agent, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    response = bob_api.delete(f"/v1/tickets/{ticket_a.number}")
    assert (response.status_code, error(response)["code"]) == (403, "admin_required")
    ticket_delete(ticket=ticket_a2, actor=Actor.for_agent(alice))
    response = bob_api.post(f"/v1/tickets/{ticket_a2.number}/restore")
    assert (response.status_code, error(response)["code"]) == (403, "admin_required")


def test_charlie_cannot_restore_a_deleted_ticket_of_a(
    charlie_api: APIClient, alice: Agent, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    ticket_delete(ticket=ticket_a2, actor=Actor.for_agent(alice))
    assert charlie_api.post(f"/v1/tickets/{ticket_a2.number}/restore").status_code == 404
    assert Ticket.objects.get(pk=ticket_a2.pk).deleted_at is not None


# --- Bulk -----------------------------------------------------------------------------------


def test_bulk_applies_each_change_and_reports_each_ticket(
    bob_api: APIClient, bob: Agent, customer_a: Customer, workspace_a: Workspace
) -> None:
    first = write_in(customer_a, "one")
    second = write_in(customer_a, "two")
    merged = write_in(customer_a, "three")
    ticket_merge(source=merged, target=first, actor=Actor.for_agent(bob))
    ticket_update(ticket=second, actor=Actor.for_agent(bob), tags=["old", "keep"])

    response = bob_api.post(
        "/v1/tickets/bulk",
        {
            "ids": [first.number, 404, merged.number, second.number],
            "changes": {
                "status": "pending",
                "assignee_id": bob.pk,
                "add_tags": ["Bulk"],
                "remove_tags": ["OLD"],
            },
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    results = {r["number"]: r for r in response.json()["results"]}
    assert [r["number"] for r in response.json()["results"]] == [
        first.number,
        404,
        merged.number,
        second.number,
    ]
    assert results[first.number]["ok"] is True
    assert set(results[first.number]["changed"]) == {"status", "assignee", "tags"}
    assert results[404] == {
        "number": 404,
        "ok": False,
        "error": {"code": "not_found", "message": "Ticket not found."},
    }
    assert results[merged.number]["ok"] is False
    assert results[merged.number]["error"]["code"] == "ticket_merged"
    assert results[second.number]["ok"] is True
    second.refresh_from_db()
    assert (second.status, second.assignee_id) == ("pending", bob.pk)
    assert sorted(second.tags.values_list("name", flat=True)) == ["Bulk", "keep"]
    # One history row per change, as from PATCH.
    assert TicketEvent.objects.filter(ticket=second, field="status").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"changes": {"status": "open"}}, "ids"),
        ({"ids": [], "changes": {"status": "open"}}, "ids"),
        ({"ids": list(range(1, 102)), "changes": {"status": "open"}}, "ids"),
        ({"ids": [1]}, "changes"),
        ({"ids": [1], "changes": {}}, "changes.non_field_errors"),
        ({"ids": [1], "changes": {"status": "bogus"}}, "changes.status"),
        ({"ids": ["one"], "changes": {"status": "open"}}, "ids.0"),
    ],
)
def test_bulk_validation(
    bob_api: APIClient, ticket_a: Ticket, body: dict[str, Any], field: str
) -> None:
    response = bob_api.post("/v1/tickets/bulk", body, format="json")
    assert response.status_code == 400
    assert list(error(response)["fields"]) == [field]


def test_bulk_refuses_another_workspaces_team_for_the_whole_request(
    bob_api: APIClient, ticket_a: Ticket, workspace_b: Workspace
) -> None:
    team_b = TeamFactory(workspace=workspace_b)
    response = bob_api.post(
        "/v1/tickets/bulk",
        {"ids": [ticket_a.number], "changes": {"team_id": team_b.pk}},
        format="json",
    )
    assert (response.status_code, error(response)["code"]) == (400, "invalid_reference")
    assert list(error(response)["fields"]) == ["changes.team_id"]
    assert Ticket.objects.get(pk=ticket_a.pk).team_id is None


def test_bulk_never_touches_another_workspaces_tickets(
    charlie_api: APIClient, ticket_a: Ticket, ticket_a2: Ticket, ticket_b: Ticket
) -> None:
    response = charlie_api.post(
        "/v1/tickets/bulk",
        {"ids": [ticket_a2.number], "changes": {"status": "closed"}},
        format="json",
    )
    assert response.json()["results"] == [
        {
            "number": ticket_a2.number,
            "ok": False,
            "error": {"code": "not_found", "message": "Ticket not found."},
        }
    ]
    assert Ticket.objects.get(pk=ticket_a2.pk).status == "new"


def test_tags_are_reused_case_insensitively(
    bob_api: APIClient, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    Tag.objects.create(workspace=workspace_a, name="VIP")
    bob_api.patch(f"/v1/tickets/{ticket_a.number}", {"tags": ["vip"]}, format="json")
    assert list(Tag.objects.for_workspace(workspace_a).values_list("name", flat=True)) == ["VIP"]
