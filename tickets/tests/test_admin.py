"""The ticket admin changes tickets only through tickets.services: every edit, addition and
bulk action leaves history rows naming the admin who acted."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from enque.tests.admin_helpers import changeform_data
from enque.tests.factories import TagFactory
from tickets.actors import Actor
from tickets.models import (
    Comment,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)
from tickets.services import ticket_merge

CHANGELIST = reverse("admin:tickets_ticket_changelist")


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


@pytest.fixture
def staff_client(client, alice):
    """Alice: staff, admin of workspace A only."""
    alice.user.is_staff = True
    alice.user.save(update_fields=["is_staff"])
    client.force_login(alice.user)
    return client


def run_action(client, action: str, tickets: list[Ticket], **extra):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [t.pk for t in tickets], "index": 0, **extra},
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def status_events(ticket: Ticket):
    return TicketEvent.objects.filter(ticket=ticket, field="status")


# --- Actions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [("close_tickets", TicketStatus.CLOSED), ("resolve_tickets", TicketStatus.RESOLVED)],
)
def test_status_actions_write_history_as_the_admins_agent(
    staff_client, alice, ticket_a, action, status
) -> None:
    response = run_action(staff_client, action, [ticket_a])
    assert response.status_code == 302
    ticket_a.refresh_from_db()
    assert ticket_a.status == status
    assert ticket_a.resolved_at is not None
    event = status_events(ticket_a).get()
    assert (event.old_value, event.new_value) == (TicketStatus.NEW, status)
    assert event.actor_agent == alice
    assert event.actor_type == "agent"


def test_an_action_on_an_unchanged_ticket_writes_nothing(staff_client, ticket_a) -> None:
    run_action(staff_client, "close_tickets", [ticket_a])
    run_action(staff_client, "close_tickets", [ticket_a])
    assert status_events(ticket_a).count() == 1


def test_reassign_shows_a_form_of_the_workspaces_agents_then_assigns(
    staff_client, alice, bob, charlie, ticket_a
) -> None:
    page = run_action(staff_client, "reassign_tickets", [ticket_a])
    assert page.status_code == 200
    assert "admin/tickets/ticket/reassign.html" in [t.name for t in page.templates]
    choices = {str(agent) for agent in page.context["form"].fields["assignee"].queryset}
    assert bob.name in choices
    assert charlie.name not in choices  # another workspace's agent is never offered

    response = run_action(
        staff_client, "reassign_tickets", [ticket_a], apply="yes", assignee=bob.pk
    )
    assert response.status_code == 302
    ticket_a.refresh_from_db()
    assert ticket_a.assignee == bob
    event = TicketEvent.objects.get(ticket=ticket_a, field="assignee")
    assert (event.old_value, event.new_value, event.actor_agent) == (None, bob.pk, alice)


def test_reassign_refuses_another_workspaces_agent(staff_client, charlie, ticket_a) -> None:
    response = run_action(
        staff_client, "reassign_tickets", [ticket_a], apply="yes", assignee=charlie.pk
    )
    assert response.status_code == 200  # the form again, with its error
    assert "assignee" in response.context["form"].errors
    ticket_a.refresh_from_db()
    assert ticket_a.assignee is None


def test_reassign_can_unassign(staff_client, alice, bob, ticket_a) -> None:
    from tickets.services import ticket_assign

    ticket_assign(ticket=ticket_a, actor=Actor.for_agent(alice), assignee=bob)
    run_action(staff_client, "reassign_tickets", [ticket_a], apply="yes", assignee="")
    ticket_a.refresh_from_db()
    assert ticket_a.assignee is None


def test_reassign_needs_tickets_of_one_workspace(admin_client, ticket_a, ticket_b) -> None:
    response = run_action(admin_client, "reassign_tickets", [ticket_a, ticket_b])
    assert response.status_code == 302
    assert any("one workspace" in m for m in messages_of(response))
    ticket_a.refresh_from_db()
    assert ticket_a.assignee is None


def test_soft_delete_and_restore_through_the_services(staff_client, alice, ticket_a) -> None:
    run_action(staff_client, "soft_delete_tickets", [ticket_a])
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is not None
    deleted = TicketEvent.objects.get(ticket=ticket_a, kind=TicketEventKind.DELETED)
    assert deleted.actor_agent == alice

    # Still listed for admins (that is where it is restored), and view-only meanwhile.
    listed = staff_client.get(CHANGELIST, {"state": "deleted"})
    assert "Printer on fire" in listed.content.decode()
    page = staff_client.get(change_url(ticket_a))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff_client.post(change_url(ticket_a), {"subject": "x"}).status_code == 403

    run_action(staff_client, "restore_tickets", [ticket_a])
    ticket_a.refresh_from_db()
    assert ticket_a.deleted_at is None
    restored = TicketEvent.objects.get(ticket=ticket_a, kind=TicketEventKind.RESTORED)
    assert restored.actor_agent == alice


def test_hard_delete_is_not_offered(staff_client, ticket_a) -> None:
    assert "delete_selected" not in staff_client.get(CHANGELIST).content.decode()
    delete_url = reverse("admin:tickets_ticket_delete", args=[ticket_a.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Ticket.objects.filter(pk=ticket_a.pk).exists()


def test_a_superuser_without_an_agent_acts_as_the_system(admin_client, ticket_a) -> None:
    run_action(admin_client, "close_tickets", [ticket_a])
    event = status_events(ticket_a).get()
    assert event.actor_type == "system"
    assert event.actor_agent is None


def test_merged_tickets_are_view_only_and_skipped_by_actions(
    staff_client, alice, ticket_a, customer_a
):
    from tickets.services import ticket_create

    target = ticket_create(
        workspace=ticket_a.workspace,
        actor=Actor.for_customer(customer_a),
        subject="Same fire",
        body_text="Still burning",
        customer=customer_a,
    )
    ticket_merge(source=ticket_a, target=target, actor=Actor.for_agent(alice))
    response = run_action(staff_client, "resolve_tickets", [ticket_a])
    assert response.status_code == 302
    ticket_a.refresh_from_db()
    assert ticket_a.status == TicketStatus.CLOSED  # merging closed it; resolve was refused
    assert any("merged" in m for m in messages_of(response))
    assert b'name="_save"' not in staff_client.get(change_url(ticket_a)).content


# --- The change and add forms ------------------------------------------------------------


def test_editing_a_ticket_goes_through_ticket_update(staff_client, alice, bob, ticket_a) -> None:
    data = changeform_data(staff_client.get(change_url(ticket_a)))
    data.update(
        subject="Printer  still on fire", status="pending", priority="high", assignee=bob.pk
    )
    response = staff_client.post(change_url(ticket_a), data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    ticket_a.refresh_from_db()
    assert (ticket_a.subject, ticket_a.status, ticket_a.priority, ticket_a.assignee) == (
        "Printer still on fire",
        "pending",
        "high",
        bob,
    )
    events = {e.field: e for e in TicketEvent.objects.filter(ticket=ticket_a, field__gt="")}
    assert set(events) == {"subject", "status", "priority", "assignee"}
    assert {e.actor_agent for e in events.values()} == {alice}
    assert events["assignee"].new_value == bob.pk
    # The admin's own log still records the change.
    assert LogEntry.objects.filter(object_id=str(ticket_a.pk)).exists()


def test_saving_an_unchanged_ticket_writes_no_history(staff_client, ticket_a) -> None:
    before = TicketEvent.objects.filter(ticket=ticket_a).count()
    data = changeform_data(staff_client.get(change_url(ticket_a)))
    assert staff_client.post(change_url(ticket_a), data).status_code == 302
    assert TicketEvent.objects.filter(ticket=ticket_a).count() == before


def test_customer_and_channel_are_fixed_once_a_ticket_exists(staff_client, ticket_a) -> None:
    form = staff_client.get(change_url(ticket_a)).context["adminform"].form
    assert "customer" not in form.fields
    assert "channel" not in form.fields
    assert "workspace" not in form.fields


def test_adding_a_ticket_goes_through_ticket_create(
    staff_client, alice, bob, workspace_a, customer_a, ticket_a
) -> None:
    response = staff_client.post(
        reverse("admin:tickets_ticket_add"),
        {
            "workspace": workspace_a.pk,
            "customer": customer_a.pk,
            "subject": "Phoned in: toner low",
            "body": "The customer called about the toner.",
            "channel": "web",
            "priority": "low",
            "assignee": bob.pk,
            "tag_names": "phone, toner",
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get(subject="Phoned in: toner low")
    assert ticket.number == ticket_a.number + 1  # the workspace's sequence
    assert ticket.status == TicketStatus.OPEN  # assigned on creation
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["phone", "toner"]
    comment = Comment.objects.get(ticket=ticket)
    assert (comment.author_agent, comment.body_text) == (
        alice,
        "The customer called about the toner.",
    )
    created = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.CREATED)
    assert created.actor_agent == alice
    assert ticket.body.text == "The customer called about the toner."


def test_the_tag_inline_saves_through_the_service(
    staff_client, alice, workspace_a, ticket_a
) -> None:
    urgent = TagFactory(workspace=workspace_a, name="urgent")
    data = changeform_data(staff_client.get(change_url(ticket_a)))
    total = int(data["ticket_tags-TOTAL_FORMS"])
    data["ticket_tags-TOTAL_FORMS"] = total + 1
    data[f"ticket_tags-{total}-tag"] = urgent.pk
    assert staff_client.post(change_url(ticket_a), data).status_code == 302
    assert list(ticket_a.tags.values_list("name", flat=True)) == ["urgent"]
    event = TicketEvent.objects.get(ticket=ticket_a, kind=TicketEventKind.TAGS_CHANGED)
    assert (event.old_value, event.new_value, event.actor_agent) == ([], ["urgent"], alice)

    data = changeform_data(staff_client.get(change_url(ticket_a)))
    data["ticket_tags-0-DELETE"] = "on"
    assert staff_client.post(change_url(ticket_a), data).status_code == 302
    assert not ticket_a.tags.exists()
    assert (
        TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.TAGS_CHANGED).count() == 2
    )


def test_the_tag_inline_refuses_another_workspaces_tag(admin_client, workspace_b, ticket_a) -> None:
    foreign = TagFactory(workspace=workspace_b, name="foreign")
    data = changeform_data(admin_client.get(change_url(ticket_a)))
    total = int(data["ticket_tags-TOTAL_FORMS"])
    data["ticket_tags-TOTAL_FORMS"] = total + 1
    data[f"ticket_tags-{total}-tag"] = foreign.pk
    response = admin_client.post(change_url(ticket_a), data)
    assert response.status_code == 200
    assert not ticket_a.tags.exists()


def test_search_by_number(staff_client, ticket_a) -> None:
    response = staff_client.get(CHANGELIST, {"q": f"#{ticket_a.number}"})
    assert list(response.context["cl"].result_list) == [ticket_a]
    response = staff_client.get(CHANGELIST, {"q": "printer"})
    assert list(response.context["cl"].result_list) == [ticket_a]
