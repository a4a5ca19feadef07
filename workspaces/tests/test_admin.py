"""Admin for users, workspaces, agents, teams, companies and customers."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from enque.tests.admin_helpers import changeform_data
from enque.tests.factories import CompanyFactory, TeamFactory, TicketFactory
from tickets.models import TicketCounter
from workspaces.models import Agent, AgentRole, CompanyDomain, Customer, User, Workspace


def url(obj_or_model, view: str = "change") -> str:
    opts = obj_or_model._meta
    args = [obj_or_model.pk] if view in ("change", "delete") else []
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def staff_client(client, alice):
    """Alice: staff, admin (not owner) of workspace A only."""
    alice.user.is_staff = True
    alice.user.save(update_fields=["is_staff"])
    client.force_login(alice.user)
    return client


@pytest.fixture
def olivia(workspace_a) -> Agent:
    """Workspace A's owner, made by workspace_create."""
    return Agent.objects.get(workspace=workspace_a, role=AgentRole.OWNER)


# --- Users ---------------------------------------------------------------------------------


def test_user_add_form_takes_an_email_and_two_passwords(admin_client) -> None:
    page = admin_client.get(url(User, "add"))
    fields = set(page.context["adminform"].form.fields)
    assert {"email", "password1", "password2"} <= fields
    assert "username" not in fields
    response = admin_client.post(
        url(User, "add"),
        {
            "email": "New.Person@Example.TEST",
            "name": "New Person",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.test")
    assert user.check_password("a-long-enough-passphrase")
    assert not user.is_staff


def test_user_add_refuses_mismatched_passwords_and_taken_emails(admin_client, alice) -> None:
    response = admin_client.post(
        url(User, "add"),
        {
            "email": "ALICE@a.test",
            "usable_password": "true",
            "password1": "x1y2z3w4v5u6",
            "password2": "nope",
        },
    )
    errors = response.context["adminform"].form.errors
    assert "password2" in errors
    assert "email" in errors
    assert User.objects.filter(email__iexact="alice@a.test").count() == 1


def test_user_change_page_lists_memberships(admin_client, alice) -> None:
    html = admin_client.get(url(alice.user)).content.decode()
    assert "Acme Support" in html
    assert "Admin" in html


# --- Workspaces ----------------------------------------------------------------------------


def test_superuser_creates_a_workspace_through_the_service(admin_client, alice) -> None:
    response = admin_client.post(
        url(Workspace, "add"),
        {"name": "Initech", "owner_email": "ALICE@a.test", "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 302
    workspace = Workspace.objects.get(name="Initech")
    assert workspace.slug == "initech"
    assert Agent.objects.get(workspace=workspace).user == alice.user
    assert Agent.objects.get(workspace=workspace).role == AgentRole.OWNER
    assert TicketCounter.objects.filter(workspace=workspace).exists()


def test_workspace_time_zone_is_validated(admin_client, alice) -> None:
    response = admin_client.post(
        url(Workspace, "add"), {"name": "X", "owner_email": "alice@a.test", "timezone": "Mars/Base"}
    )
    assert "timezone" in response.context["adminform"].form.errors


def test_workspace_admins_edit_their_workspace_only(staff_client, workspace_a, workspace_b) -> None:
    html = staff_client.get(url(Workspace, "changelist")).content.decode()
    assert "Acme Support" in html
    assert "Globex Help" not in html
    assert staff_client.get(url(Workspace, "add")).status_code == 403
    assert staff_client.get(url(workspace_b)).status_code == 302
    page = staff_client.get(url(workspace_a))
    assert "slug" not in page.context["adminform"].form.fields  # superusers only
    data = changeform_data(page)
    data["name"] = "Acme Helpdesk"
    assert staff_client.post(url(workspace_a), data).status_code == 302
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Acme Helpdesk"
    assert staff_client.post(url(workspace_a, "delete"), {"post": "yes"}).status_code == 403


# --- Agents --------------------------------------------------------------------------------


def test_adding_an_agent_invites_a_new_or_existing_user(staff_client, workspace_a, charlie) -> None:
    response = staff_client.post(
        url(Agent, "add"),
        {"workspace": workspace_a.pk, "email": "Newbie@A.test", "name": "Newbie", "role": "agent"},
    )
    assert response.status_code == 302
    newbie = Agent.objects.get(workspace=workspace_a, user__email="newbie@a.test")
    assert newbie.role == AgentRole.AGENT
    assert not newbie.user.has_usable_password()

    # Charlie's user exists (agent of B): he joins A with the same login.
    staff_client.post(
        url(Agent, "add"),
        {"workspace": workspace_a.pk, "email": "charlie@b.test", "role": "light"},
    )
    assert Agent.objects.get(workspace=workspace_a, user=charlie.user).role == AgentRole.LIGHT
    assert User.objects.filter(email="charlie@b.test").count() == 1


def test_adding_an_existing_member_is_a_form_error(staff_client, workspace_a, bob) -> None:
    response = staff_client.post(
        url(Agent, "add"), {"workspace": workspace_a.pk, "email": "bob@a.test", "role": "agent"}
    )
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors


def test_the_last_owner_cannot_be_demoted(admin_client, olivia) -> None:
    data = changeform_data(admin_client.get(url(olivia)))
    data["role"] = "admin"
    data["display_name"] = "Should not stick"
    response = admin_client.post(url(olivia), data)
    # The service refused; the whole save was rolled back and the form shown again.
    assert response.status_code == 302
    assert response.url == url(olivia)
    assert any("at least one active owner" in m for m in messages_of(response))
    olivia.refresh_from_db()
    assert (olivia.role, olivia.display_name) == (AgentRole.OWNER, "")
    assert not LogEntry.objects.filter(object_id=str(olivia.pk)).exists()


def test_only_owners_grant_the_owner_role(staff_client, bob) -> None:
    data = changeform_data(staff_client.get(url(bob)))
    data["role"] = "owner"
    response = staff_client.post(url(bob), data)
    assert any("Only an owner" in m for m in messages_of(response))
    bob.refresh_from_db()
    assert bob.role == AgentRole.AGENT


def test_role_changes_go_through_the_service(staff_client, bob) -> None:
    data = changeform_data(staff_client.get(url(bob)))
    data["role"] = "light"
    data["display_name"] = "Bobby"
    assert staff_client.post(url(bob), data).status_code == 302
    bob.refresh_from_db()
    assert (bob.role, bob.display_name) == (AgentRole.LIGHT, "Bobby")


def test_deactivating_an_agent_releases_their_tickets(staff_client, workspace_a, bob) -> None:
    ticket = TicketFactory(workspace=workspace_a, assignee=bob)
    data = changeform_data(staff_client.get(url(bob)))
    del data["is_active"]  # unticked
    assert staff_client.post(url(bob), data).status_code == 302
    bob.refresh_from_db()
    ticket.refresh_from_db()
    assert not bob.is_active
    assert ticket.assignee is None

    data = changeform_data(staff_client.get(url(bob)))
    data["is_active"] = "on"
    assert staff_client.post(url(bob), data).status_code == 302
    bob.refresh_from_db()
    assert bob.is_active


def test_deactivate_action(staff_client, bob) -> None:
    staff_client.post(
        url(Agent, "changelist"),
        {"action": "deactivate_agents", "_selected_action": [bob.pk], "index": 0},
    )
    bob.refresh_from_db()
    assert not bob.is_active


def test_agents_are_never_deleted_here(admin_client, bob) -> None:
    assert admin_client.post(url(bob, "delete"), {"post": "yes"}).status_code == 403


# --- Teams, companies, customers -----------------------------------------------------------


def test_team_members_inline_saves_through_the_service(staff_client, workspace_a, bob, charlie):
    team = TeamFactory(workspace=workspace_a)
    data = changeform_data(staff_client.get(url(team)))
    data["memberships-TOTAL_FORMS"] = 1
    data["memberships-0-agent"] = bob.pk
    assert staff_client.post(url(team), data).status_code == 302
    assert list(team.members.all()) == [bob]

    data = changeform_data(staff_client.get(url(team)))
    data["memberships-TOTAL_FORMS"] = 2
    data["memberships-1-agent"] = charlie.pk  # another workspace's agent
    response = staff_client.post(url(team), data)
    assert response.status_code == 200
    assert list(team.members.all()) == [bob]


def test_company_domains_are_normalised_and_unique(staff_client, workspace_a) -> None:
    company = CompanyFactory(workspace=workspace_a)
    data = changeform_data(staff_client.get(url(company)))
    data["domains-TOTAL_FORMS"] = 1
    data["domains-0-domain"] = " @Acme.COM. "
    assert staff_client.post(url(company), data).status_code == 302
    assert list(company.domains.values_list("domain", flat=True)) == ["acme.com"]

    other = CompanyFactory(workspace=workspace_a)
    data = changeform_data(staff_client.get(url(other)))
    data["domains-TOTAL_FORMS"] = 1
    data["domains-0-domain"] = "ACME.com"
    response = staff_client.post(url(other), data)
    assert response.status_code == 200  # a form error, not an IntegrityError
    assert CompanyDomain.objects.filter(domain="acme.com").count() == 1


def test_customer_email_is_unique_per_workspace_case_insensitively(
    staff_client, workspace_a, customer_a
) -> None:
    response = staff_client.post(
        url(Customer, "add"), {"workspace": workspace_a.pk, "email": customer_a.email.upper()}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Customer.objects.filter(workspace=workspace_a).count() == 1


def test_customer_company_must_be_of_the_same_workspace(
    admin_client, workspace_a, workspace_b
) -> None:
    foreign = CompanyFactory(workspace=workspace_b)
    response = admin_client.post(
        url(Customer, "add"),
        {"workspace": workspace_a.pk, "email": "new@c.test", "company": foreign.pk},
    )
    assert "company" in response.context["adminform"].form.errors
