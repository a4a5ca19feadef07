"""The people API: /v1/customers, /v1/companies, /v1/agents, /v1/teams, /v1/signatures.

Olivia owns workspace A, Alice is an admin there, Bob an agent and Lena a light agent;
Carol is a customer of A. Charlie is the admin of workspace B, whose objects A's tokens
never see (404 for B's ids in URLs, 400 ``invalid_reference`` for B's ids in bodies and
filters) and never list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from enque.tests.factories import (
    AgentFactory,
    CompanyFactory,
    CustomerFactory,
    TagFactory,
    TeamFactory,
    UserFactory,
)
from tickets.actors import Actor
from tickets.models import Ticket, TicketEvent, TicketEventKind
from tickets.services import ticket_create, ticket_delete, ticket_update
from workspaces.models import (
    Agent,
    AgentRole,
    Company,
    CompanyDomain,
    Customer,
    Team,
    TeamMembership,
    Workspace,
)
from workspaces.services import company_create, team_create

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Agent], APIClient]


@pytest.fixture
def olivia(workspace_a: Workspace) -> Agent:
    """Workspace A's owner (made by workspace_create)."""
    return Agent.objects.for_workspace(workspace_a).get(role=AgentRole.OWNER)


@pytest.fixture
def lena(workspace_a: Workspace) -> Agent:
    user = UserFactory(email="lena@a.test", name="Lena Light")
    return AgentFactory(workspace=workspace_a, user=user, role=AgentRole.LIGHT)


@pytest.fixture
def acme(workspace_a: Workspace) -> Company:
    return company_create(workspace=workspace_a, name="Customer Inc", domains=["customer.test"])


@pytest.fixture
def globex(workspace_b: Workspace) -> Company:
    return company_create(workspace=workspace_b, name="Other Corp", domains=["other.test"])


def error(response: Any) -> dict[str, Any]:
    return response.json()["error"]


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.content
    body = error(response)
    assert body["code"] == code, body
    if field is not None:
        assert field in body.get("fields", {}), body


def count_queries(client: APIClient, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def make_ticket(workspace: Workspace, customer: Customer, **changes: Any) -> Ticket:
    return ticket_create(
        workspace=workspace,
        actor=Actor.for_customer(customer),
        subject="Help",
        body_text="Please help.",
        customer=customer,
        channel="email",
        **changes,
    )


# --- Customers: list and search ---------------------------------------------------------------


def test_customer_list_is_the_workspaces_own_newest_first(
    client_for: ClientFor, bob: Agent, customer_a: Customer, customer_b: Customer, acme: Company
):
    newer = CustomerFactory(workspace=customer_a.workspace, email="zed@zed.test", company=acme)

    response = client_for(bob).get("/v1/customers")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["id"] for c in results] == [newer.pk, customer_a.pk]
    assert results[0]["company"] == {"id": acme.pk, "name": "Customer Inc"}
    assert results[1]["company"] is None
    assert set(results[1]) >= {"email", "name", "display_name", "phone", "notes", "created_at"}
    assert customer_b.pk not in {c["id"] for c in results}


def test_customer_search_covers_name_and_email_and_never_another_workspace(
    client_for: ClientFor, alice: Agent, customer_a: Customer, customer_b: Customer
):
    client = client_for(alice)
    CustomerFactory(workspace=customer_a.workspace, email="dave@dave.test", name="Dave Local")

    by_name = client.get("/v1/customers", {"q": "carol"}).json()["results"]
    by_email = client.get("/v1/customers", {"q": "CUSTOMER.TEST"}).json()["results"]
    # "Dave Customer" is B's: only A's Dave is found.
    daves = client.get("/v1/customers", {"q": "dave"}).json()["results"]

    assert [c["id"] for c in by_name] == [customer_a.pk]
    assert [c["id"] for c in by_email] == [customer_a.pk]
    assert [c["email"] for c in daves] == ["dave@dave.test"]


def test_customer_filter_by_company_is_checked_in_the_workspace(
    client_for: ClientFor, alice: Agent, customer_a: Customer, acme: Company, globex: Company
):
    member = CustomerFactory(workspace=customer_a.workspace, company=acme)
    client = client_for(alice)

    response = client.get("/v1/customers", {"company": acme.pk})

    assert [c["id"] for c in response.json()["results"]] == [member.pk]
    assert_error(
        client.get("/v1/customers", {"company": globex.pk}), 400, "invalid_reference", "company"
    )
    assert_error(client.get("/v1/customers", {"company": "x"}), 400, "invalid", "company")
    assert_error(client.get("/v1/customers", {"sort": "name"}), 400, "invalid", "sort")
    assert_error(client.get("/v1/customers", {"q": "x" * 201}), 400, "invalid", "q")


def test_customer_list_costs_the_same_at_5_and_50_rows(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace, acme: Company
):
    client = client_for(alice)
    CustomerFactory.create_batch(5, workspace=workspace_a, company=acme)
    # 1. the token's agent (with user and workspace); 2. the customers joined to companies.
    at_5, body = count_queries(client, "/v1/customers?page_size=100")
    assert len(body["results"]) == 5
    CustomerFactory.create_batch(45, workspace=workspace_a, company=acme)
    at_50, body = count_queries(client, "/v1/customers?page_size=100")
    assert len(body["results"]) == 50
    assert at_5 == at_50 == 2


def test_customer_list_pages_with_a_cursor(client_for: ClientFor, alice: Agent, workspace_a):
    CustomerFactory.create_batch(3, workspace=workspace_a)
    client = client_for(alice)

    first = client.get("/v1/customers", {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert second["next"] is None
    assert_error(client.get("/v1/customers", {"page_size": 101}), 400, "invalid", "page_size")


# --- Customers: create, change, delete -------------------------------------------------------


def test_an_agent_creates_a_customer_who_joins_the_company_of_their_domain(
    client_for: ClientFor, bob: Agent, acme: Company
):
    response = client_for(bob).post(
        "/v1/customers",
        {"email": " Erin@Customer.TEST ", "name": "Erin Example", "phone": "+1 555 0100"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["email"], body["name"], body["phone"]) == (
        "erin@customer.test",
        "Erin Example",
        "+1 555 0100",
    )
    assert body["company"] == {"id": acme.pk, "name": "Customer Inc"}
    assert Customer.objects.get(pk=body["id"]).workspace_id == bob.workspace_id


def test_customer_create_with_an_explicit_company_or_none(
    client_for: ClientFor, alice: Agent, acme: Company, workspace_a: Workspace
):
    client = client_for(alice)
    other = company_create(workspace=workspace_a, name="Elsewhere")

    chosen = client.post("/v1/customers", {"email": "f@customer.test", "company_id": other.pk})
    without = client.post("/v1/customers", {"email": "g@customer.test", "company_id": None})

    assert chosen.json()["company"]["id"] == other.pk
    assert without.json()["company"] is None


def test_customer_create_validates_its_fields(client_for: ClientFor, bob: Agent):
    client = client_for(bob)

    missing = client.post("/v1/customers", {"name": "No Email"})
    invalid = client.post("/v1/customers", {"email": "not-an-address", "phone": "1" * 51})

    assert_error(missing, 400, "invalid", "email")
    assert_error(invalid, 400, "invalid", "email")
    assert "phone" in error(invalid)["fields"]
    assert not Customer.objects.filter(name="No Email").exists()


def test_customer_email_is_unique_in_the_workspace_in_any_case(
    client_for: ClientFor, bob: Agent, customer_a: Customer, customer_b: Customer
):
    client = client_for(bob)

    duplicate = client.post("/v1/customers", {"email": "CAROL@customer.test"})
    # B's customer's address is free in A.
    other_workspace = client.post("/v1/customers", {"email": "dave@other.test"})

    assert_error(duplicate, 409, "duplicate", "email")
    assert other_workspace.status_code == 201


def test_customer_create_refuses_another_workspaces_company(
    client_for: ClientFor, alice: Agent, globex: Company
):
    response = client_for(alice).post(
        "/v1/customers", {"email": "h@example.test", "company_id": globex.pk}
    )

    assert_error(response, 400, "invalid_reference", "company_id")
    assert not Customer.objects.filter(email="h@example.test").exists()


def test_a_light_agent_reads_customers_but_cannot_change_them(
    client_for: ClientFor, lena: Agent, customer_a: Customer
):
    client = client_for(lena)

    assert client.get(f"/v1/customers/{customer_a.pk}").status_code == 200
    assert_error(client.post("/v1/customers", {"email": "x@x.test"}), 403, "light_agent")
    assert_error(client.patch(f"/v1/customers/{customer_a.pk}", {"name": "X"}), 403, "light_agent")


def test_an_agent_changes_a_customer(
    client_for: ClientFor, bob: Agent, customer_a: Customer, acme: Company
):
    response = client_for(bob).patch(
        f"/v1/customers/{customer_a.pk}",
        {"name": "Carol C. Customer", "notes": "VIP", "company_id": acme.pk},
    )

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Carol C. Customer"
    assert response.json()["company"]["id"] == acme.pk
    customer_a.refresh_from_db()
    assert (customer_a.notes, customer_a.email) == ("VIP", "carol@customer.test")


def test_customer_update_refusals(
    client_for: ClientFor,
    bob: Agent,
    customer_a: Customer,
    globex: Company,
    workspace_a: Workspace,
):
    CustomerFactory(workspace=workspace_a, email="taken@customer.test")
    client = client_for(bob)
    url = f"/v1/customers/{customer_a.pk}"

    assert_error(client.patch(url, {"email": "Taken@customer.test"}), 409, "duplicate", "email")
    assert_error(client.patch(url, {"company_id": globex.pk}), 400, "invalid_reference")
    assert_error(client.patch(url, {"email": "nope"}), 400, "invalid", "email")
    customer_a.refresh_from_db()
    assert (customer_a.email, customer_a.company_id) == ("carol@customer.test", None)


def test_only_admins_delete_customers_and_only_those_without_tickets(
    client_for: ClientFor,
    alice: Agent,
    bob: Agent,
    customer_a: Customer,
    ticket_a: Ticket,
    workspace_a: Workspace,
):
    quiet = CustomerFactory(workspace=workspace_a)

    assert_error(client_for(bob).delete(f"/v1/customers/{quiet.pk}"), 403, "admin_required")
    refused = client_for(alice).delete(f"/v1/customers/{customer_a.pk}")
    deleted = client_for(alice).delete(f"/v1/customers/{quiet.pk}")

    assert_error(refused, 409, "customer_has_tickets")
    assert deleted.status_code == 204
    assert not Customer.objects.filter(pk=quiet.pk).exists()
    assert Customer.objects.filter(pk=customer_a.pk).exists()


def test_a_customer_with_only_deleted_tickets_is_still_kept(
    client_for: ClientFor, alice: Agent, customer_a: Customer, ticket_a: Ticket
):
    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))

    response = client_for(alice).delete(f"/v1/customers/{customer_a.pk}")

    assert_error(response, 409, "customer_has_tickets")


# --- A customer's tickets ------------------------------------------------------------------------


def test_a_customers_tickets_embed_their_people_and_settings(
    client_for: ClientFor,
    alice: Agent,
    bob: Agent,
    customer_a: Customer,
    ticket_a: Ticket,
    workspace_a: Workspace,
):
    team = TeamFactory(workspace=workspace_a, name="Support")
    ticket_update(
        ticket=ticket_a,
        actor=Actor.for_agent(alice),
        assignee=bob,
        team=team,
        tags=["printer", "fire"],
    )
    gone = make_ticket(workspace_a, customer_a)
    ticket_delete(ticket=gone, actor=Actor.for_agent(alice))
    someone_else = make_ticket(workspace_a, CustomerFactory(workspace=workspace_a))

    response = client_for(bob).get(f"/v1/customers/{customer_a.pk}/tickets")

    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["number"] == ticket_a.number != someone_else.number
    assert item["customer"] == {
        "id": customer_a.pk,
        "name": "Carol Customer",
        "email": "carol@customer.test",
    }
    assert item["assignee"] == {"id": bob.pk, "name": "Bob Agent", "email": "bob@a.test"}
    assert item["team"] == {"id": team.pk, "name": "Support"}
    assert item["category"] is None
    assert item["tags"] == ["fire", "printer"]
    assert item["status"] == "open"


def test_a_customers_tickets_cost_the_same_at_5_and_50(
    client_for: ClientFor, alice: Agent, bob: Agent, customer_a: Customer, workspace_a: Workspace
):
    team = TeamFactory(workspace=workspace_a)
    client = client_for(alice)
    url = f"/v1/customers/{customer_a.pk}/tickets?page_size=100"

    def add(n: int) -> None:
        for _ in range(n):
            make_ticket(workspace_a, customer_a, assignee=bob, team=team, tags=["a", "b"])

    add(5)
    # 1. the token's agent; 2. the customer (checked fetch); 3. the tickets joined to
    # customer, assignee + user, team, category; 4. the tags of the page's tickets.
    at_5, body = count_queries(client, url)
    assert len(body["results"]) == 5
    add(45)
    at_50, body = count_queries(client, url)
    assert len(body["results"]) == 50
    assert at_5 == at_50 == 4


# --- Customers: tenancy ------------------------------------------------------------------------


def test_charlie_gets_404_for_every_customer_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, customer_a: Customer, ticket_a: Ticket
):
    client = client_for(charlie)
    url = f"/v1/customers/{customer_a.pk}"

    for response in (
        client.get(url),
        client.patch(url, {"name": "Hacked"}),
        client.delete(url),
        client.get(f"{url}/tickets"),
    ):
        assert_error(response, 404, "not_found")
    customer_a.refresh_from_db()
    assert customer_a.name == "Carol Customer"
    assert [c["id"] for c in client.get("/v1/customers").json()["results"]] == []


# --- Companies ---------------------------------------------------------------------------------


def test_an_admin_creates_a_company_with_domains(client_for: ClientFor, alice: Agent):
    response = client_for(alice).post(
        "/v1/companies",
        {"name": "Initech", "notes": "Big account", "domains": ["@Initech.COM", "initech.co.uk"]},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["notes"]) == ("Initech", "Big account")
    assert body["domains"] == ["initech.co.uk", "initech.com"]


def test_company_create_refusals(client_for: ClientFor, alice: Agent, bob: Agent, acme: Company):
    client = client_for(alice)

    assert_error(client_for(bob).post("/v1/companies", {"name": "X"}), 403, "admin_required")
    assert_error(client.post("/v1/companies", {"name": "CUSTOMER INC"}), 409, "duplicate", "name")
    assert_error(
        client.post("/v1/companies", {"name": "Y", "domains": ["customer.test"]}),
        409,
        "duplicate",
        "domains",
    )
    assert_error(
        client.post("/v1/companies", {"name": "Z", "domains": ["not a domain"]}),
        400,
        "invalid",
        "domains",
    )
    assert_error(client.post("/v1/companies", {"domains": []}), 400, "invalid", "name")
    assert list(Company.objects.values_list("name", flat=True)) == ["Customer Inc"]


def test_company_search_covers_names_and_domains(
    client_for: ClientFor, alice: Agent, acme: Company, globex: Company, workspace_a: Workspace
):
    company_create(workspace=workspace_a, name="Initech", domains=["initech.com", "initech.de"])
    client = client_for(alice)

    listed = client.get("/v1/companies").json()["results"]
    by_domain = client.get("/v1/companies", {"q": "initech.d"}).json()["results"]
    # B's "Other Corp" (other.test) is not A's.
    by_other = client.get("/v1/companies", {"q": "other"}).json()["results"]

    assert [c["name"] for c in listed] == ["Customer Inc", "Initech"]
    assert [c["name"] for c in by_domain] == ["Initech"]
    assert by_other == []


def test_an_admin_changes_a_company_and_its_domains(
    client_for: ClientFor, alice: Agent, bob: Agent, acme: Company, workspace_a: Workspace
):
    company_create(workspace=workspace_a, name="Initech", domains=["initech.com"])
    client = client_for(alice)
    url = f"/v1/companies/{acme.pk}"

    changed = client.patch(url, {"notes": "Renewal in May", "domains": ["customer.example"]})

    assert changed.status_code == 200, changed.content
    assert changed.json()["domains"] == ["customer.example"]
    assert changed.json()["notes"] == "Renewal in May"
    assert_error(client.patch(url, {"name": "initech"}), 409, "duplicate", "name")
    assert_error(client.patch(url, {"domains": ["initech.com"]}), 409, "duplicate", "domains")
    assert_error(client_for(bob).patch(url, {"notes": "x"}), 403, "admin_required")
    assert list(CompanyDomain.objects.filter(company=acme).values_list("domain", flat=True)) == [
        "customer.example"
    ]


def test_deleting_a_company_keeps_its_customers_and_records_the_ticket_change(
    client_for: ClientFor, alice: Agent, acme: Company, workspace_a: Workspace
):
    customer = CustomerFactory(workspace=workspace_a, email="x@customer.test", company=acme)
    ticket = make_ticket(workspace_a, customer)
    assert ticket.company_id == acme.pk

    response = client_for(alice).delete(f"/v1/companies/{acme.pk}")

    assert response.status_code == 204
    customer.refresh_from_db()
    ticket.refresh_from_db()
    assert customer.company_id is None and ticket.company_id is None
    event = TicketEvent.objects.filter(ticket=ticket, field="company").get()
    assert (event.old_value, event.new_value, event.actor_agent_id) == (acme.pk, None, alice.pk)


def test_a_companys_customers_and_tickets(
    client_for: ClientFor, bob: Agent, acme: Company, workspace_a: Workspace, customer_a: Customer
):
    member = CustomerFactory(workspace=workspace_a, email="m@customer.test", company=acme)
    ticket = make_ticket(workspace_a, member)
    make_ticket(workspace_a, customer_a)  # Carol joined no company: not listed
    client = client_for(bob)

    customers = client.get(f"/v1/companies/{acme.pk}/customers").json()["results"]
    tickets = client.get(f"/v1/companies/{acme.pk}/tickets").json()["results"]

    assert [c["id"] for c in customers] == [member.pk]
    assert [t["number"] for t in tickets] == [ticket.number]


def test_company_lists_cost_the_same_at_5_and_50(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace
):
    client = client_for(alice)
    company = company_create(workspace=workspace_a, name="Hub", domains=["hub.test"])

    def add(n: int) -> None:
        for _ in range(n):
            other = CompanyFactory(workspace=workspace_a)
            CompanyDomain.objects.create(
                workspace=workspace_a, company=other, domain=f"c{other.pk}.test"
            )
            member = CustomerFactory(workspace=workspace_a, company=company)
            make_ticket(workspace_a, member, tags=["x"])

    add(5)
    # Companies: 1. agent; 2. companies; 3. their domains.
    # A company's customers: 1. agent; 2. the company; 3. customers joined to companies
    # (the company's domains are not fetched: only the list's own query and the checked
    # fetch). A company's tickets: 1. agent; 2. company; 3. tickets + joins; 4. tags.
    urls = {
        "/v1/companies?page_size=100": 3,
        f"/v1/companies/{company.pk}/customers?page_size=100": 4,
        f"/v1/companies/{company.pk}/tickets?page_size=100": 5,
    }
    at_5 = {url: count_queries(client, url)[0] for url in urls}
    add(45)
    at_50 = {url: count_queries(client, url)[0] for url in urls}
    assert at_5 == at_50 == urls


def test_charlie_gets_404_for_every_company_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, acme: Company
):
    client = client_for(charlie)
    url = f"/v1/companies/{acme.pk}"

    for response in (
        client.get(url),
        client.patch(url, {"name": "Hacked"}),
        client.delete(url),
        client.get(f"{url}/customers"),
        client.get(f"{url}/tickets"),
    ):
        assert_error(response, 404, "not_found")
    assert Company.objects.get(pk=acme.pk).name == "Customer Inc"


# --- Agents ----------------------------------------------------------------------------------


def test_agent_list_shows_people_roles_and_teams_of_the_workspace_only(
    client_for: ClientFor, bob: Agent, alice: Agent, olivia: Agent, charlie: Agent, workspace_a
):
    team = team_create(workspace=workspace_a, name="Support", members=[bob])

    response = client_for(bob).get("/v1/agents")

    assert response.status_code == 200
    results = {a["id"]: a for a in response.json()["results"]}
    assert set(results) == {olivia.pk, alice.pk, bob.pk}
    assert results[bob.pk] | {"last_seen_at": None, "created_at": None} == {
        "id": bob.pk,
        "user_id": bob.user_id,
        "workspace_id": workspace_a.pk,
        "name": "Bob Agent",
        "display_name": "",
        "email": "bob@a.test",
        "role": "agent",
        "is_active": True,
        "teams": [{"id": team.pk, "name": "Support"}],
        "last_seen_at": None,
        "created_at": None,
    }
    assert results[olivia.pk]["role"] == "owner"


def test_agent_list_filters(
    client_for: ClientFor,
    alice: Agent,
    bob: Agent,
    lena: Agent,
    workspace_a: Workspace,
    workspace_b: Workspace,
):
    team = team_create(workspace=workspace_a, name="Support", members=[bob, lena])
    foreign_team = team_create(workspace=workspace_b, name="Support")
    Agent.objects.filter(pk=lena.pk).update(is_active=False)
    client = client_for(alice)

    def ids(**params: Any) -> set[int]:
        response = client.get("/v1/agents", params)
        assert response.status_code == 200, response.content
        return {a["id"] for a in response.json()["results"]}

    assert ids(role="light") == {lena.pk}
    assert ids(is_active="false") == {lena.pk}
    assert ids(team=team.pk, is_active="true") == {bob.pk}
    assert ids(q="BOB@") == {bob.pk}
    assert_error(client.get("/v1/agents", {"team": foreign_team.pk}), 400, "invalid_reference")
    assert_error(client.get("/v1/agents", {"role": "boss"}), 400, "invalid", "role")


def test_agent_list_costs_the_same_at_5_and_50(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace
):
    client = client_for(alice)
    team = TeamFactory(workspace=workspace_a)

    def add(n: int) -> None:
        for agent in AgentFactory.create_batch(n, workspace=workspace_a):
            TeamMembership.objects.create(workspace=workspace_a, team=team, agent=agent)

    add(3)  # with Olivia and Alice: 5
    # 1. the token's agent; 2. agents joined to users; 3. the teams of the page's agents.
    at_5, body = count_queries(client, "/v1/agents?page_size=100")
    assert len(body["results"]) == 5
    add(45)
    at_50, body = count_queries(client, "/v1/agents?page_size=100")
    assert len(body["results"]) == 50
    assert at_5 == at_50 == 3


def test_an_admin_changes_an_agents_role(client_for: ClientFor, alice: Agent, bob: Agent):
    response = client_for(alice).patch(f"/v1/agents/{bob.pk}", {"role": "admin"})

    assert response.status_code == 200, response.content
    assert response.json()["role"] == "admin"
    bob.refresh_from_db()
    assert bob.role == AgentRole.ADMIN


def test_role_change_refusals(
    client_for: ClientFor, alice: Agent, bob: Agent, olivia: Agent, lena: Agent
):
    as_alice = client_for(alice)

    assert_error(
        client_for(bob).patch(f"/v1/agents/{lena.pk}", {"role": "agent"}), 403, "admin_required"
    )
    # Only an owner grants or revokes ownership.
    assert_error(as_alice.patch(f"/v1/agents/{bob.pk}", {"role": "owner"}), 403, "owner_required")
    assert_error(
        as_alice.patch(f"/v1/agents/{olivia.pk}", {"role": "admin"}), 403, "owner_required"
    )
    assert_error(as_alice.patch(f"/v1/agents/{bob.pk}", {"role": "boss"}), 400, "invalid", "role")
    assert_error(as_alice.patch(f"/v1/agents/{bob.pk}", {}), 400, "invalid", "role")
    # The last owner keeps the role.
    assert_error(
        client_for(olivia).patch(f"/v1/agents/{olivia.pk}", {"role": "admin"}), 409, "last_owner"
    )
    assert dict(Agent.objects.values_list("pk", "role").filter(pk__in=[bob.pk, olivia.pk])) == {
        bob.pk: "agent",
        olivia.pk: "owner",
    }


def test_an_owner_hands_over_ownership(client_for: ClientFor, olivia: Agent, alice: Agent):
    client = client_for(olivia)

    promoted = client.patch(f"/v1/agents/{alice.pk}", {"role": "owner"})
    stepped_down = client.patch(f"/v1/agents/{olivia.pk}", {"role": "admin"})

    assert (promoted.status_code, stepped_down.status_code) == (200, 200)
    assert dict(Agent.objects.filter(pk__in=[olivia.pk, alice.pk]).values_list("pk", "role")) == {
        alice.pk: "owner",
        olivia.pk: "admin",
    }


def test_deactivating_an_agent_locks_them_out_and_frees_their_tickets(
    client_for: ClientFor, alice: Agent, bob: Agent, ticket_a: Ticket
):
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), assignee=bob)
    as_bob = client_for(bob)
    assert as_bob.get("/v1/agents").status_code == 200

    response = client_for(alice).post(f"/v1/agents/{bob.pk}/deactivate")

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    assert as_bob.get("/v1/agents").status_code == 401
    ticket_a.refresh_from_db()
    assert ticket_a.assignee_id is None

    again = client_for(alice).post(f"/v1/agents/{bob.pk}/reactivate")

    assert again.status_code == 200 and again.json()["is_active"] is True
    assert as_bob.get("/v1/agents").status_code == 200


def test_deactivation_refusals(
    client_for: ClientFor, alice: Agent, bob: Agent, olivia: Agent, lena: Agent
):
    assert_error(client_for(bob).post(f"/v1/agents/{lena.pk}/deactivate"), 403, "admin_required")
    assert_error(
        client_for(alice).post(f"/v1/agents/{olivia.pk}/deactivate"), 403, "owner_required"
    )
    assert_error(
        client_for(alice).post(f"/v1/agents/{alice.pk}/deactivate"), 409, "self_deactivation"
    )
    assert_error(
        client_for(olivia).post(f"/v1/agents/{olivia.pk}/deactivate"), 409, "self_deactivation"
    )
    assert Agent.objects.filter(is_active=False).count() == 0


def test_only_an_owner_reactivates_an_owner(
    client_for: ClientFor, olivia: Agent, alice: Agent, workspace_a: Workspace
):
    second_owner = AgentFactory(workspace=workspace_a, role=AgentRole.OWNER, is_active=False)

    assert_error(
        client_for(alice).post(f"/v1/agents/{second_owner.pk}/reactivate"), 403, "owner_required"
    )
    response = client_for(olivia).post(f"/v1/agents/{second_owner.pk}/reactivate")

    assert response.status_code == 200 and response.json()["is_active"] is True


def test_charlie_gets_404_for_every_agent_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, bob: Agent
):
    client = client_for(charlie)

    for response in (
        client.get(f"/v1/agents/{bob.pk}"),
        client.patch(f"/v1/agents/{bob.pk}", {"role": "admin"}),
        client.post(f"/v1/agents/{bob.pk}/deactivate"),
        client.post(f"/v1/agents/{bob.pk}/reactivate"),
    ):
        assert_error(response, 404, "not_found")
    bob.refresh_from_db()
    assert (bob.role, bob.is_active) == ("agent", True)


# --- Teams -----------------------------------------------------------------------------------


def test_an_admin_creates_a_team_with_members(
    client_for: ClientFor, alice: Agent, bob: Agent, lena: Agent
):
    response = client_for(alice).post(
        "/v1/teams",
        {"name": "Tier 2", "description": "Escalations", "agent_ids": [bob.pk, lena.pk, bob.pk]},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["description"]) == ("Tier 2", "Escalations")
    assert {m["id"] for m in body["members"]} == {bob.pk, lena.pk}
    assert {m["email"] for m in body["members"]} == {"bob@a.test", "lena@a.test"}


def test_team_create_refusals(
    client_for: ClientFor, alice: Agent, bob: Agent, charlie: Agent, workspace_a: Workspace
):
    TeamFactory(workspace=workspace_a, name="Support")
    client = client_for(alice)

    assert_error(client_for(bob).post("/v1/teams", {"name": "Mine"}), 403, "admin_required")
    assert_error(client.post("/v1/teams", {"name": "SUPPORT"}), 409, "duplicate", "name")
    assert_error(
        client.post("/v1/teams", {"name": "X", "agent_ids": [charlie.pk]}),
        400,
        "invalid_reference",
        "agent_ids",
    )
    assert_error(client.post("/v1/teams", {"name": ""}), 400, "invalid", "name")
    assert_error(client.post("/v1/teams", {"name": "Y", "agent_ids": "1"}), 400, "invalid")
    assert list(Team.objects.for_workspace(workspace_a).values_list("name", flat=True)) == [
        "Support"
    ]


def test_team_members_are_set_or_added(
    client_for: ClientFor, alice: Agent, bob: Agent, lena: Agent, charlie: Agent, workspace_a
):
    team = team_create(workspace=workspace_a, name="Support", members=[bob])
    client = client_for(alice)
    url = f"/v1/teams/{team.pk}/members"

    added = client.post(url, {"agent_ids": [lena.pk, bob.pk]})
    replaced = client.put(url, {"agent_ids": [alice.pk]})
    foreign = client.put(url, {"agent_ids": [alice.pk, charlie.pk]})
    emptied = client.put(url, {"agent_ids": []})

    assert {m["id"] for m in added.json()["members"]} == {bob.pk, lena.pk}
    assert [m["id"] for m in replaced.json()["members"]] == [alice.pk]
    assert_error(foreign, 400, "invalid_reference", "agent_ids")
    assert emptied.json()["members"] == []
    assert_error(client_for(bob).put(url, {"agent_ids": [bob.pk]}), 403, "admin_required")
    assert_error(client.put(url, {}), 400, "invalid", "agent_ids")


def test_teams_are_renamed_and_deleted_with_history_on_their_tickets(
    client_for: ClientFor, alice: Agent, ticket_a: Ticket, workspace_a: Workspace
):
    team = team_create(workspace=workspace_a, name="Support")
    TeamFactory(workspace=workspace_a, name="Sales")
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), team=team)
    client = client_for(alice)
    before = Ticket.objects.get(pk=ticket_a.pk).updated_at

    renamed = client.patch(f"/v1/teams/{team.pk}", {"name": "Customer Care"})
    clash = client.patch(f"/v1/teams/{team.pk}", {"name": "sales"})
    deleted = client.delete(f"/v1/teams/{team.pk}")

    assert renamed.json()["name"] == "Customer Care"
    assert_error(clash, 409, "duplicate", "name")
    assert deleted.status_code == 204
    ticket_a.refresh_from_db()
    assert ticket_a.team_id is None and ticket_a.updated_at > before
    event = TicketEvent.objects.filter(ticket=ticket_a, field="team").latest("id")
    assert (event.kind, event.old_value, event.new_value, event.data) == (
        TicketEventKind.FIELD_CHANGED,
        team.pk,
        None,
        {"reason": "team_deleted"},
    )


def test_team_list_costs_the_same_at_5_and_50(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace
):
    client = client_for(alice)
    members = AgentFactory.create_batch(3, workspace=workspace_a)

    def add(n: int) -> None:
        for _ in range(n):
            team_create(workspace=workspace_a, name=f"Team {Team.objects.count()}", members=members)

    add(5)
    # 1. the token's agent; 2. teams; 3. their members joined to their users.
    at_5, body = count_queries(client, "/v1/teams?page_size=100")
    assert len(body["results"]) == 5
    add(45)
    at_50, body = count_queries(client, "/v1/teams?page_size=100")
    assert len(body["results"]) == 50
    assert at_5 == at_50 == 3


def test_charlie_gets_404_for_every_team_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, workspace_a: Workspace
):
    team = TeamFactory(workspace=workspace_a, name="Support")
    client = client_for(charlie)
    url = f"/v1/teams/{team.pk}"

    for response in (
        client.get(url),
        client.patch(url, {"name": "Hacked"}),
        client.delete(url),
        client.put(f"{url}/members", {"agent_ids": [charlie.pk]}),
        client.post(f"{url}/members", {"agent_ids": [charlie.pk]}),
    ):
        assert_error(response, 404, "not_found")
    assert client.get("/v1/teams").json()["results"] == []
    assert Team.objects.get(pk=team.pk).name == "Support"


# --- Signatures ------------------------------------------------------------------------------


def test_signatures_list_the_workspaces_default_and_each_active_agent(
    client_for: ClientFor, bob: Agent, alice: Agent, charlie: Agent, workspace_a: Workspace
):
    Workspace.objects.filter(pk=workspace_a.pk).update(default_signature="<p>Acme team</p>")
    Agent.objects.filter(pk=bob.pk).update(signature="<p>Bob</p>")

    response = client_for(bob).get("/v1/signatures")

    assert response.status_code == 200
    body = response.json()
    assert body["workspace"] == "<p>Acme team</p>"
    signatures = {a["id"]: a for a in body["agents"]}
    assert charlie.pk not in signatures
    assert signatures[bob.pk] == {
        "id": bob.pk,
        "name": "Bob Agent",
        "email": "bob@a.test",
        "signature": "<p>Bob</p>",
    }


def test_signatures_cost_the_same_at_5_and_50_agents(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace
):
    client = client_for(alice)
    AgentFactory.create_batch(3, workspace=workspace_a)
    # 1. the token's agent (its workspace holds the default); 2. agents joined to users.
    at_5, body = count_queries(client, "/v1/signatures")
    assert len(body["agents"]) == 5
    AgentFactory.create_batch(45, workspace=workspace_a)
    at_50, body = count_queries(client, "/v1/signatures")
    assert len(body["agents"]) == 50
    assert at_5 == at_50 == 2


def test_an_admin_sets_the_workspace_signature_sanitised(
    client_for: ClientFor, alice: Agent, bob: Agent, workspace_a: Workspace
):
    hostile = '<p onclick="steal()">Acme<script>alert(1)</script> <a href="javascript:x">x</a></p>'

    response = client_for(alice).put("/v1/signatures/workspace", {"signature": hostile})

    assert response.status_code == 200, response.content
    workspace_a.refresh_from_db()
    assert response.json()["signature"] == workspace_a.default_signature
    assert "script" not in workspace_a.default_signature
    assert "onclick" not in workspace_a.default_signature
    assert "javascript" not in workspace_a.default_signature
    assert workspace_a.default_signature.startswith("<p>Acme")
    assert_error(
        client_for(bob).put("/v1/signatures/workspace", {"signature": "x"}), 403, "admin_required"
    )
    assert_error(client_for(alice).put("/v1/signatures/workspace", {}), 400, "invalid", "signature")


def test_every_agent_sets_their_own_signature(
    client_for: ClientFor, bob: Agent, lena: Agent, alice: Agent
):
    response = client_for(bob).put(
        "/v1/signatures/me", {"signature": "<b>Bob</b><img src=x onerror=alert(1)>"}
    )

    assert response.status_code == 200, response.content
    bob.refresh_from_db()
    assert "onerror" not in bob.signature and bob.signature.startswith("<b>Bob</b>")
    assert client_for(bob).get("/v1/signatures/me").json() == {"signature": bob.signature}
    # A light agent's own signature is their own business.
    assert client_for(lena).put("/v1/signatures/me", {"signature": "Lena"}).status_code == 200
    alice.refresh_from_db()
    assert alice.signature == ""
    too_long = client_for(bob).put("/v1/signatures/me", {"signature": "x" * 10_001})
    assert_error(too_long, 400, "invalid", "signature")


def test_charlie_sees_and_sets_only_workspace_bs_signatures(
    client_for: ClientFor, charlie: Agent, alice: Agent, workspace_a: Workspace, workspace_b
):
    client = client_for(charlie)

    listed = client.get("/v1/signatures").json()
    client.put("/v1/signatures/workspace", {"signature": "Globex"})

    assert alice.pk not in {a["id"] for a in listed["agents"]}
    workspace_a.refresh_from_db()
    workspace_b.refresh_from_db()
    assert (workspace_a.default_signature, workspace_b.default_signature) == ("", "Globex")


# --- Across the people API -----------------------------------------------------------------


def test_the_people_api_needs_a_token(api_client: APIClient, customer_a: Customer):
    for url in ("/v1/customers", "/v1/companies", "/v1/agents", "/v1/teams", "/v1/signatures"):
        assert_error(api_client.get(url), 401, "not_authenticated")


def test_the_schema_documents_every_people_endpoint(api_client: APIClient):
    response = api_client.get("/v1/schema", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/v1/customers": {"get", "post"},
        "/v1/customers/{id}": {"get", "patch", "delete"},
        "/v1/customers/{id}/tickets": {"get"},
        "/v1/companies": {"get", "post"},
        "/v1/companies/{id}": {"get", "patch", "delete"},
        "/v1/companies/{id}/customers": {"get"},
        "/v1/companies/{id}/tickets": {"get"},
        "/v1/agents": {"get"},
        "/v1/agents/{id}": {"get", "patch"},
        "/v1/agents/{id}/deactivate": {"post"},
        "/v1/agents/{id}/reactivate": {"post"},
        "/v1/teams": {"get", "post"},
        "/v1/teams/{id}": {"get", "patch", "delete"},
        "/v1/teams/{id}/members": {"put", "post"},
        "/v1/signatures": {"get"},
        "/v1/signatures/workspace": {"put"},
        "/v1/signatures/me": {"get", "put"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    list_params = {p["name"] for p in paths["/v1/customers"]["get"]["parameters"]}
    assert {"q", "company", "cursor", "page_size"} <= list_params
    create = paths["/v1/customers"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CustomerCreateInput"
    )
    assert {"201", "400", "403", "409"} <= set(create["responses"])


def test_tags_and_b_data_never_leak_into_a_customer_search(
    client_for: ClientFor, alice: Agent, customer_b: Customer, ticket_b: Ticket, workspace_b
):
    TagFactory(workspace=workspace_b, name="dave")
    body = client_for(alice).get("/v1/customers", {"q": "dave"}).json()
    assert body["results"] == []
