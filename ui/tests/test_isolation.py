"""Charlie (admin of workspace B) gets 404 on every UI URL naming workspace A's objects,
exactly as for objects that do not exist, and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from automation.models import BusinessHours, SLAPolicy
from enque.tests.factories import (
    AgentFactory,
    CannedReplyFactory,
    CategoryFactory,
    CompanyFactory,
    TagFactory,
    TeamFactory,
)
from integrations.models import MailboxConnection
from tickets.actors import Actor
from tickets.models import Comment, ScheduledComment, Ticket, TicketAttachment
from tickets.services import comment_schedule, saved_view_create
from tickets.tests.api_support import use_memory_storage
from ui.tests.test_auth import ui_patterns
from workspaces.models import Agent, Customer, Workspace
from workspaces.services import invitation_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    use_memory_storage(settings)


@pytest.fixture
def a_objects(workspace_a: Workspace, alice: Agent, ticket_a: Ticket, customer_a: Customer):
    attachment = TicketAttachment(
        workspace=workspace_a, ticket=ticket_a, filename="a.png", content_type="image/png"
    )
    attachment.file.save("a.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=False)
    attachment.save()
    scheduled = comment_schedule(
        ticket=ticket_a,
        actor=Actor.for_agent(alice),
        send_at=timezone.now() + timedelta(days=1),
        body_text="Later",
    )
    return {
        "number": ticket_a.number,
        "customer": customer_a.pk,
        "company": CompanyFactory(workspace=workspace_a).pk,
        "attachment": attachment.pk,
        "scheduled": scheduled.pk,
        "canned": CannedReplyFactory(workspace=workspace_a).pk,
        "saved_view": saved_view_create(
            workspace=workspace_a, agent=alice, name="Shared", filters={}, shared=True
        ).pk,
        "team": TeamFactory(workspace=workspace_a).pk,
        **settings_objects(workspace_a, alice),
        **automation_objects(workspace_a, alice),
        "mailbox": MailboxConnection.objects.create(
            workspace=workspace_a, provider="imap", email_address="help@a.test"
        ).pk,
    }


def automation_objects(workspace_a: Workspace, alice: Agent) -> dict[str, int]:
    """Workspace A's workflow and automation, for the rule editor's cases."""
    from automation.services import automation_create, workflow_create

    workflow = workflow_create(
        workspace=workspace_a, actor=alice, name="Triage", trigger="ticket_created"
    )
    rule = automation_create(
        workspace=workspace_a,
        actor=alice,
        name="Urgent fires",
        trigger="ticket_created",
        workflow=workflow,
        conditions=[{"field": "subject", "operator": "contains", "value": "fire"}],
        actions=[{"action_type": "set_priority", "params": {"priority": "urgent"}}],
    )
    return {"automation": rule.pk, "workflow": workflow.pk}


def settings_objects(workspace_a: Workspace, alice: Agent) -> dict[str, int]:
    """Workspace A's settings objects, for the settings pages' cases."""
    hours = BusinessHours.objects.create(workspace=workspace_a, name="Office")
    return {
        "agent": AgentFactory(workspace=workspace_a).pk,
        "invitation": invitation_create(workspace=workspace_a, actor=alice, email="new@a.test")[
            0
        ].pk,
        "category": CategoryFactory(workspace=workspace_a).pk,
        "tag": TagFactory(workspace=workspace_a).pk,
        "hours": hours.pk,
        "policy": SLAPolicy.objects.create(
            workspace=workspace_a, name="Standard", business_hours=hours
        ).pk,
    }


# (url name, kwargs from a_objects, method, data). Every ui URL with an object in its path
# must be here: test_every_object_url_is_covered checks.
CASES = [
    ("ticket", {"number": "number"}, "get", {}),
    ("ticket_live", {"number": "number"}, "get", {}),
    ("ticket_reply", {"number": "number"}, "post", {"mode": "note", "body": "Hi"}),
    ("ticket_update", {"number": "number"}, "post", {"status": "closed"}),
    ("ticket_tags", {"number": "number"}, "post", {"add": "x"}),
    ("ticket_merge", {"number": "number"}, "post", {"into": 1}),
    ("canned_render", {"number": "number", "pk": "canned"}, "post", {}),
    ("scheduled_cancel", {"pk": "scheduled"}, "post", {}),
    ("attachment_download", {"pk": "attachment"}, "get", {}),
    ("attachment_inline", {"pk": "attachment"}, "get", {}),
    ("customer", {"pk": "customer"}, "get", {}),
    ("customer", {"pk": "customer"}, "post", {"name": "Hacked", "email": "h@x.test"}),
    ("company", {"pk": "company"}, "get", {}),
    ("company", {"pk": "company"}, "post", {"name": "Hacked"}),
    ("saved_view_delete", {"pk": "saved_view"}, "post", {}),
    # Settings (charlie is an admin: the 404 is the workspace's, not the role's).
    ("settings_agent_role", {"pk": "agent"}, "post", {"role": "light"}),
    ("settings_agent_deactivate", {"pk": "agent"}, "post", {}),
    ("settings_agent_reactivate", {"pk": "agent"}, "post", {}),
    ("settings_invitation_resend", {"pk": "invitation"}, "post", {}),
    ("settings_invitation_revoke", {"pk": "invitation"}, "post", {}),
    ("settings_team", {"pk": "team"}, "get", {}),
    ("settings_team", {"pk": "team"}, "post", {"name": "Hacked"}),
    ("settings_team_delete", {"pk": "team"}, "post", {}),
    ("settings_category", {"pk": "category"}, "post", {"name": "Hacked"}),
    ("settings_category_delete", {"pk": "category"}, "post", {}),
    ("settings_tag", {"pk": "tag"}, "post", {"name": "hacked"}),
    ("settings_tag_delete", {"pk": "tag"}, "post", {}),
    ("settings_canned_reply", {"pk": "canned"}, "get", {}),
    ("settings_canned_reply", {"pk": "canned"}, "post", {"title": "Hacked", "body": "x"}),
    ("settings_canned_reply_delete", {"pk": "canned"}, "post", {}),
    ("settings_sla_policy", {"pk": "policy"}, "get", {}),
    ("settings_sla_policy", {"pk": "policy"}, "post", {"name": "X", "urgent_resolution": "1h"}),
    ("settings_sla_policy_delete", {"pk": "policy"}, "post", {}),
    ("settings_business_hours", {"pk": "hours"}, "get", {}),
    ("settings_business_hours", {"pk": "hours"}, "post", {"name": "Hacked", "timezone": "UTC"}),
    ("settings_business_hours_delete", {"pk": "hours"}, "post", {}),
    # Automations and workflows (ui/views/automations.py).
    ("settings_automation", {"pk": "automation"}, "get", {}),
    (
        "settings_automation",
        {"pk": "automation"},
        "post",
        {"name": "Hacked", "trigger": "ticket_created", "match": "all"},
    ),
    ("settings_automation_toggle", {"pk": "automation"}, "post", {}),
    ("settings_automation_delete", {"pk": "automation"}, "post", {}),
    ("settings_workflow", {"pk": "workflow"}, "get", {}),
    ("settings_workflow", {"pk": "workflow"}, "post", {"name": "Hacked", "trigger": "time"}),
    ("settings_workflow_toggle", {"pk": "workflow"}, "post", {}),
    ("settings_workflow_delete", {"pk": "workflow"}, "post", {}),
    # Renaming, deleting and restoring a ticket.
    ("ticket_subject", {"number": "number"}, "post", {"subject": "Hacked"}),
    ("ticket_delete", {"number": "number"}, "post", {}),
    ("ticket_restore", {"number": "number"}, "post", {}),
    # Mailboxes (ui/views/mailboxes.py).
    ("settings_mailbox", {"pk": "mailbox"}, "get", {}),
    ("settings_mailbox", {"pk": "mailbox"}, "post", {"display_name": "Hacked"}),
    ("settings_mailbox_delete", {"pk": "mailbox"}, "post", {}),
    ("settings_mailbox_sync", {"pk": "mailbox"}, "post", {}),
]


def test_every_object_url_is_covered() -> None:
    with_objects = {p.name for p in ui_patterns() if p.pattern.converters}
    assert with_objects == {name for name, *_ in CASES}


@pytest.mark.parametrize(("name", "kwargs", "method", "data"), CASES, ids=lambda c: str(c))
def test_charlie_gets_404(
    charlie_client: Client,
    alice_client: Client,
    a_objects: dict[str, int],
    name: str,
    kwargs: dict[str, str],
    method: str,
    data: dict[str, Any],
) -> None:
    path = reverse(f"ui:{name}", kwargs={k: a_objects[v] for k, v in kwargs.items()})
    before = (
        Comment.objects.count(),
        list(Ticket.objects.values_list("status", "merged_into_id")),
        list(Customer.objects.values_list("name", flat=True)),
        ScheduledComment.objects.filter(status="pending").count(),
    )
    response = getattr(charlie_client, method)(path, data)
    assert response.status_code == 404, (name, response.status_code)
    after = (
        Comment.objects.count(),
        list(Ticket.objects.values_list("status", "merged_into_id")),
        list(Customer.objects.values_list("name", flat=True)),
        ScheduledComment.objects.filter(status="pending").count(),
    )
    assert before == after
    # The 404 looks like any other: nothing of A's shows.
    assert b"Printer on fire" not in response.content
    # ... while Alice, in workspace A, reaches the same URL (GETs only: no side effects).
    if method == "get":
        assert alice_client.get(path).status_code == 200


def test_charlie_cannot_open_a_views_of_workspace_a(
    charlie_client: Client, a_objects: dict[str, int]
) -> None:
    inbox = reverse("ui:inbox")
    assert charlie_client.get(inbox, {"view": f"team-{a_objects['team']}"}).status_code == 404
    assert (
        charlie_client.get(inbox, {"view": f"saved-{a_objects['saved_view']}"}).status_code == 404
    )


def test_charlies_lists_show_nothing_of_workspace_a(
    charlie_client: Client, a_objects: dict[str, int]
) -> None:
    for name in ("inbox", "customers", "companies"):
        response = charlie_client.get(reverse(f"ui:{name}"), {"view": "all"})
        assert response.status_code == 200
        assert b"Printer on fire" not in response.content
        assert b"carol@customer.test" not in response.content
    # A's customer as a filter is refused like a missing one.
    response = charlie_client.get(
        reverse("ui:inbox"), {"view": "all", "customer": a_objects["customer"]}
    )
    assert b"Unknown customer in this workspace." in response.content
