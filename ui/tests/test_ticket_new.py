"""Tickets in the UI: opening one, renaming it, deleting and restoring it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from enque.tests.factories import AgentFactory, CustomerFactory, TeamFactory, UserFactory
from tickets.models import Comment, Ticket, TicketEvent, TicketEventKind
from workspaces.models import Agent, AgentRole, Customer, Workspace

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def new_ticket(**overrides: Any) -> dict[str, Any]:
    data = {
        "subject": "Replacement toner",
        "customer": "carol@customer.test",
        "customer_name": "",
        "body": "Hello Carol, we are sending you a new toner.",
        "note": "",
        "priority": "normal",
        "assignee": "",
        "team": "",
        "category": "",
        "tags": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def light_client(signed_in: Any, workspace_a: Workspace) -> Client:
    user = UserFactory(email="lena@a.test", name="Lena Light")
    return signed_in(AgentFactory(workspace=workspace_a, user=user, role=AgentRole.LIGHT))


# --- Opening a ticket ----------------------------------------------------------------------


def test_the_inbox_offers_a_new_ticket_button(alice_client: Client) -> None:
    content = alice_client.get(reverse("ui:inbox")).content.decode()
    assert f'href="{reverse("ui:ticket_new")}" data-new-ticket' in content
    # ... and the shortcut is in the help.
    assert "<dd>New ticket</dd>" in content


def test_an_agent_opens_a_ticket_for_a_known_customer(
    bob_client: Client, bob: Agent, alice: Agent, workspace_a: Workspace, customer_a: Customer
) -> None:
    team = TeamFactory(workspace=workspace_a, name="Hardware")
    assert bob_client.get(reverse("ui:ticket_new")).status_code == 200
    response = bob_client.post(
        reverse("ui:ticket_new"),
        new_ticket(
            customer="CAROL@customer.test",
            priority="high",
            assignee=str(alice.pk),
            team=str(team.pk),
            tags="toner, hardware",
            note="Sent by courier.",
        ),
    )
    ticket = Ticket.objects.get(workspace=workspace_a, subject="Replacement toner")
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:ticket", args=[ticket.number])
    assert ticket.customer == customer_a
    assert (ticket.channel, ticket.priority, ticket.assignee, ticket.team) == (
        "web",
        "high",
        alice,
        team,
    )
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["hardware", "toner"]
    comments = list(ticket.comments.order_by("id").values_list("is_internal", "body_text"))
    assert comments == [
        (False, "Hello Carol, we are sending you a new toner."),
        (True, "Sent by courier."),
    ]
    assert ticket.comments.first().author_agent == bob
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.CREATED).exists()


def test_a_new_address_becomes_a_customer(alice_client: Client, workspace_a: Workspace) -> None:
    alice_client.post(
        reverse("ui:ticket_new"),
        new_ticket(customer="Dan Dealer <dan@dealer.test>", customer_name="Dan Dealer"),
    )
    customer = Customer.objects.get(workspace=workspace_a, email="dan@dealer.test")
    assert customer.name == "Dan Dealer"
    assert Ticket.objects.get(subject="Replacement toner").customer == customer


def test_a_refused_ticket_shows_the_errors_and_leaves_no_customer(
    alice_client: Client, workspace_a: Workspace, workspace_b: Workspace
) -> None:
    foreign_team = TeamFactory(workspace=workspace_b)
    response = alice_client.post(
        reverse("ui:ticket_new"),
        new_ticket(subject="  ", customer="not an address", body=" ", team=str(foreign_team.pk)),
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "This field is required." in content  # the subject
    assert "Write the first message." in content
    assert "Select a valid choice." in content  # another workspace's team
    # A valid form with a bad address: the service's refusal, on the customer field.
    response = alice_client.post(reverse("ui:ticket_new"), new_ticket(customer="nobody"))
    assert response.status_code == 400
    assert "A customer needs an email address." in response.content.decode()
    assert not Customer.objects.filter(workspace=workspace_a).exists()
    assert not Ticket.objects.filter(workspace=workspace_a).exists()


def test_light_agents_cannot_open_tickets(
    light_client: Client, workspace_a: Workspace, customer_a: Customer
) -> None:
    page = light_client.get(reverse("ui:ticket_new")).content.decode()
    assert "not open tickets" in page
    assert "data-new-ticket" not in light_client.get(reverse("ui:inbox")).content.decode()
    response = light_client.post(reverse("ui:ticket_new"), new_ticket())
    assert response.status_code == 400
    assert "Light agents cannot open tickets." in response.content.decode()
    assert not Ticket.objects.filter(workspace=workspace_a).exists()


def test_customer_suggestions_are_this_workspaces(
    alice_client: Client, workspace_a: Workspace, workspace_b: Workspace
) -> None:
    CustomerFactory(workspace=workspace_a, email="carla@acme.test", name="Carla")
    CustomerFactory(workspace=workspace_b, email="carlos@globex.test", name="Carlos")
    response = alice_client.get(reverse("ui:ticket_new_customers"), {"customer": "carl"}, **HTMX)
    content = response.content.decode()
    assert '<option value="carla@acme.test">Carla</option>' in content
    assert "globex" not in content


# --- Renaming ------------------------------------------------------------------------------


def test_the_subject_is_edited_inline_with_history(bob_client: Client, ticket_a: Ticket) -> None:
    page = bob_client.get(reverse("ui:ticket", args=[ticket_a.number])).content.decode()
    assert reverse("ui:ticket_subject", args=[ticket_a.number]) in page
    response = bob_client.post(
        reverse("ui:ticket_subject", args=[ticket_a.number]),
        {"subject": "Printer on fire (3rd floor)"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "Printer on fire (3rd floor)" in response.content.decode()  # the live bundle
    ticket_a.refresh_from_db()
    assert ticket_a.subject == "Printer on fire (3rd floor)"
    event = TicketEvent.objects.get(ticket=ticket_a, field="subject")
    assert (event.old_value, event.new_value) == ("Printer on fire", "Printer on fire (3rd floor)")


def test_an_empty_subject_is_refused(bob_client: Client, ticket_a: Ticket) -> None:
    response = bob_client.post(
        reverse("ui:ticket_subject", args=[ticket_a.number]), {"subject": ""}, **HTMX
    )
    assert "The subject cannot be empty" in response.content.decode()
    ticket_a.refresh_from_db()
    assert ticket_a.subject == "Printer on fire"


def test_a_light_agent_cannot_rename(light_client: Client, ticket_a: Ticket) -> None:
    page = light_client.get(reverse("ui:ticket", args=[ticket_a.number])).content.decode()
    assert reverse("ui:ticket_subject", args=[ticket_a.number]) not in page
    response = light_client.post(
        reverse("ui:ticket_subject", args=[ticket_a.number]), {"subject": "Mine"}, **HTMX
    )
    assert "Light agents" in response.content.decode()
    ticket_a.refresh_from_db()
    assert ticket_a.subject == "Printer on fire"


# --- Deleting and restoring ----------------------------------------------------------------


def test_an_admin_deletes_and_restores_a_ticket(alice_client: Client, ticket_a: Ticket) -> None:
    page = alice_client.get(reverse("ui:ticket", args=[ticket_a.number])).content.decode()
    assert reverse("ui:ticket_delete", args=[ticket_a.number]) in page
    response = alice_client.post(reverse("ui:ticket_delete", args=[ticket_a.number]))
    assert response["Location"] == reverse("ui:inbox")
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is not None
    # Gone from the inbox, listed with the deleted ones.
    inbox = alice_client.get(reverse("ui:inbox"), {"view": "all"}).content.decode()
    assert "Printer on fire" not in inbox
    deleted = alice_client.get(reverse("ui:tickets_deleted")).content.decode()
    assert "Printer on fire" in deleted
    # Its page says so, with no reply box, and offers the restore.
    page = alice_client.get(reverse("ui:ticket", args=[ticket_a.number])).content.decode()
    assert "This ticket was deleted" in page
    assert 'id="reply-form"' not in page
    response = alice_client.post(reverse("ui:ticket_restore", args=[ticket_a.number]))
    assert response["Location"] == reverse("ui:ticket", args=[ticket_a.number])
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is None
    kinds = list(TicketEvent.objects.filter(ticket=ticket_a).values_list("kind", flat=True))
    assert TicketEventKind.DELETED in kinds and TicketEventKind.RESTORED in kinds
    empty = alice_client.get(reverse("ui:tickets_deleted")).content.decode()
    assert "No deleted tickets" in empty


def test_agents_cannot_delete_and_do_not_see_deleted_tickets(
    bob_client: Client, alice_client: Client, ticket_a: Ticket
) -> None:
    page = bob_client.get(reverse("ui:ticket", args=[ticket_a.number])).content.decode()
    assert reverse("ui:ticket_delete", args=[ticket_a.number]) not in page
    response = bob_client.post(reverse("ui:ticket_delete", args=[ticket_a.number]), follow=True)
    assert "Only admins delete tickets." in response.content.decode()
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is None
    alice_client.post(reverse("ui:ticket_delete", args=[ticket_a.number]))
    # To an agent a deleted ticket does not exist, nor does the list of them.
    assert bob_client.get(reverse("ui:ticket", args=[ticket_a.number])).status_code == 404
    assert bob_client.post(reverse("ui:ticket_restore", args=[ticket_a.number])).status_code == 404
    assert bob_client.get(reverse("ui:tickets_deleted")).status_code == 404
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is not None


def test_restoring_a_ticket_that_is_not_deleted_says_so(
    alice_client: Client, ticket_a: Ticket
) -> None:
    response = alice_client.post(reverse("ui:ticket_restore", args=[ticket_a.number]), follow=True)
    assert "This ticket is not deleted." in response.content.decode()


def test_a_deleted_ticket_cannot_be_changed(alice_client: Client, ticket_a: Ticket) -> None:
    alice_client.post(reverse("ui:ticket_delete", args=[ticket_a.number]))
    before = Comment.objects.count()
    response = alice_client.post(
        reverse("ui:ticket_reply", args=[ticket_a.number]), {"mode": "note", "body": "x"}
    )
    assert response.status_code == 404
    assert Comment.objects.count() == before


def test_charlie_cannot_see_workspace_as_deleted_tickets(
    alice_client: Client, charlie_client: Client, ticket_a: Ticket
) -> None:
    alice_client.post(reverse("ui:ticket_delete", args=[ticket_a.number]))
    content = charlie_client.get(reverse("ui:tickets_deleted")).content.decode()
    assert "Printer on fire" not in content
    response = charlie_client.post(reverse("ui:ticket_restore", args=[ticket_a.number]))
    assert response.status_code == 404
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is not None
