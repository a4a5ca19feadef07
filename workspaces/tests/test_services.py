"""Workspaces and people: tenants, memberships and roles, teams, companies, customers.

Olivia owns workspace A ("Acme Support"), Alice is an admin there, Bob an agent; Carol is a
customer of A. Charlie is the admin of workspace B.
"""

from __future__ import annotations

import pytest

from enque.errors import Conflict, InvalidInput
from enque.tests.factories import CustomerFactory, UserFactory
from tickets.actors import Actor
from tickets.models import TicketCounter, TicketEvent
from tickets.services import ticket_assign
from workspaces.models import Agent, AgentRole, Company, Customer, User, Workspace
from workspaces.services import (
    agent_add,
    agent_deactivate,
    agent_set_role,
    company_create,
    company_set_domains,
    customer_get_or_create,
    team_create,
    team_set_members,
    user_create,
    workspace_create,
)

pytestmark = pytest.mark.django_db


def olivia(workspace: Workspace) -> Agent:
    """The workspace's owner, made by workspace_create."""
    return Agent.objects.for_workspace(workspace).get(role=AgentRole.OWNER)


# --- Workspaces and users ------------------------------------------------------------------


def test_workspace_create_makes_the_owner_an_agent_and_starts_the_numbering():
    owner = UserFactory(email="olivia@a.test")

    workspace = workspace_create(name="  Acme Support ", owner=owner, timezone_name="Europe/Berlin")

    assert (workspace.name, workspace.slug, workspace.timezone) == (
        "Acme Support",
        "acme-support",
        "Europe/Berlin",
    )
    [agent] = Agent.objects.for_workspace(workspace)
    assert (agent.user, agent.role, agent.is_active) == (owner, AgentRole.OWNER, True)
    assert TicketCounter.objects.for_workspace(workspace).get().last_number == 0
    owner.refresh_from_db()
    assert owner.last_workspace == workspace


def test_workspace_slugs_stay_unique():
    owner = UserFactory()

    slugs = [workspace_create(name="Acme Support", owner=owner).slug for _ in range(3)]

    assert slugs == ["acme-support", "acme-support-2", "acme-support-3"]
    # A name with nothing to slugify still gets a usable slug.
    assert workspace_create(name="!!!", owner=owner).slug == "workspace"
    with pytest.raises(InvalidInput) as refused:
        workspace_create(name="   ", owner=owner)
    assert refused.value.field == "name"


def test_user_create_lowercases_and_refuses_a_taken_address():
    user = user_create(email=" Alice@Example.COM ", name=" Alice ", password="s3cret-enough")

    assert (user.email, user.name) == ("alice@example.com", "Alice")
    assert user.check_password("s3cret-enough")
    with pytest.raises(Conflict) as refused:
        user_create(email="ALICE@example.com")
    assert (refused.value.code, refused.value.field) == ("email_taken", "email")
    assert User.objects.count() == 1


# --- Agents and roles ----------------------------------------------------------------------


def test_agent_add_joins_and_rejoins_a_workspace(workspace_a, workspace_b):
    user = UserFactory(email="bob@a.test")

    bob = agent_add(workspace=workspace_a, user=user, display_name="Bobby")
    assert (bob.role, bob.display_name, bob.is_active) == (AgentRole.AGENT, "Bobby", True)
    # The same person may work in another workspace too.
    elsewhere = agent_add(workspace=workspace_b, user=user, role=AgentRole.LIGHT)
    assert elsewhere.pk != bob.pk
    assert elsewhere.role == AgentRole.LIGHT

    agent_deactivate(agent=bob)
    again = agent_add(workspace=workspace_a, user=user, role=AgentRole.ADMIN)

    assert again.pk == bob.pk
    bob.refresh_from_db()
    assert (bob.is_active, bob.role) == (True, AgentRole.ADMIN)
    assert Agent.objects.filter(user=user).count() == 2
    with pytest.raises(InvalidInput) as refused:
        agent_add(workspace=workspace_a, user=user, role="superhero")
    assert refused.value.field == "role"


def test_the_last_owner_cannot_be_demoted_or_deactivated(workspace_a, alice):
    owner = olivia(workspace_a)

    with pytest.raises(Conflict) as refused:
        agent_set_role(agent=owner, role=AgentRole.ADMIN)
    assert refused.value.code == "last_owner"
    with pytest.raises(Conflict):
        agent_deactivate(agent=owner)
    # agent_add on an existing member changes the role too: it must not bypass the rule.
    with pytest.raises(Conflict):
        agent_add(workspace=workspace_a, user=owner.user, role=AgentRole.AGENT)
    owner.refresh_from_db()
    assert (owner.role, owner.is_active) == (AgentRole.OWNER, True)

    # With Alice promoted to owner, Olivia may step down.
    agent_set_role(agent=alice, role=AgentRole.OWNER)
    agent_set_role(agent=owner, role=AgentRole.ADMIN)
    owner.refresh_from_db()
    assert owner.role == AgentRole.ADMIN
    with pytest.raises(InvalidInput):
        agent_set_role(agent=alice, role="king")


def test_an_inactive_owner_does_not_count_as_another_owner(workspace_a, alice):
    owner = olivia(workspace_a)
    agent_set_role(agent=alice, role=AgentRole.OWNER)
    agent_deactivate(agent=alice)

    with pytest.raises(Conflict):
        agent_deactivate(agent=owner)


def test_deactivating_an_agent_unassigns_their_tickets(
    workspace_a, alice, bob, customer_a, ticket_a
):
    from tickets.services import ticket_create

    alice_acts = Actor.for_agent(alice)
    ticket_assign(ticket=ticket_a, actor=alice_acts, assignee=bob)
    alices = ticket_create(
        workspace=workspace_a,
        actor=alice_acts,
        subject="Alice keeps this one",
        body_text="Hi",
        customer=customer_a,
        assignee=alice,
    )
    ticket_a.refresh_from_db()
    updated_at = ticket_a.updated_at

    agent_deactivate(agent=bob)

    bob.refresh_from_db()
    assert not bob.is_active
    ticket_a.refresh_from_db()
    assert ticket_a.assignee is None
    assert ticket_a.updated_at > updated_at
    last = TicketEvent.objects.filter(ticket=ticket_a).last()
    assert (last.kind, last.field, last.old_value, last.new_value, last.actor_type) == (
        "field_changed",
        "assignee",
        bob.pk,
        None,
        "system",
    )
    alices.refresh_from_db()
    assert alices.assignee == alice


def test_deactivation_is_announced_after_commit(
    alice, bob, ticket_a, django_capture_on_commit_callbacks
):
    from tickets import hooks

    ticket_assign(ticket=ticket_a, actor=Actor.for_agent(alice), assignee=bob)
    heard: list[hooks.TicketChange] = []
    hooks.subscribe(heard.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            agent_deactivate(agent=bob)
            assert heard == []
    finally:
        hooks.unsubscribe(heard.append)

    assert [(c.type, c.ticket_id) for c in heard] == [
        ("ticket.updated", ticket_a.pk),
        ("ticket.assigned", ticket_a.pk),
    ]
    assert heard[0].data == {"changes": {"assignee": {"old": bob.pk, "new": None}}}
    assert heard[1].data == {"assignee": None, "previous": bob.pk}


# --- Teams ----------------------------------------------------------------------------------


def test_team_members_are_set_and_replaced(workspace_a, alice, bob, charlie):
    billing = team_create(workspace=workspace_a, name=" Billing ", members=[alice, bob])

    assert billing.name == "Billing"
    assert set(billing.members.all()) == {alice, bob}

    team_set_members(team=billing, members=[bob])
    assert list(billing.members.all()) == [bob]
    assert billing.memberships.get().workspace_id == workspace_a.pk

    with pytest.raises(InvalidInput) as refused:
        team_set_members(team=billing, members=[bob, charlie])
    assert (refused.value.code, refused.value.field) == ("invalid_reference", "members")
    assert list(billing.members.all()) == [bob]

    team_set_members(team=billing, members=[])
    assert not billing.members.exists()


def test_team_names_are_unique_per_workspace_ignoring_case(workspace_a, workspace_b):
    team_create(workspace=workspace_a, name="Billing")

    with pytest.raises(Conflict) as refused:
        team_create(workspace=workspace_a, name="BILLING")
    assert (refused.value.code, refused.value.field) == ("duplicate", "name")
    assert team_create(workspace=workspace_b, name="billing").workspace == workspace_b
    with pytest.raises(InvalidInput):
        team_create(workspace=workspace_a, name="  ")


# --- Companies ------------------------------------------------------------------------------


def domains(company: Company) -> list[str]:
    return list(company.domains.order_by("domain").values_list("domain", flat=True))


def test_company_domains_are_normalised_and_replaced(workspace_a):
    acme = company_create(
        workspace=workspace_a,
        name=" Acme Corp ",
        domains=[" @Acme.COM. ", "acme.com", "acme.io", ""],
    )

    assert acme.name == "Acme Corp"
    assert domains(acme) == ["acme.com", "acme.io"]
    assert {d.workspace_id for d in acme.domains.all()} == {workspace_a.pk}

    company_set_domains(company=acme, domains=["ACME.io", "acme.de"])
    assert domains(acme) == ["acme.de", "acme.io"]

    for bad in ("localhost", "carol@acme.com", "acme .com"):
        with pytest.raises(InvalidInput) as refused:
            company_set_domains(company=acme, domains=[bad])
        assert refused.value.field == "domains"
    assert domains(acme) == ["acme.de", "acme.io"]


def test_a_domain_belongs_to_one_company_per_workspace(workspace_a, workspace_b):
    acme = company_create(workspace=workspace_a, name="Acme", domains=["acme.com"])
    globex = company_create(workspace=workspace_a, name="Globex", domains=["globex.com"])

    with pytest.raises(Conflict) as refused:
        company_set_domains(company=globex, domains=["globex.com", "ACME.com"])
    assert (refused.value.code, refused.value.field) == ("duplicate", "domains")
    with pytest.raises(Conflict):
        company_create(workspace=workspace_a, name="Acme Imposters", domains=["acme.com"])
    with pytest.raises(Conflict):
        company_create(workspace=workspace_a, name="ACME")

    assert domains(globex) == ["globex.com"]
    assert domains(acme) == ["acme.com"]
    assert Company.objects.for_workspace(workspace_a).count() == 2
    # Another workspace has its own customers at acme.com.
    assert domains(company_create(workspace=workspace_b, name="Acme", domains=["acme.com"])) == [
        "acme.com"
    ]


# --- Customers ------------------------------------------------------------------------------


def test_customer_lookup_ignores_case(workspace_a, customer_a):
    found, created = customer_get_or_create(workspace=workspace_a, email=" CAROL@Customer.test ")

    assert (found, created) == (customer_a, False)
    assert Customer.objects.for_workspace(workspace_a).count() == 1


def test_a_new_customer_joins_the_company_of_their_domain(workspace_a, workspace_b):
    acme = company_create(workspace=workspace_a, name="Acme", domains=["acme.com"])

    erin, created = customer_get_or_create(
        workspace=workspace_a, email="Erin@ACME.com", name=" Erin Example "
    )

    assert created
    assert (erin.email, erin.name, erin.company) == ("erin@acme.com", "Erin Example", acme)
    assert erin.workspace == workspace_a
    stranger, _ = customer_get_or_create(workspace=workspace_a, email="frank@elsewhere.test")
    assert stranger.company is None
    # Workspace B knows no company for acme.com, and gets its own Erin.
    erin_b, created = customer_get_or_create(workspace=workspace_b, email="erin@acme.com")
    assert created
    assert erin_b.pk != erin.pk
    assert erin_b.company is None


def test_a_known_name_is_filled_in_but_never_overwritten(workspace_a):
    nameless = CustomerFactory(workspace=workspace_a, email="gina@customer.test", name="")

    gina, created = customer_get_or_create(
        workspace=workspace_a, email="gina@customer.test", name="Gina G."
    )
    assert (gina, created) == (nameless, False)
    gina.refresh_from_db()
    assert gina.name == "Gina G."

    customer_get_or_create(workspace=workspace_a, email="gina@customer.test", name="GINA (mobile)")
    gina.refresh_from_db()
    assert gina.name == "Gina G."


def test_a_customer_needs_an_email_address(workspace_a):
    with pytest.raises(InvalidInput) as refused:
        customer_get_or_create(workspace=workspace_a, email="not an address")

    assert refused.value.field == "email"
    assert not Customer.objects.exists()
