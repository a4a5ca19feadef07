"""GET /v1/export/tickets: every change, in a resumable stream that misses none.

Alice is an admin of workspace A, Bob an agent there; Carol is a customer of A. Charlie is
the admin of workspace B.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from enque.tests.factories import TicketFactory
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import comment_create, ticket_delete, ticket_update
from tickets.tests.api_support import error, light_agent, queries_of, write_in
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db

URL = "/v1/export/tickets"


@pytest.fixture(autouse=True)
def no_settle_time(settings: Any) -> None:
    # The stream normally stays 5 s behind the present (see tickets/api/export.py); the
    # tests change tickets and read them back at once.
    settings.TICKET_EXPORT_SETTLE_SECONDS = 0


@pytest.fixture
def bob_api(client_for: Any, bob: Agent) -> APIClient:
    return client_for(bob)


def drain(api: APIClient, *, cursor: str | None = None, page_size: int = 2) -> tuple[list, str]:
    """Every page until end_of_stream: the exported (number, subject) pairs and the cursor."""
    seen = []
    params: dict[str, Any] = {"page_size": page_size}
    if cursor:
        params["cursor"] = cursor
    while True:
        response = api.get(URL, params)
        assert response.status_code == 200, response.json()
        body = response.json()
        seen += [(t["number"], t["subject"]) for t in body["results"]]
        params["cursor"] = body["next_cursor"]
        if body["end_of_stream"]:
            return seen, body["next_cursor"]


def test_the_stream_returns_every_ticket_in_change_order(
    bob_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    tickets = [write_in(customer_a, f"ticket {n}") for n in range(5)]
    ticket_update(ticket=tickets[1], actor=Actor.for_agent(bob), priority="high")

    seen, _ = drain(bob_api)

    order = [0, 2, 3, 4, 1]
    assert seen == [(tickets[n].number, f"ticket {n}") for n in order]


def test_a_change_made_while_paging_is_not_missed(
    bob_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    tickets = [write_in(customer_a, f"ticket {n}") for n in range(6)]

    first = bob_api.get(URL, {"page_size": 2}).json()
    assert [t["number"] for t in first["results"]] == [tickets[0].number, tickets[1].number]
    # While the client pages: one ticket it already has changes, one it has not reached
    # yet changes, and a new one arrives.
    ticket_update(ticket=tickets[0], actor=Actor.for_agent(bob), subject="ticket 0, renamed")
    comment_create(ticket=tickets[3], actor=Actor.for_agent(bob), body_text="A reply")
    new = write_in(customer_a, "brand new")

    rest, cursor = drain(bob_api, cursor=first["next_cursor"])

    numbers = [number for number, _ in rest]
    assert numbers == [
        tickets[2].number,
        tickets[4].number,
        tickets[5].number,
        tickets[0].number,
        tickets[3].number,
        new.number,
    ]
    assert (tickets[0].number, "ticket 0, renamed") in rest
    # Caught up: the last cursor yields nothing more until something changes.
    assert drain(bob_api, cursor=cursor) == ([], cursor)
    ticket_update(ticket=tickets[5], actor=Actor.for_agent(bob), priority="urgent")
    assert drain(bob_api, cursor=cursor)[0] == [(tickets[5].number, "ticket 5")]


def test_tickets_changing_in_the_same_microsecond_are_paged_by_id(
    bob_api: APIClient, workspace_a: Workspace
) -> None:
    same = timezone.now() - timedelta(minutes=1)
    created = [TicketFactory(workspace=workspace_a, number=n + 1) for n in range(5)]
    Ticket.objects.filter(pk__in=[t.pk for t in created]).update(updated_at=same)

    seen, _ = drain(bob_api, page_size=2)

    assert [number for number, _ in seen] == [1, 2, 3, 4, 5]


def test_since_starts_at_a_time(bob_api: APIClient, customer_a: Customer) -> None:
    old = write_in(customer_a, "old")
    Ticket.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    recent = write_in(customer_a, "recent")

    response = bob_api.get(URL, {"since": (timezone.now() - timedelta(days=1)).isoformat()})

    assert [t["number"] for t in response.json()["results"]] == [recent.number]
    assert response.json()["end_of_stream"] is True


def test_deleted_tickets_are_exported_with_their_deletion(
    bob_api: APIClient, alice: Agent, ticket_a: Ticket
) -> None:
    _, cursor = drain(bob_api)
    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))

    (item,) = bob_api.get(URL, {"cursor": cursor}).json()["results"]

    assert item["number"] == ticket_a.number
    assert item["deleted_at"] is not None


def test_the_stream_stays_behind_the_present_by_the_settle_time(
    bob_api: APIClient, customer_a: Customer, settings: Any
) -> None:
    settings.TICKET_EXPORT_SETTLE_SECONDS = 60
    older = write_in(customer_a, "older")
    Ticket.objects.filter(pk=older.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    write_in(customer_a, "just now")

    body = bob_api.get(URL).json()

    # A change younger than the settle time may still be joined by an older-stamped one
    # that has not committed yet: it comes on a later call, after the cursor.
    assert [t["subject"] for t in body["results"]] == ["older"]
    assert body["end_of_stream"] is True
    settings.TICKET_EXPORT_SETTLE_SECONDS = 0
    later = bob_api.get(URL, {"cursor": body["next_cursor"]}).json()
    assert [t["subject"] for t in later["results"]] == ["just now"]


def test_b_tickets_never_appear_in_a_export(
    bob_api: APIClient, client_for: Any, charlie: Agent, ticket_a: Ticket, ticket_b: Ticket
) -> None:
    assert drain(bob_api)[0] == [(ticket_a.number, "Printer on fire")]
    assert drain(client_for(charlie))[0] == [(ticket_b.number, "Cannot log in")]


def test_a_cursor_is_only_a_position_it_cannot_reach_another_workspace(
    bob_api: APIClient, client_for: Any, charlie: Agent, ticket_a: Ticket, ticket_b: Ticket
) -> None:
    # Charlie replays a cursor that Bob got: it still exports B's tickets only.
    cursor = bob_api.get(URL, {"since": "2000-01-01T00:00:00Z"}).json()["next_cursor"]
    response = client_for(charlie).get(URL, {"cursor": cursor})
    assert all(t["subject"] != "Printer on fire" for t in response.json()["results"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "garbage"}, "cursor"),
        ({"since": "last week"}, "since"),
        ({"since": "2024-01-01T00:00:00Z", "cursor": "x"}, "cursor"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"status": "open"}, "status"),
    ],
)
def test_parameters_are_validated(bob_api: APIClient, params: dict[str, Any], field: str) -> None:
    response = bob_api.get(URL, params)
    assert response.status_code == 400
    assert list(error(response)["fields"]) == [field]


def test_a_tampered_cursor_is_refused(bob_api: APIClient, ticket_a: Ticket) -> None:
    cursor = bob_api.get(URL).json()["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    response = bob_api.get(URL, {"cursor": tampered})
    assert (response.status_code, list(error(response)["fields"])) == (400, ["cursor"])


def test_export_takes_the_same_queries_for_5_and_100(
    bob_api: APIClient, workspace_a: Workspace
) -> None:
    for n in range(5):
        TicketFactory(workspace=workspace_a, number=n + 1)
    response, five = queries_of(lambda: bob_api.get(URL, {"page_size": 500}))
    assert len(response.json()["results"]) == 5
    for n in range(5, 100):
        TicketFactory(workspace=workspace_a, number=n + 1)
    response, hundred = queries_of(lambda: bob_api.get(URL, {"page_size": 500}))
    assert len(response.json()["results"]) == 100
    # 1. agent  2. the page of tickets, embeds joined  3. their tags
    assert len(five) == len(hundred) == 3, hundred


def test_light_agents_may_export(client_for: Any, workspace_a: Workspace, ticket_a: Ticket) -> None:
    api = client_for(light_agent(workspace_a))
    assert [t["number"] for t in api.get(URL).json()["results"]] == [ticket_a.number]


def test_export_needs_a_token(api_client: APIClient) -> None:
    assert api_client.get(URL).status_code == 401
