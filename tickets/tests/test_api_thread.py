"""A ticket's thread over /v1: replying (public, internal, scheduled), the comments and the
history lists, and /v1/scheduled-comments.

Alice is an admin of workspace A, Bob an agent there, Lena a light agent there; Carol is a
customer of A. Charlie is the admin of workspace B.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.test import APIClient

from enque.tests.factories import CommentFactory
from tickets.actors import Actor
from tickets.models import (
    Comment,
    ScheduledComment,
    ScheduledCommentStatus,
    Ticket,
    TicketAttachment,
    TicketEvent,
)
from tickets.services import comment_schedule, ticket_merge, ticket_update
from tickets.tests.api_support import (
    error,
    light_agent,
    queries_of,
    use_memory_storage,
    write_in,
)
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    use_memory_storage(settings)


@pytest.fixture
def lena(workspace_a: Workspace) -> Agent:
    return light_agent(workspace_a)


@pytest.fixture
def bob_api(client_for: Any, bob: Agent) -> APIClient:
    return client_for(bob)


@pytest.fixture
def charlie_api(client_for: Any, charlie: Agent) -> APIClient:
    return client_for(charlie)


@pytest.fixture
def ticket_a2(customer_a: Customer, ticket_a: Ticket) -> Ticket:
    """A's ticket #2: workspace B has no #2."""
    return write_in(customer_a, "Scanner jammed")


def upload(workspace: Workspace, name: str = "invoice.pdf") -> TicketAttachment:
    data = b"%PDF-1.4 a very small invoice"
    return TicketAttachment.objects.create(
        workspace=workspace,
        file=ContentFile(data, name=name),
        filename=name,
        content_type="application/pdf",
        size=len(data),
    )


def later(hours: int = 2) -> str:
    return (timezone.now() + timedelta(hours=hours)).isoformat()


# --- Reply ----------------------------------------------------------------------------------


def test_a_public_reply(bob_api: APIClient, bob: Agent, ticket_a: Ticket) -> None:
    response = bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply", {"body": "We are on our way."}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["object"] == "comment"
    assert body["ticket"] == ticket_a.number
    assert body["author"] == {
        "type": "agent",
        "agent": {"id": bob.pk, "name": "Bob Agent"},
        "customer": None,
    }
    assert (body["internal"], body["via"]) == (False, "api")
    assert body["body_text"] == "We are on our way."
    assert body["body_html"] == "<p>We are on our way.</p>"
    ticket_a.refresh_from_db()
    assert ticket_a.status == "open"
    assert ticket_a.first_response_at is not None


def test_a_reply_that_sets_the_status_and_carries_attachments(
    bob_api: APIClient, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    attachment = upload(workspace_a)
    response = bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply",
        {
            "body_html": "<p>Invoice attached.<script>alert(1)</script></p>",
            "status": "pending",
            "attachment_ids": [attachment.pk],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert "script" not in body["body_html"]
    (embedded,) = body["attachments"]
    assert embedded["id"] == attachment.pk
    assert embedded["download_url"].endswith(f"/v1/attachments/{attachment.pk}/download")
    ticket_a.refresh_from_db()
    assert ticket_a.status == "pending"
    attachment.refresh_from_db()
    assert attachment.comment_id == body["id"]


def test_an_internal_note(bob_api: APIClient, ticket_a: Ticket) -> None:
    response = bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply",
        {"body": "Premium customer", "internal": True},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["internal"] is True
    assert TicketEvent.objects.filter(ticket=ticket_a, kind="note_added").exists()


def test_a_scheduled_reply(bob_api: APIClient, bob: Agent, ticket_a: Ticket) -> None:
    send_at = later()
    response = bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply",
        {"body": "Good morning!", "send_at": send_at},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["object"] == "scheduled_comment"
    assert (body["status"], body["ticket"]) == ("pending", ticket_a.number)
    assert body["author"] == {"id": bob.pk, "name": "Bob Agent"}
    scheduled = ScheduledComment.objects.get(pk=body["id"])
    assert scheduled.send_at.isoformat() == send_at
    # Nothing is posted yet.
    assert Comment.objects.filter(ticket=ticket_a).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"body": "   "}, "body"),
        ({"body": "x", "internal": "perhaps"}, "internal"),
        ({"body": "x", "send_at": "tomorrow"}, "send_at"),
        ({"body": "x", "send_at": "2001-01-01T00:00:00Z"}, "send_at"),
        ({"body": "x", "status": "done"}, "status"),
        ({"body": "x", "send_at": "2100-01-01T00:00:00Z", "status": "open"}, "status"),
        ({"body": "x", "attachment_ids": ["a"]}, "attachment_ids.0"),
        ({"body": "x", "attachment_ids": list(range(1, 22))}, "attachment_ids"),
    ],
)
def test_reply_validation_errors_name_their_fields(
    bob_api: APIClient, ticket_a: Ticket, body: dict[str, Any], field: str
) -> None:
    response = bob_api.post(f"/v1/tickets/{ticket_a.number}/reply", body, format="json")
    assert response.status_code == 400, response.json()
    assert list(error(response)["fields"]) == [field]
    assert Comment.objects.filter(ticket=ticket_a).count() == 1


def test_a_reply_may_not_use_another_workspaces_attachment(
    bob_api: APIClient, ticket_a: Ticket, workspace_b: Workspace
) -> None:
    foreign = upload(workspace_b)
    response = bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply",
        {"body": "x", "attachment_ids": [foreign.pk]},
        format="json",
    )
    assert (response.status_code, error(response)["code"]) == (400, "invalid_reference")
    assert list(error(response)["fields"]) == ["attachment_ids"]
    foreign.refresh_from_db()
    assert foreign.ticket_id is None


def test_an_attachment_already_used_is_a_409(
    bob_api: APIClient, ticket_a: Ticket, ticket_a2: Ticket, workspace_a: Workspace
) -> None:
    attachment = upload(workspace_a)
    url = "/v1/tickets/{}/reply"
    first = bob_api.post(
        url.format(ticket_a.number), {"body": "x", "attachment_ids": [attachment.pk]}, format="json"
    )
    assert first.status_code == 201
    again = bob_api.post(
        url.format(ticket_a2.number),
        {"body": "y", "attachment_ids": [attachment.pk]},
        format="json",
    )
    assert (again.status_code, error(again)["code"]) == (409, "attachment_in_use")


def test_replying_to_a_merged_ticket_is_a_409(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    ticket_merge(source=ticket_a2, target=ticket_a, actor=Actor.for_agent(bob))
    response = bob_api.post(f"/v1/tickets/{ticket_a2.number}/reply", {"body": "x"}, format="json")
    assert (response.status_code, error(response)["code"]) == (409, "ticket_merged")


def test_light_agents_add_internal_notes_only(
    client_for: Any, lena: Agent, ticket_a: Ticket
) -> None:
    api = client_for(lena)
    url = f"/v1/tickets/{ticket_a.number}/reply"

    note = api.post(url, {"body": "Seen this before", "internal": True}, format="json")
    assert note.status_code == 201
    scheduled_note = api.post(
        url, {"body": "Remind", "internal": True, "send_at": later()}, format="json"
    )
    assert scheduled_note.status_code == 201

    for body in (
        {"body": "Dear customer"},
        {"body": "Dear customer", "send_at": later()},
        {"body": "Closing", "internal": True, "status": "closed"},
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 403, body
        assert error(response)["code"] == "light_agent"
    assert list(Comment.objects.filter(ticket=ticket_a).values_list("is_internal", flat=True)) == [
        False,
        True,
    ]


# --- Comments and events --------------------------------------------------------------------


def test_comments_list_the_thread_oldest_first_with_notes_and_attachments(
    client_for: Any, lena: Agent, bob_api: APIClient, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    attachment = upload(workspace_a, "photo.png")
    bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply",
        {"body": "Photo attached", "attachment_ids": [attachment.pk]},
        format="json",
    )
    bob_api.post(
        f"/v1/tickets/{ticket_a.number}/reply", {"body": "A note", "internal": True}, format="json"
    )

    # Light agents are agents: they read internal notes too.
    response = client_for(lena).get(f"/v1/tickets/{ticket_a.number}/comments")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["body_text"] for c in results] == [
        "Our printer is on fire again. Please help.",
        "Photo attached",
        "A note",
    ]
    assert [c["internal"] for c in results] == [False, False, True]
    assert results[0]["author"]["type"] == "customer"
    assert results[0]["author"]["customer"]["email"] == "carol@customer.test"
    assert [a["filename"] for a in results[1]["attachments"]] == ["photo.png"]
    assert {c["ticket"] for c in results} == {ticket_a.number}


def test_comments_take_the_same_queries_for_5_and_100(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    def add(count: int) -> None:
        for n in range(count):
            comment = CommentFactory(
                ticket=ticket_a,
                author_type="agent",
                author_agent=bob,
                author_customer=None,
                is_internal=bool(n % 2),
            )
            attachment = upload(workspace_a, f"file{n}.txt")
            TicketAttachment.objects.filter(pk=attachment.pk).update(
                ticket=ticket_a, comment=comment
            )

    url = f"/v1/tickets/{ticket_a.number}/comments?page_size=100"
    add(4)
    response, five = queries_of(lambda: bob_api.get(url))
    assert len(response.json()["results"]) == 5
    add(95)
    response, hundred = queries_of(lambda: bob_api.get(url))
    assert len(response.json()["results"]) == 100

    # 1. the token's agent  2. the ticket (checked fetch)
    # 3. the page of comments with their authors (agent + user, customer) joined
    # 4. the attachments of the page's comments (prefetch)
    assert len(five) == len(hundred) == 4, hundred


def test_comments_page_with_a_cursor(bob_api: APIClient, bob: Agent, ticket_a: Ticket) -> None:
    for n in range(4):
        CommentFactory(ticket=ticket_a, body_text=f"message {n}")
    first = bob_api.get(f"/v1/tickets/{ticket_a.number}/comments?page_size=3")
    assert first.status_code == 200
    second = bob_api.get(first.json()["next"])
    texts = [c["body_text"] for c in first.json()["results"] + second.json()["results"]]
    assert len(texts) == len(set(texts)) == 5
    assert bob_api.get(f"/v1/tickets/{ticket_a.number}/comments?colour=red").status_code == 400


def test_events_show_who_changed_what(bob_api: APIClient, bob: Agent, ticket_a: Ticket) -> None:
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(bob), priority="high")

    response = bob_api.get(f"/v1/tickets/{ticket_a.number}/events")

    assert response.status_code == 200
    created, changed = response.json()["results"]
    assert created["kind"] == "created"
    assert created["actor"]["type"] == "customer"
    assert created["actor"]["customer"]["email"] == "carol@customer.test"
    assert (changed["kind"], changed["field"], changed["old"], changed["new"]) == (
        "field_changed",
        "priority",
        "normal",
        "high",
    )
    assert changed["actor"] == {
        "type": "agent",
        "agent": {"id": bob.pk, "name": "Bob Agent"},
        "customer": None,
    }


def test_events_validation_roles_and_tenancy(
    client_for: Any, lena: Agent, charlie_api: APIClient, ticket_a: Ticket, ticket_a2: Ticket
) -> None:
    api = client_for(lena)
    # Light agents read the history; parameters are checked like any list's.
    assert api.get(f"/v1/tickets/{ticket_a.number}/events").status_code == 200
    response = api.get(f"/v1/tickets/{ticket_a.number}/events?kind=created")
    assert (response.status_code, list(error(response)["fields"])) == (400, ["kind"])
    response = api.get(f"/v1/tickets/{ticket_a.number}/events?page_size=0")
    assert (response.status_code, list(error(response)["fields"])) == (400, ["page_size"])
    assert charlie_api.get(f"/v1/tickets/{ticket_a2.number}/events").status_code == 404


def test_events_take_the_same_queries_for_5_and_100(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket
) -> None:
    def add(count: int) -> None:
        TicketEvent.objects.bulk_create(
            TicketEvent(
                workspace_id=ticket_a.workspace_id,
                ticket=ticket_a,
                kind="field_changed",
                actor_type="agent",
                actor_agent=bob,
                field="priority",
                old_value="normal",
                new_value="high",
            )
            for _ in range(count)
        )

    url = f"/v1/tickets/{ticket_a.number}/events?page_size=100"
    add(4)
    response, five = queries_of(lambda: bob_api.get(url))
    assert len(response.json()["results"]) == 5
    add(95)
    response, hundred = queries_of(lambda: bob_api.get(url))
    assert len(response.json()["results"]) == 100
    # 1. the token's agent  2. the ticket  3. the page of events, actors joined
    assert len(five) == len(hundred) == 3, hundred


# --- Scheduled comments ---------------------------------------------------------------------


@pytest.fixture
def scheduled(bob: Agent, ticket_a: Ticket) -> ScheduledComment:
    return comment_schedule(
        ticket=ticket_a,
        actor=Actor.for_agent(bob),
        send_at=timezone.now() + timedelta(hours=1),
        body_text="Later",
    )


def test_scheduled_comments_list_filter_and_read(
    bob_api: APIClient,
    bob: Agent,
    scheduled: ScheduledComment,
    ticket_a2: Ticket,
) -> None:
    other = comment_schedule(
        ticket=ticket_a2,
        actor=Actor.for_agent(bob),
        send_at=timezone.now() + timedelta(minutes=30),
        body_text="Sooner",
    )

    response = bob_api.get("/v1/scheduled-comments")
    assert response.status_code == 200
    # Soonest first.
    assert [s["id"] for s in response.json()["results"]] == [other.pk, scheduled.pk]
    by_ticket = bob_api.get(f"/v1/scheduled-comments?ticket={ticket_a2.number}")
    assert [s["id"] for s in by_ticket.json()["results"]] == [other.pk]
    assert bob_api.get("/v1/scheduled-comments?status=sent").json()["results"] == []
    assert len(bob_api.get("/v1/scheduled-comments?status=pending,sent").json()["results"]) == 2

    one = bob_api.get(f"/v1/scheduled-comments/{scheduled.pk}")
    assert one.status_code == 200
    assert (one.json()["body_text"], one.json()["ticket"]) == ("Later", 1)


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("status=someday", "invalid", "status"),
        ("ticket=abc", "invalid", "ticket"),
        ("ticket=999", "invalid_reference", "ticket"),
        ("colour=red", "invalid", "colour"),
    ],
)
def test_scheduled_comment_queries_are_validated(
    bob_api: APIClient, scheduled: ScheduledComment, query: str, code: str, field: str
) -> None:
    response = bob_api.get(f"/v1/scheduled-comments?{query}")
    assert response.status_code == 400
    assert (error(response)["code"], list(error(response)["fields"])) == (code, [field])


def test_scheduled_comments_take_the_same_queries_for_5_and_100(
    bob_api: APIClient, bob: Agent, ticket_a: Ticket
) -> None:
    def add(count: int) -> None:
        ScheduledComment.objects.bulk_create(
            ScheduledComment(
                workspace_id=ticket_a.workspace_id,
                ticket=ticket_a,
                author=bob,
                body_text="later",
                send_at=timezone.now() + timedelta(hours=1),
            )
            for _ in range(count)
        )

    add(5)
    response, five = queries_of(lambda: bob_api.get("/v1/scheduled-comments?page_size=100"))
    assert len(response.json()["results"]) == 5
    add(95)
    response, hundred = queries_of(lambda: bob_api.get("/v1/scheduled-comments?page_size=100"))
    assert len(response.json()["results"]) == 100
    # 1. the token's agent  2. the page, joined to its ticket and author + user
    # 3. their attachments (prefetch)
    assert len(five) == len(hundred) == 3, hundred


def test_cancel_a_scheduled_reply(bob_api: APIClient, scheduled: ScheduledComment) -> None:
    response = bob_api.post(f"/v1/scheduled-comments/{scheduled.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = bob_api.post(f"/v1/scheduled-comments/{scheduled.pk}/cancel")
    assert (again.status_code, error(again)["code"]) == (409, "not_pending")


def test_a_light_agent_cancels_their_own_note_but_not_others_replies(
    client_for: Any, lena: Agent, scheduled: ScheduledComment, ticket_a: Ticket
) -> None:
    own = comment_schedule(
        ticket=ticket_a,
        actor=Actor.for_agent(lena),
        send_at=timezone.now() + timedelta(hours=1),
        body_text="Remind me",
        internal=True,
    )
    api = client_for(lena)
    assert api.post(f"/v1/scheduled-comments/{own.pk}/cancel").status_code == 200
    refused = api.post(f"/v1/scheduled-comments/{scheduled.pk}/cancel")
    assert (refused.status_code, error(refused)["code"]) == (403, "light_agent")
    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledCommentStatus.PENDING


def test_charlie_gets_404_for_a_scheduled_reply_of_a(
    charlie_api: APIClient, scheduled: ScheduledComment
) -> None:
    assert charlie_api.get(f"/v1/scheduled-comments/{scheduled.pk}").status_code == 404
    response = charlie_api.post(f"/v1/scheduled-comments/{scheduled.pk}/cancel")
    assert (response.status_code, error(response)["code"]) == (404, "not_found")
    assert charlie_api.get("/v1/scheduled-comments").json()["results"] == []
    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledCommentStatus.PENDING
