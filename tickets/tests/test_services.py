"""The ticket services: every write, the history it records, the clocks it keeps, the hooks
it fires after commit, and what it refuses.

Alice is an admin of workspace A, Bob an agent there, Lena a light agent there; Carol is a
customer of A. Charlie is the admin of workspace B, Dave a customer of B.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from enque.errors import Conflict, Forbidden, InvalidInput, NotFound
from enque.tests.factories import (
    AgentFactory,
    CategoryFactory,
    CompanyFactory,
    CustomerFactory,
    TeamFactory,
    UserFactory,
)
from integrations.models import EmailTicketMapping, MailDirection
from tickets import hooks
from tickets.actors import Actor
from tickets.models import (
    AuthorType,
    Comment,
    ScheduledComment,
    ScheduledCommentStatus,
    Tag,
    Ticket,
    TicketAttachment,
    TicketBody,
    TicketEvent,
)
from tickets.services import (
    comment_create,
    comment_schedule,
    scheduled_comment_cancel,
    scheduled_comments_send_due,
    ticket_add_tags,
    ticket_assign,
    ticket_create,
    ticket_delete,
    ticket_merge,
    ticket_remove_tags,
    ticket_restore,
    ticket_set_status,
    ticket_update,
)
from workspaces.models import Agent, AgentRole, Customer, Workspace
from workspaces.services import agent_deactivate

pytestmark = pytest.mark.django_db


# --- Fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def lena(workspace_a: Workspace) -> Agent:
    """A light agent: reads everything, writes internal notes, changes nothing."""
    user = UserFactory(email="lena@a.test", name="Lena Light")
    return AgentFactory(workspace=workspace_a, user=user, role=AgentRole.LIGHT)


@pytest.fixture
def media(settings: Any) -> None:
    # Attachments go to memory, never to the project's media/ folder.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture
def received() -> Any:
    """Every TicketChange the hook point dispatches during the test."""
    changes: list[hooks.TicketChange] = []
    hooks.subscribe(changes.append)
    yield changes
    hooks.unsubscribe(changes.append)


def history(ticket: Ticket) -> list[tuple[str, str, Any, Any, Any]]:
    """The ticket's events in order as (kind, field, old, new, who): who is the acting Agent
    or Customer, else the actor type ("system", "automation")."""
    events = TicketEvent.objects.filter(ticket_id=ticket.pk).select_related(
        "actor_agent", "actor_customer"
    )
    return [
        (
            e.kind,
            e.field,
            e.old_value,
            e.new_value,
            e.actor_agent or e.actor_customer or e.actor_type,
        )
        for e in events
    ]


def write_in(customer: Customer, subject: str = "Toner everywhere", **kwargs: Any) -> Ticket:
    """The customer writes in by email, as the mail pipeline does on their behalf."""
    return ticket_create(
        workspace=customer.workspace,
        actor=Actor.for_customer(customer),
        subject=subject,
        customer=customer,
        body_text=kwargs.pop("body_text", "The toner cartridge burst."),
        channel="email",
        **kwargs,
    )


def upload(workspace: Workspace, name: str = "invoice.pdf") -> TicketAttachment:
    """A file uploaded ahead of a reply: in the workspace, on no ticket yet."""
    data = b"%PDF-1.4 a very small invoice"
    return TicketAttachment.objects.create(
        workspace=workspace,
        file=ContentFile(data, name=name),
        filename=name,
        content_type="application/pdf",
        size=len(data),
    )


def in_hours(hours: float) -> Any:
    return timezone.now() + timedelta(hours=hours)


# --- ticket_create --------------------------------------------------------------------------


def test_customer_writing_in_opens_ticket_1_then_2(workspace_a, customer_a):
    ticket = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="  Printer\n on   fire ",
        customer=customer_a,
        channel="email",
        body_html="<p>It is on fire.</p><script>alert(1)</script>",
        original_html="<p>It is on fire.</p><blockquote>On Monday you wrote</blockquote>",
        original_text="It is on fire.\n> On Monday you wrote",
    )

    assert ticket.number == 1
    assert ticket.subject == "Printer on fire"
    assert (ticket.status, ticket.priority, ticket.channel) == ("new", "normal", "email")
    [first] = Comment.objects.filter(ticket=ticket)
    assert first.author_type == AuthorType.CUSTOMER
    assert first.author_customer == customer_a
    assert not first.is_internal
    assert first.via == "email"
    assert "script" not in first.body_html
    assert first.body_text == "It is on fire."
    assert ticket.last_customer_reply_at == first.created_at == ticket.created_at
    assert ticket.last_agent_reply_at is None
    assert ticket.first_response_at is None
    # The email as received is kept whole beside the (trimmed) first comment.
    body = TicketBody.objects.get(ticket=ticket)
    assert body.html == "<p>It is on fire.</p><blockquote>On Monday you wrote</blockquote>"
    assert body.text == "It is on fire.\n> On Monday you wrote"
    assert history(ticket) == [("created", "", None, None, customer_a)]
    created = TicketEvent.objects.get(ticket=ticket)
    assert created.created_at == ticket.created_at
    assert created.data["comment"] == first.pk

    assert write_in(customer_a).number == 2


def test_agent_opens_a_ticket_for_a_customer(workspace_a, alice, bob, customer_a):
    acme = CompanyFactory(workspace=workspace_a, name="Acme Corp")
    customer_a.company = acme
    customer_a.save()
    billing = TeamFactory(workspace=workspace_a, name="Billing")
    invoices = CategoryFactory(workspace=workspace_a, name="Invoices")

    ticket = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_agent(alice),
        subject="Your refund",
        customer=customer_a,
        body_text="Hi Carol,\n\nWe refunded your order.",
        channel="api",
        priority="high",
        assignee=bob,
        team=billing,
        category=invoices,
        tags=["VIP", "vip", " refund ", ""],
    )

    # Assigned from the start, so it is already being worked on.
    assert ticket.status == "open"
    assert (ticket.assignee, ticket.team, ticket.category) == (bob, billing, invoices)
    assert ticket.company == acme
    [first] = Comment.objects.filter(ticket=ticket)
    assert (first.author_type, first.author_agent, first.via) == ("agent", alice, "api")
    assert not first.is_internal
    assert first.body_html == "<p>Hi Carol,</p><p>We refunded your order.</p>"
    assert ticket.last_agent_reply_at == first.created_at
    assert ticket.last_customer_reply_at is None
    assert ticket.first_response_at is None
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["VIP", "refund"]
    assert TicketBody.objects.get(ticket=ticket).text == first.body_text
    assert history(ticket) == [("created", "", None, None, alice)]
    assert TicketEvent.objects.get(ticket=ticket).data == {
        "subject": "Your refund",
        "status": "open",
        "priority": "high",
        "channel": "api",
        "assignee": bob.pk,
        "team": billing.pk,
        "category": invoices.pk,
        "tags": ["VIP", "refund"],
        "comment": first.pk,
    }


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"subject": " \n "}, "subject", "required"),
        ({"subject": "x" * 999}, "subject", "max_length"),
        ({"priority": "asap"}, "priority", "invalid_choice"),
        ({"status": "done"}, "status", "invalid_choice"),
        ({"channel": "fax"}, "channel", "invalid_choice"),
        ({"body_text": "   "}, "body", "required"),
    ],
)
def test_create_refuses_invalid_input(change, field, code, workspace_a, bob, customer_a):
    fields = {"subject": "Printer on fire", "body_text": "Help!", "channel": "web", **change}

    with pytest.raises(InvalidInput) as refused:
        ticket_create(
            workspace=workspace_a, actor=Actor.for_agent(bob), customer=customer_a, **fields
        )

    assert (refused.value.field, refused.value.code) == (field, code)
    assert not Ticket.objects.exists()


FOREIGN_REFERENCES: dict[str, Callable[[Workspace], dict[str, Any]]] = {
    "customer": lambda ws_b: {"customer": CustomerFactory(workspace=ws_b)},
    "assignee": lambda ws_b: {"assignee": AgentFactory(workspace=ws_b)},
    "team": lambda ws_b: {"team": TeamFactory(workspace=ws_b)},
    "category": lambda ws_b: {"category": CategoryFactory(workspace=ws_b)},
    "attachment_ids": lambda ws_b: {"attachments": [upload(ws_b)]},
}


@pytest.mark.parametrize("field", list(FOREIGN_REFERENCES))
def test_create_refuses_objects_of_another_workspace(
    field, workspace_a, workspace_b, alice, customer_a, media
):
    fields = {"customer": customer_a, **FOREIGN_REFERENCES[field](workspace_b)}

    with pytest.raises(InvalidInput) as refused:
        ticket_create(
            workspace=workspace_a,
            actor=Actor.for_agent(alice),
            subject="Printer on fire",
            body_text="Help!",
            **fields,
        )

    assert (refused.value.code, refused.value.field) == ("invalid_reference", field)
    assert not Ticket.objects.exists()
    assert not TicketAttachment.objects.filter(ticket__isnull=False).exists()
    # Nothing was used up: the workspace's next ticket is still #1.
    assert write_in(customer_a).number == 1


@pytest.mark.parametrize(
    "operation",
    ["create", "update", "reply", "schedule", "merge", "delete", "customer_reply"],
)
def test_actors_of_another_workspace_get_not_found(
    operation, workspace_a, charlie, customer_a, customer_b, ticket_a
):
    other = write_in(customer_a)
    charlie_acts = Actor.for_agent(charlie)
    calls: dict[str, Callable[[], object]] = {
        "create": lambda: ticket_create(
            workspace=workspace_a,
            actor=charlie_acts,
            subject="Hello",
            body_text="Hi",
            customer=customer_a,
        ),
        "update": lambda: ticket_update(ticket=ticket_a, actor=charlie_acts, priority="low"),
        "reply": lambda: comment_create(ticket=ticket_a, actor=charlie_acts, body_text="Hi"),
        "schedule": lambda: comment_schedule(
            ticket=ticket_a, actor=charlie_acts, send_at=in_hours(1), body_text="Hi"
        ),
        "merge": lambda: ticket_merge(source=other, target=ticket_a, actor=charlie_acts),
        "delete": lambda: ticket_delete(ticket=ticket_a, actor=charlie_acts),
        "customer_reply": lambda: comment_create(
            ticket=ticket_a, actor=Actor.for_customer(customer_b), body_text="Hi"
        ),
    }

    with pytest.raises(NotFound):
        calls[operation]()

    assert Ticket.objects.for_workspace(workspace_a).count() == 2
    assert Comment.objects.filter(ticket=ticket_a).count() == 1
    assert not ScheduledComment.objects.exists()
    assert history(ticket_a) == [("created", "", None, None, customer_a)]


# --- ticket_update and its shortcuts -------------------------------------------------------


def test_update_changes_each_field_with_one_event_per_field(workspace_a, alice, ticket_a):
    billing = TeamFactory(workspace=workspace_a, name="Billing")
    invoices = CategoryFactory(workspace=workspace_a, name="Invoices")
    created_at = ticket_a.updated_at

    changed = ticket_update(
        ticket=ticket_a,
        actor=Actor.for_agent(alice),
        subject="Printer on fire (3rd floor)",
        priority="urgent",
        team=billing,
        category=invoices,
    )

    assert changed == ["subject", "priority", "team", "category"]
    assert history(ticket_a)[1:] == [
        ("field_changed", "subject", "Printer on fire", "Printer on fire (3rd floor)", alice),
        ("field_changed", "priority", "normal", "urgent", alice),
        ("field_changed", "team", None, billing.pk, alice),
        ("field_changed", "category", None, invoices.pk, alice),
    ]
    # The caller's instance is brought up to date, and so is the row.
    assert ticket_a.priority == "urgent"
    ticket_a.refresh_from_db()
    assert ticket_a.subject == "Printer on fire (3rd floor)"
    assert (ticket_a.priority, ticket_a.team, ticket_a.category) == ("urgent", billing, invoices)
    assert ticket_a.status == "new"
    assert ticket_a.updated_at > created_at

    assert ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), team=None) == ["team"]
    assert history(ticket_a)[-1] == ("field_changed", "team", billing.pk, None, alice)


def test_resolving_sets_resolved_at_and_reopening_clears_it(alice, ticket_a):
    actor = Actor.for_agent(alice)
    start = timezone.now()

    assert ticket_set_status(ticket=ticket_a, actor=actor, status="resolved") == ["status"]
    ticket_a.refresh_from_db()
    assert start <= ticket_a.resolved_at <= timezone.now()
    assert ticket_a.closed_at is None

    ticket_set_status(ticket=ticket_a, actor=actor, status="open")
    ticket_a.refresh_from_db()
    assert ticket_a.resolved_at is None
    assert ticket_a.closed_at is None

    assert history(ticket_a)[1:] == [
        ("field_changed", "status", "new", "resolved", alice),
        ("field_changed", "status", "resolved", "open", alice),
    ]


def test_closing_sets_closed_at_and_keeps_the_resolution_time(alice, customer_a, ticket_a):
    actor = Actor.for_agent(alice)
    ticket_set_status(ticket=ticket_a, actor=actor, status="resolved")
    ticket_a.refresh_from_db()
    resolved_at = ticket_a.resolved_at

    ticket_set_status(ticket=ticket_a, actor=actor, status="closed")
    ticket_a.refresh_from_db()
    assert ticket_a.resolved_at == resolved_at
    assert ticket_a.closed_at >= resolved_at

    ticket_set_status(ticket=ticket_a, actor=actor, status="pending")
    ticket_a.refresh_from_db()
    assert (ticket_a.resolved_at, ticket_a.closed_at) == (None, None)

    # Closed straight from new: it counts as resolved then too.
    other = write_in(customer_a)
    ticket_set_status(ticket=other, actor=actor, status="closed")
    other.refresh_from_db()
    assert other.resolved_at == other.closed_at is not None


def test_assigning_a_new_ticket_opens_it(alice, bob, ticket_a):
    actor = Actor.for_agent(alice)

    assert ticket_assign(ticket=ticket_a, actor=actor, assignee=bob) == ["assignee", "status"]
    assert history(ticket_a)[1:] == [
        ("field_changed", "assignee", None, bob.pk, alice),
        ("field_changed", "status", "new", "open", alice),
    ]

    # Once it is open, reassigning and unassigning leave the status alone.
    ticket_set_status(ticket=ticket_a, actor=actor, status="pending")
    assert ticket_assign(ticket=ticket_a, actor=actor, assignee=alice) == ["assignee"]
    assert ticket_assign(ticket=ticket_a, actor=actor, assignee=None) == ["assignee"]
    assert history(ticket_a)[-2:] == [
        ("field_changed", "assignee", bob.pk, alice.pk, alice),
        ("field_changed", "assignee", alice.pk, None, alice),
    ]
    ticket_a.refresh_from_db()
    assert (ticket_a.assignee, ticket_a.status) == (None, "pending")


def test_update_refuses_foreign_or_deactivated_references(
    workspace_b, alice, bob, charlie, ticket_a
):
    actor = Actor.for_agent(alice)
    foreign = {
        "assignee": charlie,
        "team": TeamFactory(workspace=workspace_b),
        "category": CategoryFactory(workspace=workspace_b),
    }
    for field, value in foreign.items():
        with pytest.raises(InvalidInput) as refused:
            ticket_update(ticket=ticket_a, actor=actor, **{field: value})
        assert (refused.value.code, refused.value.field) == ("invalid_reference", field)

    agent_deactivate(agent=bob)
    with pytest.raises(InvalidInput) as refused:
        ticket_assign(ticket=ticket_a, actor=actor, assignee=bob)
    assert (refused.value.code, refused.value.field) == ("agent_inactive", "assignee")

    ticket_a.refresh_from_db()
    assert (ticket_a.assignee, ticket_a.team, ticket_a.category) == (None, None, None)
    assert len(history(ticket_a)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "finished"}, "status"),
        ({"priority": "p1"}, "priority"),
        ({"subject": ""}, "subject"),
    ],
)
def test_update_refuses_invalid_values(change, field, alice, ticket_a):
    with pytest.raises(InvalidInput) as refused:
        ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), **change)
    assert refused.value.field == field
    assert len(history(ticket_a)) == 1


def test_an_update_that_changes_nothing_writes_nothing(
    alice, ticket_a, received, django_capture_on_commit_callbacks
):
    actor = Actor.for_agent(alice)
    ticket_add_tags(ticket=ticket_a, actor=actor, tags=["Billing"])
    ticket_a.refresh_from_db()
    updated_at = ticket_a.updated_at
    events_before = history(ticket_a)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        changed = ticket_update(
            ticket=ticket_a,
            actor=actor,
            subject=" Printer  on fire ",
            status="new",
            priority="normal",
            assignee=None,
            team=None,
            category=None,
            tags=["BILLING"],
        )

    assert changed == []
    assert callbacks == []
    assert received == []
    assert history(ticket_a) == events_before
    ticket_a.refresh_from_db()
    assert ticket_a.updated_at == updated_at


def test_tags_are_reused_case_insensitively_within_a_workspace(
    workspace_a, workspace_b, alice, charlie, customer_a, ticket_a, ticket_b
):
    actor = Actor.for_agent(alice)

    assert ticket_add_tags(ticket=ticket_a, actor=actor, tags=["Billing", "urgent"]) == ["tags"]
    second = write_in(customer_a)
    ticket_add_tags(ticket=second, actor=actor, tags=["BILLING", "billing "])
    assert list(second.tags.values_list("name", flat=True)) == ["Billing"]
    assert Tag.objects.for_workspace(workspace_a).count() == 2
    # Workspace B gets its own tag of that name.
    ticket_add_tags(ticket=ticket_b, actor=Actor.for_agent(charlie), tags=["billing"])
    assert list(Tag.objects.for_workspace(workspace_b).values_list("name", flat=True)) == [
        "billing"
    ]

    assert ticket_remove_tags(ticket=ticket_a, actor=actor, tags=["BILLING"]) == ["tags"]
    assert ticket_update(ticket=ticket_a, actor=actor, tags=["Urgent", "printer"]) == ["tags"]

    assert history(ticket_a)[1:] == [
        ("tags_changed", "tags", [], ["Billing", "urgent"], alice),
        ("tags_changed", "tags", ["Billing", "urgent"], ["urgent"], alice),
        ("tags_changed", "tags", ["urgent"], ["printer", "urgent"], alice),
    ]
    # Removing a tag from a ticket keeps the tag for the workspace's other tickets.
    assert list(second.tags.values_list("name", flat=True)) == ["Billing"]

    with pytest.raises(InvalidInput) as refused:
        ticket_add_tags(ticket=ticket_a, actor=actor, tags=["x" * 65])
    assert refused.value.field == "tags"


# --- Light agents ----------------------------------------------------------------------------


def test_light_agent_adds_internal_notes(lena, ticket_a):
    note = comment_create(
        ticket=ticket_a,
        actor=Actor.for_agent(lena),
        body_text="Facilities are on it.",
        internal=True,
    )

    assert note.is_internal
    assert (note.author_type, note.author_agent) == ("agent", lena)
    assert history(ticket_a)[1:] == [("note_added", "", None, None, lena)]
    ticket_a.refresh_from_db()
    assert ticket_a.status == "new"
    assert ticket_a.last_agent_reply_at is None
    assert ticket_a.first_response_at is None


@pytest.mark.parametrize(
    "operation",
    [
        "public_reply",
        "note_setting_status",
        "update",
        "assign",
        "tags",
        "merge",
        "delete",
        "create",
        "schedule_reply",
    ],
)
def test_light_agent_cannot_reply_or_change_tickets(operation, lena, customer_a, ticket_a):
    other = write_in(customer_a)
    lena_acts = Actor.for_agent(lena)
    calls: dict[str, Callable[[], object]] = {
        "public_reply": lambda: comment_create(ticket=ticket_a, actor=lena_acts, body_text="Hi"),
        "note_setting_status": lambda: comment_create(
            ticket=ticket_a, actor=lena_acts, body_text="Note", internal=True, status="pending"
        ),
        "update": lambda: ticket_update(ticket=ticket_a, actor=lena_acts, priority="high"),
        "assign": lambda: ticket_assign(ticket=ticket_a, actor=lena_acts, assignee=lena),
        "tags": lambda: ticket_add_tags(ticket=ticket_a, actor=lena_acts, tags=["vip"]),
        "merge": lambda: ticket_merge(source=other, target=ticket_a, actor=lena_acts),
        "delete": lambda: ticket_delete(ticket=ticket_a, actor=lena_acts),
        "create": lambda: ticket_create(
            workspace=ticket_a.workspace,
            actor=lena_acts,
            subject="Hi",
            body_text="Hi",
            customer=customer_a,
        ),
        "schedule_reply": lambda: comment_schedule(
            ticket=ticket_a, actor=lena_acts, send_at=in_hours(1), body_text="Hi"
        ),
    }

    with pytest.raises(Forbidden):
        calls[operation]()

    assert Ticket.objects.count() == 2
    assert Comment.objects.filter(ticket=ticket_a).count() == 1
    assert history(ticket_a) == [("created", "", None, None, customer_a)]
    assert not ScheduledComment.objects.exists()
    ticket_a.refresh_from_db()
    assert (ticket_a.status, ticket_a.priority, ticket_a.deleted_at) == ("new", "normal", None)


# --- comment_create ---------------------------------------------------------------------------


def test_agent_reply_sets_first_response_once(bob, ticket_a):
    first = comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="On our way.")

    assert (first.author_type, first.author_agent, first.is_internal) == ("agent", bob, False)
    ticket_a.refresh_from_db()
    assert ticket_a.first_response_at == ticket_a.last_agent_reply_at == first.created_at
    assert ticket_a.status == "open"
    assert history(ticket_a)[1:] == [
        ("replied", "", None, None, bob),
        ("field_changed", "status", "new", "open", bob),
    ]

    second = comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Fixed.")
    ticket_a.refresh_from_db()
    assert ticket_a.first_response_at == first.created_at
    assert ticket_a.last_agent_reply_at == second.created_at > first.created_at
    assert history(ticket_a)[-1] == ("replied", "", None, None, bob)


def test_internal_note_is_no_response_to_the_customer(bob, ticket_a):
    comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Hmm.", internal=True)

    ticket_a.refresh_from_db()
    assert (ticket_a.first_response_at, ticket_a.last_agent_reply_at) == (None, None)
    assert ticket_a.status == "new"
    assert history(ticket_a)[-1] == ("note_added", "", None, None, bob)


@pytest.mark.parametrize("waiting", ["pending", "on_hold", "resolved"])
def test_customer_reply_reopens_a_waiting_or_resolved_ticket(waiting, alice, customer_a, ticket_a):
    ticket_set_status(ticket=ticket_a, actor=Actor.for_agent(alice), status=waiting)

    reply = comment_create(
        ticket=ticket_a,
        actor=Actor.for_customer(customer_a),
        body_text="Still broken.",
        via="email",
    )

    assert (reply.author_type, reply.author_customer) == ("customer", customer_a)
    ticket_a.refresh_from_db()
    assert ticket_a.status == "open"
    assert ticket_a.resolved_at is None
    assert ticket_a.last_customer_reply_at == reply.created_at
    assert history(ticket_a)[-2:] == [
        ("customer_replied", "", None, None, customer_a),
        ("field_changed", "status", waiting, "open", customer_a),
    ]


def test_customer_reply_without_reopen_leaves_the_status(alice, customer_a, ticket_a):
    ticket_set_status(ticket=ticket_a, actor=Actor.for_agent(alice), status="pending")

    # An out-of-office answer, say: recorded, but the ticket keeps waiting.
    reply = comment_create(
        ticket=ticket_a, actor=Actor.for_customer(customer_a), body_text="I am away.", reopen=False
    )

    ticket_a.refresh_from_db()
    assert ticket_a.status == "pending"
    assert ticket_a.last_customer_reply_at == reply.created_at
    assert history(ticket_a)[-1] == ("customer_replied", "", None, None, customer_a)


def test_customer_reply_leaves_a_closed_ticket_closed(alice, customer_a, ticket_a):
    ticket_set_status(ticket=ticket_a, actor=Actor.for_agent(alice), status="closed")

    comment_create(ticket=ticket_a, actor=Actor.for_customer(customer_a), body_text="Thanks!")

    ticket_a.refresh_from_db()
    assert ticket_a.status == "closed"
    assert history(ticket_a)[-1] == ("customer_replied", "", None, None, customer_a)


def test_customer_cannot_write_an_internal_note(customer_a, ticket_a):
    with pytest.raises(InvalidInput) as refused:
        comment_create(
            ticket=ticket_a, actor=Actor.for_customer(customer_a), body_text="psst", internal=True
        )

    assert refused.value.field == "internal"
    assert Comment.objects.filter(ticket=ticket_a).count() == 1
    assert len(history(ticket_a)) == 1


def test_reply_and_set_pending_in_one_step(
    bob, ticket_a, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reply = comment_create(
            ticket=ticket_a,
            actor=Actor.for_agent(bob),
            body_text="Could you send a photo?",
            status="pending",
        )

    ticket_a.refresh_from_db()
    assert ticket_a.status == "pending"
    assert ticket_a.first_response_at == reply.created_at
    assert history(ticket_a)[1:] == [
        ("replied", "", None, None, bob),
        ("field_changed", "status", "new", "pending", bob),
    ]
    assert [change.type for change in received] == ["comment.created", "ticket.updated"]
    assert received[0].data == {"comment": reply.pk, "internal": False, "author_type": "agent"}
    assert received[1].data == {"changes": {"status": {"old": "new", "new": "pending"}}}

    with pytest.raises(InvalidInput) as refused:
        comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="x", status="gone")
    assert refused.value.field == "status"


def test_reply_claims_uploaded_attachments_once(workspace_a, bob, customer_a, ticket_a, media):
    invoice = upload(workspace_a)

    reply = comment_create(
        ticket=ticket_a,
        actor=Actor.for_agent(bob),
        body_text="Invoice attached.",
        attachments=[invoice],
    )

    invoice.refresh_from_db()
    assert (invoice.ticket, invoice.comment) == (ticket_a, reply)
    other = write_in(customer_a)
    with pytest.raises(Conflict) as refused:
        comment_create(
            ticket=other, actor=Actor.for_agent(bob), body_text="Again", attachments=[invoice]
        )
    assert refused.value.code == "attachment_in_use"
    assert Comment.objects.filter(ticket=other).count() == 1


# --- Scheduled replies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "send_at",
    [
        pytest.param(lambda: timezone.now() - timedelta(minutes=1), id="past"),
        pytest.param(lambda: timezone.make_naive(in_hours(1)), id="naive"),
    ],
)
def test_schedule_needs_an_aware_time_in_the_future(send_at, bob, ticket_a):
    with pytest.raises(InvalidInput) as refused:
        comment_schedule(
            ticket=ticket_a, actor=Actor.for_agent(bob), send_at=send_at(), body_text="Later"
        )

    assert refused.value.field == "send_at"
    assert not ScheduledComment.objects.exists()


def test_schedule_records_a_pending_reply(bob, customer_a, ticket_a):
    send_at = in_hours(1)

    scheduled = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=send_at, body_text="Following up."
    )

    assert scheduled.status == ScheduledCommentStatus.PENDING
    assert (scheduled.author, scheduled.comment, scheduled.send_at) == (bob, None, send_at)
    assert scheduled.body_html == "<p>Following up.</p>"
    assert Comment.objects.filter(ticket=ticket_a).count() == 1
    assert history(ticket_a)[1:] == [("reply_scheduled", "", None, None, bob)]
    assert TicketEvent.objects.filter(ticket=ticket_a).last().data == {
        "scheduled_comment": scheduled.pk,
        "send_at": send_at.isoformat(),
    }

    with pytest.raises(Forbidden):
        comment_schedule(
            ticket=ticket_a,
            actor=Actor.for_customer(customer_a),
            send_at=send_at,
            body_text="Me too",
        )


def test_cancel_a_scheduled_reply(alice, bob, lena, ticket_a):
    scheduled = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=in_hours(1), body_text="Ping?"
    )

    # Lena may not touch Bob's reply; Alice may.
    with pytest.raises(Forbidden):
        scheduled_comment_cancel(scheduled=scheduled, actor=Actor.for_agent(lena))
    scheduled_comment_cancel(scheduled=scheduled, actor=Actor.for_agent(alice))

    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledCommentStatus.CANCELLED
    with pytest.raises(Conflict) as refused:
        scheduled_comment_cancel(scheduled=scheduled, actor=Actor.for_agent(bob))
    assert refused.value.code == "not_pending"
    assert scheduled_comments_send_due(now=in_hours(2)) == 0
    assert Comment.objects.filter(ticket=ticket_a).count() == 1


def test_send_due_posts_each_due_reply_exactly_once(workspace_a, bob, ticket_a, media):
    photo = upload(workspace_a, "photo.jpg")
    soon = comment_schedule(
        ticket=ticket_a,
        actor=Actor.for_agent(bob),
        send_at=in_hours(1),
        body_text="Here is the photo.",
        attachments=[photo],
    )
    later = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=in_hours(3), body_text="Any news?"
    )
    photo.refresh_from_db()
    assert (photo.scheduled_comment, photo.comment) == (soon, None)

    assert scheduled_comments_send_due(now=in_hours(2)) == 1
    assert scheduled_comments_send_due(now=in_hours(2)) == 0

    soon.refresh_from_db()
    later.refresh_from_db()
    assert soon.status == ScheduledCommentStatus.SENT
    assert soon.attempts == 1
    assert soon.sent_at is not None
    posted = soon.comment
    assert (posted.ticket, posted.author_agent, posted.body_text) == (
        ticket_a,
        bob,
        "Here is the photo.",
    )
    assert (later.status, later.comment) == (ScheduledCommentStatus.PENDING, None)
    photo.refresh_from_db()
    assert (photo.comment, photo.scheduled_comment) == (posted, None)
    ticket_a.refresh_from_db()
    assert ticket_a.last_agent_reply_at == posted.created_at
    assert history(ticket_a)[-2:] == [
        ("replied", "", None, None, bob),
        ("field_changed", "status", "new", "open", bob),
    ]


def test_send_due_posts_into_the_merge_target(alice, bob, customer_a, ticket_a):
    target = write_in(customer_a, subject="Printer fire, again")
    scheduled = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=in_hours(1), body_text="Any news?"
    )
    ticket_merge(source=ticket_a, target=target, actor=Actor.for_agent(alice))

    assert scheduled_comments_send_due(now=in_hours(2)) == 1

    scheduled.refresh_from_db()
    assert scheduled.comment.ticket == target
    assert not Comment.objects.filter(ticket=ticket_a).exists()


def test_a_reply_that_cannot_be_sent_is_marked_failed(alice, bob, customer_a, ticket_a):
    other = write_in(customer_a)
    doomed = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=in_hours(1), body_text="Hello?"
    )
    fine = comment_schedule(
        ticket=other, actor=Actor.for_agent(bob), send_at=in_hours(1), body_text="Hello!"
    )
    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))

    assert scheduled_comments_send_due(now=in_hours(2)) == 1
    assert scheduled_comments_send_due(now=in_hours(3)) == 0

    doomed.refresh_from_db()
    assert doomed.status == ScheduledCommentStatus.FAILED
    assert doomed.last_error == "Ticket not found."
    assert (doomed.attempts, doomed.comment) == (1, None)
    assert Comment.objects.filter(ticket=ticket_a).count() == 1
    fine.refresh_from_db()
    assert fine.status == ScheduledCommentStatus.SENT


def test_a_reply_of_a_deactivated_author_fails(bob, ticket_a):
    scheduled = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=in_hours(1), body_text="Hello?"
    )
    agent_deactivate(agent=bob)

    assert scheduled_comments_send_due(now=in_hours(2)) == 0

    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledCommentStatus.FAILED
    assert scheduled.last_error == "This agent is deactivated."
    assert Comment.objects.filter(ticket=ticket_a).count() == 1


# --- Merge ---------------------------------------------------------------------------------------


def test_merge_moves_the_whole_conversation(workspace_a, alice, bob, customer_a, ticket_a, media):
    target = write_in(customer_a, subject="Printer fire, again")
    alice_acts = Actor.for_agent(alice)
    photo = upload(workspace_a, "fire.jpg")
    reply = comment_create(
        ticket=ticket_a,
        actor=Actor.for_customer(customer_a),
        body_text="A photo of the fire.",
        attachments=[photo],
    )
    mapping = EmailTicketMapping.objects.create(
        workspace=workspace_a,
        ticket=ticket_a,
        comment=reply,
        direction=MailDirection.INBOUND,
        message_id="fire-photo@mail.customer.test",
    )
    ticket_add_tags(ticket=ticket_a, actor=alice_acts, tags=["hardware", "fire"])
    ticket_add_tags(ticket=target, actor=alice_acts, tags=["Fire"])
    scheduled = comment_schedule(
        ticket=ticket_a, actor=Actor.for_agent(bob), send_at=in_hours(1), body_text="Any news?"
    )
    moving = set(Comment.objects.filter(ticket=ticket_a).values_list("pk", flat=True))
    staying = set(Comment.objects.filter(ticket=target).values_list("pk", flat=True))

    assert ticket_merge(source=ticket_a, target=target, actor=alice_acts) == target

    assert set(Comment.objects.filter(ticket=target).values_list("pk", flat=True)) == (
        moving | staying
    )
    assert not Comment.objects.filter(ticket=ticket_a).exists()
    photo.refresh_from_db()
    assert (photo.ticket, photo.comment) == (target, reply)
    mapping.refresh_from_db()
    assert mapping.ticket == target
    scheduled.refresh_from_db()
    assert scheduled.ticket == target
    # "fire" and "Fire" are one tag.
    assert sorted(target.tags.values_list("name", flat=True)) == ["fire", "hardware"]
    target.refresh_from_db()
    assert target.last_customer_reply_at == reply.created_at

    ticket_a.refresh_from_db()
    assert ticket_a.merged_into == target
    assert ticket_a.status == "closed"
    assert ticket_a.closed_at is not None
    assert history(ticket_a)[-2:] == [
        ("merged", "merged_into", None, target.number, alice),
        ("field_changed", "status", "new", "closed", alice),
    ]
    assert history(target)[-1] == ("merged_from", "", None, None, alice)
    assert TicketEvent.objects.filter(ticket=target).last().data == {
        "from": ticket_a.pk,
        "from_number": ticket_a.number,
        "comments": 2,
    }


def test_merge_refuses_self_foreign_and_repeated_merges(alice, customer_a, ticket_a, ticket_b):
    alice_acts = Actor.for_agent(alice)
    target = write_in(customer_a)
    third = write_in(customer_a)

    with pytest.raises(InvalidInput) as refused:
        ticket_merge(source=ticket_a, target=ticket_a, actor=alice_acts)
    assert (refused.value.code, refused.value.field) == ("invalid", "into")
    with pytest.raises(InvalidInput) as refused:
        ticket_merge(source=ticket_a, target=ticket_b, actor=alice_acts)
    assert (refused.value.code, refused.value.field) == ("invalid_reference", "into")

    ticket_merge(source=ticket_a, target=target, actor=alice_acts)

    with pytest.raises(Conflict) as refused:
        ticket_merge(source=ticket_a, target=third, actor=alice_acts)
    assert refused.value.code == "ticket_merged"
    with pytest.raises(Conflict) as refused:
        ticket_merge(source=third, target=ticket_a, actor=alice_acts)
    assert refused.value.code == "target_merged"
    # A merged ticket takes no more replies or changes: they belong on the target.
    with pytest.raises(Conflict):
        comment_create(ticket=ticket_a, actor=alice_acts, body_text="Hello?")
    with pytest.raises(Conflict):
        ticket_update(ticket=ticket_a, actor=alice_acts, priority="high")
    assert Comment.objects.filter(ticket=third).count() == 1
    assert Comment.objects.filter(ticket=ticket_b).count() == 1


def test_merging_a_closed_ticket_keeps_its_closing_time(alice, customer_a, ticket_a):
    alice_acts = Actor.for_agent(alice)
    target = write_in(customer_a)
    ticket_set_status(ticket=ticket_a, actor=alice_acts, status="closed")
    ticket_a.refresh_from_db()
    closed_at = ticket_a.closed_at

    ticket_merge(source=ticket_a, target=target, actor=alice_acts)

    ticket_a.refresh_from_db()
    assert (ticket_a.status, ticket_a.closed_at) == ("closed", closed_at)
    assert history(ticket_a)[1:] == [
        ("field_changed", "status", "new", "closed", alice),
        ("merged", "merged_into", None, target.number, alice),
    ]


# --- Delete and restore ----------------------------------------------------------------------


def test_only_admins_delete_and_restore(alice, bob, customer_a, ticket_a):
    with pytest.raises(Forbidden):
        ticket_delete(ticket=ticket_a, actor=Actor.for_agent(bob))
    with pytest.raises(Forbidden):
        ticket_delete(ticket=ticket_a, actor=Actor.for_customer(customer_a))
    start = timezone.now()

    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))

    ticket_a.refresh_from_db()
    assert start <= ticket_a.deleted_at <= timezone.now()
    # Hidden from every write until restored.
    with pytest.raises(NotFound):
        ticket_update(ticket=ticket_a, actor=Actor.for_agent(bob), priority="high")
    with pytest.raises(NotFound):
        comment_create(ticket=ticket_a, actor=Actor.for_customer(customer_a), body_text="Hi")
    with pytest.raises(NotFound):
        ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))
    with pytest.raises(Forbidden):
        ticket_restore(ticket=ticket_a, actor=Actor.for_agent(bob))

    ticket_restore(ticket=ticket_a, actor=Actor.for_agent(alice))

    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is None
    with pytest.raises(Conflict) as refused:
        ticket_restore(ticket=ticket_a, actor=Actor.for_agent(alice))
    assert refused.value.code == "not_deleted"
    assert history(ticket_a)[1:] == [
        ("deleted", "", None, None, alice),
        ("restored", "", None, None, alice),
    ]


# --- Hooks -------------------------------------------------------------------------------------


def test_hooks_hear_every_change_after_commit_as_json(
    workspace_a, alice, bob, customer_a, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = write_in(customer_a, subject="Printer on fire")
        first = Comment.objects.get(ticket=ticket)
        reply = comment_create(ticket=ticket, actor=Actor.for_agent(bob), body_text="On it.")
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob, priority="high")
        duplicate = write_in(customer_a, subject="Printer on fire!!")
        ticket_merge(source=duplicate, target=ticket, actor=Actor.for_agent(alice))
        # Still inside the transaction: nobody has heard anything yet.
        assert received == []

    assert [(change.type, change.ticket_number) for change in received] == [
        ("ticket.created", 1),
        ("comment.created", 1),
        ("ticket.updated", 1),  # new → open by Bob's reply
        ("ticket.updated", 1),
        ("ticket.assigned", 1),
        ("ticket.created", 2),
        ("ticket.merged", 2),
        ("ticket.updated", 1),
    ]
    for change in received:
        payload = dataclasses.asdict(change)
        assert json.loads(json.dumps(payload)) == payload
        assert change.workspace_id == workspace_a.pk
    created, commented, _, updated, assigned, _, merged, _ = received
    assert created.ticket_id == ticket.pk
    assert created.actor == {
        "type": "customer",
        "agent": None,
        "customer": customer_a.pk,
        "automation": None,
    }
    assert created.data == {"comment": first.pk, "status": "new"}
    assert commented.actor["agent"] == bob.pk
    assert commented.data == {"comment": reply.pk, "internal": False, "author_type": "agent"}
    assert updated.data == {
        "changes": {
            "priority": {"old": "normal", "new": "high"},
            "assignee": {"old": None, "new": bob.pk},
        }
    }
    assert assigned.data == {"assignee": bob.pk, "previous": None}
    assert merged.ticket_id == duplicate.pk
    assert merged.data == {"into": ticket.pk, "into_number": 1}


def test_hooks_hear_nothing_of_a_rolled_back_transaction(
    alice, ticket_a, received, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), priority="urgent")
        raise RuntimeError("the caller's next step failed")

    assert callbacks == []
    assert received == []
    ticket_a.refresh_from_db()
    assert ticket_a.priority == "normal"
    assert len(history(ticket_a)) == 1


def test_a_failing_listener_does_not_silence_the_others(
    alice, ticket_a, django_capture_on_commit_callbacks, caplog
):
    heard: list[str] = []

    def webhook_down(change: hooks.TicketChange) -> None:
        raise ConnectionError("webhook endpoint is down")

    def realtime(change: hooks.TicketChange) -> None:
        heard.append(change.type)

    hooks.subscribe(webhook_down)
    hooks.subscribe(realtime)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), priority="high")
    finally:
        hooks.unsubscribe(webhook_down)
        hooks.unsubscribe(realtime)

    assert heard == ["ticket.updated"]
    assert "webhook_down" in caplog.text
