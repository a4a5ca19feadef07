"""The settings pages: each renders the workspace's data only, writes through its service
(history and side effects visible), refuses bad input with a form error and no change, is
a 404 for agents who are not admins, and reads with a constant number of queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from automation.models import BusinessHours, SLAPolicy, SLATarget
from automation.services import business_hours_create, sla_policy_create
from enque.tests.factories import (
    AgentFactory,
    CannedReplyFactory,
    CategoryFactory,
    CompanyFactory,
    TagFactory,
    TeamFactory,
)
from tickets.actors import Actor
from tickets.models import CannedReply, Category, Tag, Ticket, TicketEvent, TicketEventKind
from tickets.services import ticket_update
from workspaces.models import Agent, AgentRole, Customer, Invitation, Team, Workspace
from workspaces.services import invitation_create, team_create

pytestmark = pytest.mark.django_db

LIST_PAGES = [
    "settings_workspace",
    "settings_agents",
    "settings_teams",
    "settings_categories",
    "settings_tags",
    "settings_canned_replies",
    "settings_sla",
    "settings_sla_policy_new",
    "settings_business_hours_new",
]


def page(client: Client, name: str, **kwargs: Any) -> str:
    response = client.get(reverse(f"ui:{name}", kwargs=kwargs or None))
    assert response.status_code == 200, (name, response.status_code)
    return response.content.decode()


def post(client: Client, name: str, data: dict[str, Any], **kwargs: Any):
    return client.post(reverse(f"ui:{name}", kwargs=kwargs or None), data)


# --- Who gets in ---------------------------------------------------------------------------


def test_settings_redirects_to_the_workspace_page(alice_client: Client) -> None:
    response = alice_client.get(reverse("ui:settings"))
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:settings_workspace")


@pytest.mark.parametrize("name", LIST_PAGES)
def test_plain_and_light_agents_get_404(
    signed_in: Callable[[Agent], Client], bob: Agent, workspace_a: Workspace, name: str
) -> None:
    light = AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT)
    for agent in (bob, light):
        assert signed_in(agent).get(reverse(f"ui:{name}")).status_code == 404


def test_the_top_nav_shows_settings_to_admins_only(
    alice_client: Client, bob_client: Client
) -> None:
    assert 'href="/settings"' in alice_client.get(reverse("ui:inbox")).content.decode()
    assert 'href="/settings"' not in bob_client.get(reverse("ui:inbox")).content.decode()


def test_a_plain_agents_post_changes_nothing(
    bob_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    tag = TagFactory(workspace=workspace_a, name="vip")
    assert post(bob_client, "settings_tags", {"name": "sneaky"}).status_code == 404
    assert post(bob_client, "settings_tag_delete", {}, pk=tag.pk).status_code == 404
    assert post(bob_client, "settings_agent_role", {"role": "owner"}, pk=alice.pk).status_code == (
        404
    )
    assert list(Tag.objects.values_list("name", flat=True)) == ["vip"]
    alice.refresh_from_db()
    assert alice.role == AgentRole.ADMIN


@pytest.mark.parametrize("name", LIST_PAGES)
def test_each_page_shows_the_workspace_section_nav(alice_client: Client, name: str) -> None:
    html = page(alice_client, name)
    assert 'aria-label="Settings"' in html
    assert 'aria-current="page"' in html


# --- Workspace -----------------------------------------------------------------------------


def test_workspace_settings_save_through_the_services(
    alice_client: Client, workspace_a: Workspace
) -> None:
    html = page(alice_client, "settings_workspace")
    assert "Acme Support" in html and 'value="Europe/Berlin"' in html
    response = post(
        alice_client,
        "settings_workspace",
        {
            "name": "Acme Help",
            "timezone": "Europe/Berlin",
            "default_signature": "<p>The Acme team</p><script>alert(1)</script>",
            "signup_domains": "Acme.test, @acme.example\nacme.test",
        },
    )
    assert response.status_code == 302
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Acme Help"
    assert workspace_a.timezone == "Europe/Berlin"
    assert workspace_a.signup_domains == ["acme.example", "acme.test"]
    # Sanitised by signature_set_workspace, as the signatures API does.
    assert "The Acme team" in workspace_a.default_signature
    assert "<script>" not in workspace_a.default_signature
    assert "Workspace settings saved." in page(alice_client, "settings_workspace")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice"),
        ({"signup_domains": "localhost"}, "signup_domains", "is not a mail domain"),
        ({"name": "  "}, "name", "This field is required."),
    ],
)
def test_bad_workspace_settings_show_an_error_and_change_nothing(
    alice_client: Client, workspace_a: Workspace, data: dict[str, str], field: str, message: str
) -> None:
    form = {"name": "Renamed", "timezone": "UTC", "default_signature": "", "signup_domains": ""}
    response = post(alice_client, "settings_workspace", {**form, **data})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert f'id="id_{field}_error"' in html
    assert f'aria-describedby="id_{field}_helptext id_{field}_error"' in html or (
        f'aria-describedby="id_{field}_error"' in html
    )
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Acme Support"


# --- Agents and invitations ----------------------------------------------------------------


def test_the_agents_page_lists_this_workspaces_agents_only(
    alice_client: Client, alice: Agent, bob: Agent, charlie: Agent
) -> None:
    team = team_create(workspace=alice.workspace, name="Billing", members=[bob])
    invitation_create(workspace=alice.workspace, actor=alice, email="new@a.test")
    html = page(alice_client, "settings_agents")
    for text in ("Alice Admin", "bob@a.test", "Olivia Owner", team.name, "new@a.test"):
        assert text in html
    assert "charlie@b.test" not in html
    # An admin may not grant owner: the option is not offered.
    assert 'value="owner"' not in html.split('id="role-')[1].split("</select>")[0]


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_inviting_an_agent_emails_a_link(
    alice_client: Client, alice: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    team = TeamFactory(workspace=alice.workspace, name="Billing")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            alice_client,
            "settings_agent_invite",
            {"email": "Newbie@A.test", "role": "light", "teams": [team.pk]},
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.team_ids) == (
        "newbie@a.test",
        "light",
        [team.pk],
    )
    assert invitation.invited_by == alice
    assert mail.outbox[-1].to == ["newbie@a.test"]
    assert "accept-invite?token=" in mail.outbox[-1].body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-address", "role": "agent"}, "Enter a valid email address."),
        ({"email": "x@a.test", "role": "owner"}, "Select a valid choice"),
        ({"email": "bob@a.test", "role": "agent"}, "already an agent of the workspace"),
    ],
)
def test_bad_invitations_are_refused_inline(
    alice_client: Client, bob: Agent, data: dict[str, str], message: str
) -> None:
    response = post(alice_client, "settings_agent_invite", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Invitation.objects.exists()


def test_another_workspaces_team_cannot_be_joined_by_invitation(
    alice_client: Client, workspace_b: Workspace
) -> None:
    foreign = TeamFactory(workspace=workspace_b)
    response = post(
        alice_client,
        "settings_agent_invite",
        {"email": "x@a.test", "role": "agent", "teams": [foreign.pk]},
    )
    assert response.status_code == 400
    assert not Invitation.objects.exists()


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_resend_and_revoke_an_invitation(
    alice_client: Client, alice: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    first, _ = invitation_create(workspace=alice.workspace, actor=alice, email="new@a.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(alice_client, "settings_invitation_resend", {}, pk=first.pk)
    assert response.status_code == 302
    second = Invitation.objects.get()
    assert second.pk != first.pk and second.token_hash != first.token_hash
    assert mail.outbox[-1].to == ["new@a.test"]
    response = post(alice_client, "settings_invitation_revoke", {}, pk=second.pk)
    assert response.status_code == 302
    assert not Invitation.objects.exists()


def test_an_admin_cannot_revoke_an_owners_invitation(
    alice_client: Client, workspace_a: Workspace
) -> None:
    olivia = Agent.objects.get(workspace=workspace_a, role=AgentRole.OWNER)
    invitation, _ = invitation_create(
        workspace=workspace_a, actor=olivia, email="co-owner@a.test", role=AgentRole.OWNER
    )
    response = alice_client.post(
        reverse("ui:settings_invitation_revoke", args=[invitation.pk]), follow=True
    )
    assert "Only an owner" in response.content.decode()
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_changing_a_role(alice_client: Client, bob: Agent) -> None:
    response = post(alice_client, "settings_agent_role", {"role": "light"}, pk=bob.pk)
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.role == AgentRole.LIGHT


def test_role_rules_are_the_services(
    alice_client: Client, signed_in: Callable[[Agent], Client], workspace_a: Workspace, bob: Agent
) -> None:
    olivia = Agent.objects.get(workspace=workspace_a, role=AgentRole.OWNER)
    # An admin cannot touch an owner, nor make one.
    response = post(alice_client, "settings_agent_role", {"role": "agent"}, pk=olivia.pk)
    assert response.status_code == 400
    assert "Only an owner may change an owner" in response.content.decode()
    response = post(alice_client, "settings_agent_role", {"role": "owner"}, pk=bob.pk)
    assert response.status_code == 400
    # The last owner cannot step down.
    response = post(signed_in(olivia), "settings_agent_role", {"role": "admin"}, pk=olivia.pk)
    assert response.status_code == 400
    assert "at least one active owner" in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    olivia.refresh_from_db()
    bob.refresh_from_db()
    assert (olivia.role, bob.role) == (AgentRole.OWNER, AgentRole.AGENT)
    # An owner may make another owner.
    assert (
        post(signed_in(olivia), "settings_agent_role", {"role": "owner"}, pk=bob.pk).status_code
        == 302
    )
    bob.refresh_from_db()
    assert bob.role == AgentRole.OWNER


def test_an_admin_who_demotes_themselves_lands_in_the_inbox(
    alice_client: Client, alice: Agent
) -> None:
    response = post(alice_client, "settings_agent_role", {"role": "agent"}, pk=alice.pk)
    assert response["Location"] == reverse("ui:inbox")
    assert alice_client.get(reverse("ui:settings_agents")).status_code == 404


def test_deactivate_unassigns_tickets_with_history_and_reactivate(
    alice_client: Client, alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), assignee=bob)
    response = post(alice_client, "settings_agent_deactivate", {}, pk=bob.pk)
    assert response.status_code == 302
    bob.refresh_from_db()
    ticket_a.refresh_from_db()
    assert not bob.is_active and ticket_a.assignee_id is None
    assert TicketEvent.objects.filter(
        ticket=ticket_a, field="assignee", data__reason="agent_deactivated"
    ).exists()
    html = page(alice_client, "settings_agents")
    assert "Deactivated" in html and "Reactivate" in html
    assert post(alice_client, "settings_agent_reactivate", {}, pk=bob.pk).status_code == 302
    bob.refresh_from_db()
    assert bob.is_active


def test_nobody_deactivates_themselves(alice_client: Client, alice: Agent) -> None:
    response = post(alice_client, "settings_agent_deactivate", {}, pk=alice.pk)
    assert response.status_code == 400
    assert "You cannot deactivate yourself." in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active


# --- Teams ---------------------------------------------------------------------------------


def test_create_a_team_with_members(alice_client: Client, alice: Agent, bob: Agent) -> None:
    assert "No teams yet" in page(alice_client, "settings_teams")
    response = post(
        alice_client,
        "settings_teams",
        {"name": "Billing", "description": "Invoices", "members": [alice.pk, bob.pk]},
    )
    assert response.status_code == 302
    team = Team.objects.get()
    assert team.name == "Billing" and team.teams_webhook_url == ""
    assert set(team.members.values_list("pk", flat=True)) == {alice.pk, bob.pk}
    html = page(alice_client, "settings_teams")
    assert "Billing" in html and "Bob Agent" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "hardware"}, "A team with this name exists."),
        ({"name": "X", "teams_webhook_url": "http://example.com/hook"}, "https:// URL"),
    ],
)
def test_bad_teams_are_refused(
    alice_client: Client, workspace_a: Workspace, data: dict[str, str], message: str
) -> None:
    TeamFactory(workspace=workspace_a, name="Hardware")
    response = post(alice_client, "settings_teams", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Team.objects.count() == 1


def test_another_workspaces_agent_cannot_join_a_team(alice_client: Client, charlie: Agent) -> None:
    response = post(alice_client, "settings_teams", {"name": "Mixed", "members": [charlie.pk]})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Team.objects.exists()


def test_edit_a_team_and_its_webhook(
    alice_client: Client, workspace_a: Workspace, alice: Agent, bob: Agent
) -> None:
    team = team_create(workspace=workspace_a, name="Hardware", members=[alice])
    html = page(alice_client, "settings_team", pk=team.pk)
    assert 'value="Hardware"' in html
    hook = "https://acme.webhook.office.com/webhookb2/abc"
    response = post(
        alice_client,
        "settings_team",
        {"name": "Devices", "description": "", "members": [bob.pk], "teams_webhook_url": hook},
        pk=team.pk,
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.name == "Devices" and team.teams_webhook_url == hook
    assert list(team.members.all()) == [bob]
    # The secret is never shown again; an empty box keeps it; "remove" clears it.
    html = page(alice_client, "settings_team", pk=team.pk)
    assert hook not in html and "A Teams webhook is connected." in html
    post(alice_client, "settings_team", {"name": "Devices", "members": [bob.pk]}, pk=team.pk)
    team.refresh_from_db()
    assert team.teams_webhook_url == hook
    post(
        alice_client,
        "settings_team",
        {"name": "Devices", "members": [bob.pk], "clear_webhook": "on"},
        pk=team.pk,
    )
    team.refresh_from_db()
    assert team.teams_webhook_url == ""


def test_a_refused_team_edit_changes_nothing(
    alice_client: Client, workspace_a: Workspace, alice: Agent, bob: Agent
) -> None:
    team = team_create(workspace=workspace_a, name="Hardware", members=[alice])
    response = post(
        alice_client,
        "settings_team",
        {"name": "Devices", "members": [bob.pk], "teams_webhook_url": "ftp://x"},
        pk=team.pk,
    )
    assert response.status_code == 400
    team.refresh_from_db()
    assert team.name == "Hardware" and list(team.members.all()) == [alice]


def test_delete_a_team_clears_it_from_tickets_with_history(
    alice_client: Client, workspace_a: Workspace, alice: Agent, ticket_a: Ticket
) -> None:
    team = TeamFactory(workspace=workspace_a, name="Hardware")
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), team=team)
    response = post(alice_client, "settings_team_delete", {}, pk=team.pk)
    assert response.status_code == 302
    assert not Team.objects.exists()
    ticket_a.refresh_from_db()
    assert ticket_a.team_id is None
    assert TicketEvent.objects.filter(ticket=ticket_a, data__reason="team_deleted").exists()


# --- Categories and tags -------------------------------------------------------------------


def test_categories_create_edit_delete(
    alice_client: Client, workspace_a: Workspace, workspace_b: Workspace, alice: Agent,
    ticket_a: Ticket,
) -> None:  # fmt: skip
    CategoryFactory(workspace=workspace_b, name="Globex secrets")
    html = page(alice_client, "settings_categories")
    assert "No categories yet" in html and "Globex secrets" not in html
    assert post(alice_client, "settings_categories", {"name": "Billing"}).status_code == 302
    category = Category.objects.get(workspace=workspace_a)
    response = post(
        alice_client,
        "settings_category",
        {f"e{category.pk}-name": "Invoices", f"e{category.pk}-description": "Money"},
        pk=category.pk,
    )
    assert response.status_code == 302
    category.refresh_from_db()
    assert (category.name, category.description) == ("Invoices", "Money")
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), category=category)
    assert post(alice_client, "settings_category_delete", {}, pk=category.pk).status_code == 302
    ticket_a.refresh_from_db()
    assert ticket_a.category_id is None
    assert TicketEvent.objects.filter(ticket=ticket_a, data__reason="category_deleted").exists()


def test_bad_category_input_is_refused_inline(alice_client: Client, workspace_a: Workspace) -> None:
    CategoryFactory(workspace=workspace_a, name="Billing")
    other = CategoryFactory(workspace=workspace_a, name="Returns")
    response = post(alice_client, "settings_categories", {"name": "billing"})
    assert response.status_code == 400
    assert "A category with this name exists." in response.content.decode()
    response = post(
        alice_client, "settings_category", {f"e{other.pk}-name": "BILLING"}, pk=other.pk
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "A category with this name exists." in html
    assert f'id="id_e{other.pk}-name_error"' in html
    other.refresh_from_db()
    assert other.name == "Returns"
    assert Category.objects.count() == 2


def test_tags_create_edit_delete(
    alice_client: Client, workspace_a: Workspace, alice: Agent, ticket_a: Ticket
) -> None:
    assert "No tags yet" in page(alice_client, "settings_tags")
    response = post(alice_client, "settings_tags", {"name": "vip", "color": "#3B82F6"})
    assert response.status_code == 302
    tag = Tag.objects.get()
    assert (tag.name, tag.color) == ("vip", "#3b82f6")
    assert 'fill="#3b82f6"' in page(alice_client, "settings_tags")
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), tags=["vip", "hardware"])
    response = post(
        alice_client,
        "settings_tag",
        {f"e{tag.pk}-name": "very-important", f"e{tag.pk}-color": ""},
        pk=tag.pk,
    )
    assert response.status_code == 302
    tag.refresh_from_db()
    assert (tag.name, tag.color) == ("very-important", "")
    assert post(alice_client, "settings_tag_delete", {}, pk=tag.pk).status_code == 302
    assert list(ticket_a.tags.values_list("name", flat=True)) == ["hardware"]
    event = TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.TAGS_CHANGED).last()
    assert event.data == {"reason": "tag_deleted"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "vip", "color": "blue"}, "A colour is a hex code such as #3b82f6."),
        ({"name": "VIP"}, "A tag with this name exists."),
        ({"name": "x" * 65}, "at most 64 characters"),
    ],
)
def test_bad_tags_are_refused(
    alice_client: Client, workspace_a: Workspace, data: dict[str, str], message: str
) -> None:
    TagFactory(workspace=workspace_a, name="vip")
    response = post(alice_client, "settings_tags", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(Tag.objects.values_list("name", flat=True)) == ["vip"]


# --- Canned replies ------------------------------------------------------------------------


def test_canned_replies_shared_and_personal(
    alice_client: Client, workspace_a: Workspace, alice: Agent, bob: Agent
) -> None:
    CannedReplyFactory(workspace=workspace_a, title="Bob's own", owner=bob)
    html = page(alice_client, "settings_canned_replies")
    assert "No canned replies yet" in html and "Bob&#x27;s own" not in html
    assert "{{customer.first_name}}" in html  # the placeholders help
    category = CategoryFactory(workspace=workspace_a, name="Billing")
    response = post(
        alice_client,
        "settings_canned_replies",
        {"title": "Refund", "body": "Hi {{customer.first_name}}", "category": category.pk,
         "shared": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    shared = CannedReply.objects.get(title="Refund")
    assert shared.owner is None and shared.category == category
    post(alice_client, "settings_canned_replies", {"title": "Mine", "body": "Cheers"})
    assert CannedReply.objects.get(title="Mine").owner == alice
    html = page(alice_client, "settings_canned_replies")
    assert "Refund" in html and "Mine" in html and "Only you" in html
    # Bob's personal reply does not exist for Alice.
    bobs = CannedReply.objects.get(owner=bob)
    assert alice_client.get(reverse("ui:settings_canned_reply", args=[bobs.pk])).status_code == 404
    assert post(alice_client, "settings_canned_reply_delete", {}, pk=bobs.pk).status_code == 404
    # Edit and delete.
    response = post(
        alice_client,
        "settings_canned_reply",
        {"title": "Refund policy", "body": "Hello", "category": "", "shared": "on"},
        pk=shared.pk,
    )
    assert response.status_code == 302
    shared.refresh_from_db()
    assert (shared.title, shared.body, shared.category) == ("Refund policy", "Hello", None)
    assert post(alice_client, "settings_canned_reply_delete", {}, pk=shared.pk).status_code == 302
    assert not CannedReply.objects.filter(pk=shared.pk).exists()


def test_bad_canned_replies_are_refused(
    alice_client: Client, workspace_a: Workspace, workspace_b: Workspace
) -> None:
    foreign = CategoryFactory(workspace=workspace_b)
    for data, message in (
        ({"title": "", "body": "x"}, "This field is required."),
        ({"title": "T", "body": "   "}, "A body is required."),
        ({"title": "T", "body": "x", "category": foreign.pk}, "Select a valid choice"),
    ):
        response = post(alice_client, "settings_canned_replies", data)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not CannedReply.objects.exists()


# --- SLA policies and business hours -------------------------------------------------------


def hours_form(**overrides: str) -> dict[str, str]:
    data = {"name": "Office", "timezone": "Europe/Berlin", "holidays": ""}
    data.update({f"day_{d}": "09:00-17:00" for d in range(5)})
    data.update(overrides)
    return data


def test_business_hours_create_and_edit(alice_client: Client, workspace_a: Workspace) -> None:
    html = page(alice_client, "settings_business_hours_new")
    assert 'value="09:00-17:00"' in html
    response = post(
        alice_client,
        "settings_business_hours_new",
        hours_form(day_4="09:00-12:00, 13:00-15:00", day_5="10:00-24:00", is_default="on",
                   holidays="2026-12-25 Christmas\n2026-12-26"),
    )  # fmt: skip
    assert response.status_code == 302
    hours = BusinessHours.objects.get()
    assert (hours.name, hours.timezone, hours.is_default) == ("Office", "Europe/Berlin", True)
    slots = list(hours.slots.values_list("weekday", "opens_at", "closes_at"))
    assert (4, time(13), time(15)) in slots and (5, time(10), time(23, 59)) in slots
    assert len(slots) == 7
    assert list(hours.holidays.values_list("date", "name")) == [
        (date(2026, 12, 25), "Christmas"),
        (date(2026, 12, 26), ""),
    ]
    html = page(alice_client, "settings_business_hours", pk=hours.pk)
    assert 'value="10:00-24:00"' in html and "2026-12-25 Christmas" in html
    response = post(
        alice_client, "settings_business_hours", hours_form(name="Shop", day_0=""), pk=hours.pk
    )
    assert response.status_code == 302
    hours.refresh_from_db()
    assert hours.name == "Shop" and not hours.is_default
    assert not hours.slots.filter(weekday=0).exists()
    assert not hours.holidays.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"day_1": "17:00-09:00"}, "day_1", "closes before it opens"),
        ({"day_2": "9 to 5"}, "day_2", "is not a time range"),
        ({"day_3": "09:00-13:00, 12:00-17:00"}, "day_3", "overlaps"),
        ({"holidays": "Christmas"}, "holidays", "does not start with a date"),
        ({"holidays": "2026-12-25\n2026-12-25 again"}, "holidays", "listed twice"),
        ({"timezone": "Nowhere/Land"}, "timezone", "Select a valid choice"),
    ],
)
def test_bad_business_hours_are_refused(
    alice_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = post(alice_client, "settings_business_hours_new", hours_form(**overrides))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert f'id="id_{field}_error"' in html
    assert not BusinessHours.objects.exists()


def policy_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Standard",
        "description": "",
        "is_active": "on",
        "urgent_first_response": "30m",
        "urgent_resolution": "4h",
        "normal_first_response": "1d 2h",
        "normal_resolution": "",
    }
    data.update(overrides)
    return data


def test_sla_policy_create_edit_delete(
    alice_client: Client, alice: Agent, workspace_a: Workspace
) -> None:
    html = page(alice_client, "settings_sla")
    assert "No SLA policies yet" in html and "No business hours yet" in html
    hours = business_hours_create(workspace=workspace_a, actor=alice, name="Office")
    category = CategoryFactory(workspace=workspace_a, name="Billing")
    company = CompanyFactory(workspace=workspace_a, name="Initech")
    carol = Customer.objects.create(workspace=workspace_a, email="carol@c.test")
    response = post(
        alice_client,
        "settings_sla_policy_new",
        policy_form(business_hours=hours.pk, category=category.pk, company=company.pk,
                    customer_email="Carol@C.test"),
    )  # fmt: skip
    assert response.status_code == 302
    policy = SLAPolicy.objects.get()
    assert (policy.business_hours, policy.category, policy.company, policy.customer) == (
        hours,
        category,
        company,
        carol,
    )
    targets = {
        t.priority: (t.first_response_minutes, t.resolution_minutes) for t in policy.targets.all()
    }
    assert targets == {"urgent": (30, 240), "normal": (26 * 60, None)}
    html = page(alice_client, "settings_sla")
    assert "Standard" in html and "1d 2h" in html and "Counts Office" in html
    html = page(alice_client, "settings_sla_policy", pk=policy.pk)
    assert 'value="1d 2h"' in html and 'value="carol@c.test"' in html
    response = post(
        alice_client,
        "settings_sla_policy",
        policy_form(name="Gold", is_active="", normal_first_response="", high_resolution="90"),
        pk=policy.pk,
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.name == "Gold" and not policy.is_active and policy.business_hours is None
    assert set(SLATarget.objects.values_list("priority", "first_response_minutes",
                                             "resolution_minutes")) == {
        ("urgent", 30, 240),
        ("high", None, 90),
    }  # fmt: skip
    assert post(alice_client, "settings_sla_policy_delete", {}, pk=policy.pk).status_code == 302
    assert not SLAPolicy.objects.exists()
    assert post(alice_client, "settings_business_hours_delete", {}, pk=hours.pk).status_code == 302
    assert not BusinessHours.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"urgent_first_response": "soon"}, "urgent_first_response", "Write a duration"),
        ({"urgent_resolution": "400d"}, "urgent_resolution", "Between 1 minute and 366 days"),
        ({"customer_email": "ghost@x.test"}, "customer_email", "No customer with this address"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_bad_sla_policies_are_refused(
    alice_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = post(alice_client, "settings_sla_policy_new", policy_form(**overrides))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and f'id="id_{field}_error"' in html
    assert not SLAPolicy.objects.exists()


def test_a_policy_needs_a_target(alice_client: Client) -> None:
    response = post(
        alice_client,
        "settings_sla_policy_new",
        policy_form(urgent_first_response="", urgent_resolution="", normal_first_response=""),
    )
    assert response.status_code == 400
    assert "Give at least one target" in response.content.decode()


def test_another_workspaces_business_hours_cannot_be_named(
    alice_client: Client, workspace_b: Workspace, charlie: Agent
) -> None:
    foreign = business_hours_create(workspace=workspace_b, actor=charlie, name="Globex")
    response = post(alice_client, "settings_sla_policy_new", policy_form(business_hours=foreign.pk))
    assert response.status_code == 400
    assert not SLAPolicy.objects.exists()
    assert "Globex" not in page(alice_client, "settings_sla")


# --- Query counts --------------------------------------------------------------------------


def _fill(workspace: Workspace, admin: Agent, n: int) -> None:
    agents = [AgentFactory(workspace=workspace) for _ in range(n)]
    for i in range(n):
        team_create(workspace=workspace, name=f"Team {n}-{i}", members=agents[: i % 3 + 1])
        CategoryFactory(workspace=workspace)
        TagFactory(workspace=workspace, color="#112233")
        CannedReplyFactory(workspace=workspace, category=CategoryFactory(workspace=workspace))
        invitation_create(workspace=workspace, actor=admin, email=f"inv{n}-{i}@a.test")
        hours = business_hours_create(
            workspace=workspace,
            actor=admin,
            name=f"Hours {n}-{i}",
            slots=[{"weekday": 0, "opens_at": time(9), "closes_at": time(17)}],
            holidays=[{"date": date(2026, 12, 25), "name": "Christmas"}],
        )
        sla_policy_create(
            workspace=workspace,
            actor=admin,
            name=f"Policy {n}-{i}",
            business_hours=hours,
            category=CategoryFactory(workspace=workspace),
            targets=[{"priority": "urgent", "first_response_minutes": 30}],
        )


def _queries(client: Client, name: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse(f"ui:{name}")).status_code == 200
    return len(ctx.captured_queries)


# Every page: the session, its user, the agent with its workspace, and the layout's workspace
# switcher (4); then the page's own reads, listed per page.
QUERY_BUDGETS = {
    "settings_workspace": 4,  # nothing more: the workspace came with the agent
    "settings_agents": 8,  # agents+users, their teams, the teams (invite form), invitations
    "settings_teams": 7,  # agents (member choices), teams, their members with users
    "settings_categories": 5,  # the categories
    "settings_tags": 5,  # the tags
    "settings_canned_replies": 6,  # categories (form), replies with category and owner
    "settings_sla": 9,  # policies with refs, targets, schedules, slots, holidays
    "settings_sla_policy_new": 7,  # the form's schedules, categories, companies
    "settings_business_hours_new": 4,  # nothing more
}


@pytest.mark.parametrize("name", LIST_PAGES)
def test_list_pages_read_a_constant_number_of_queries(
    alice_client: Client, alice: Agent, workspace_a: Workspace, name: str
) -> None:
    _fill(workspace_a, alice, 2)
    small = _queries(alice_client, name)
    _fill(workspace_a, alice, 18)
    assert _queries(alice_client, name) == small
    assert small <= QUERY_BUDGETS[name]
