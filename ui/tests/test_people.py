"""Customers and companies: lists with search, their pages with tickets, editing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from enque.tests.factories import AgentFactory, CompanyFactory, CustomerFactory
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import ticket_create
from workspaces.models import Agent, AgentRole, Company, Customer, Workspace
from workspaces.services import company_create

pytestmark = pytest.mark.django_db


def test_customer_list_and_search(alice_client: Client, workspace_a: Workspace, ticket_a) -> None:
    CustomerFactory(workspace=workspace_a, name="Zoe Zimmer", email="zoe@zimmer.test")
    response = alice_client.get(reverse("ui:customers"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Carol Customer" in html and "Zoe Zimmer" in html
    found = alice_client.get(reverse("ui:customers"), {"q": "zimmer"}).content.decode()
    assert "Zoe Zimmer" in found and "Carol Customer" not in found
    carol = next(c for c in response.context["customers"] if c.name == "Carol Customer")
    assert carol.open_tickets == 1
    none = alice_client.get(reverse("ui:customers"), {"q": "nobody-at-all"})
    assert b"No customers match" in none.content


def test_customer_list_pages_by_keyset(alice_client: Client, workspace_a: Workspace) -> None:
    CustomerFactory.create_batch(35, workspace=workspace_a)
    first = alice_client.get(reverse("ui:customers"))
    assert len(first.context["customers"]) == 30
    second = alice_client.get(
        reverse("ui:customers"), {"cursor": first.context["page"].next_cursor}
    )
    assert len(second.context["customers"]) == 5
    assert not {c.pk for c in first.context["customers"]} & {
        c.pk for c in second.context["customers"]
    }


def test_customer_page_shows_their_tickets(
    alice_client: Client, customer_a: Customer, ticket_a: Ticket
) -> None:
    response = alice_client.get(reverse("ui:customer", args=[customer_a.pk]))
    html = response.content.decode()
    assert customer_a.email in html
    assert ticket_a.subject in html


def test_editing_a_customer(
    alice_client: Client, customer_a: Customer, workspace_a: Workspace
) -> None:
    company = CompanyFactory(workspace=workspace_a, name="Initrode")
    response = alice_client.post(
        reverse("ui:customer", args=[customer_a.pk]),
        {
            "name": "Carol C. Customer",
            "email": "carol@new.test",
            "phone": "+1 555 0100",
            "company": company.pk,
            "notes": "Prefers phone.",
        },
    )
    assert response.status_code == 302
    customer_a.refresh_from_db()
    assert (customer_a.name, customer_a.email, customer_a.company_id, customer_a.phone) == (
        "Carol C. Customer",
        "carol@new.test",
        company.pk,
        "+1 555 0100",
    )


def test_a_duplicate_email_is_a_form_error(
    alice_client: Client, customer_a: Customer, workspace_a: Workspace
) -> None:
    CustomerFactory(workspace=workspace_a, email="taken@x.test")
    response = alice_client.post(
        reverse("ui:customer", args=[customer_a.pk]),
        {"name": "Carol", "email": "taken@x.test"},
    )
    assert response.status_code == 400
    assert b"A customer with this email exists." in response.content
    customer_a.refresh_from_db()
    assert customer_a.email == "carol@customer.test"


def test_another_workspaces_company_cannot_be_set(
    alice_client: Client, customer_a: Customer, workspace_b: Workspace
) -> None:
    foreign = CompanyFactory(workspace=workspace_b)
    response = alice_client.post(
        reverse("ui:customer", args=[customer_a.pk]),
        {"name": "Carol", "email": customer_a.email, "company": foreign.pk},
    )
    assert response.status_code == 400
    customer_a.refresh_from_db()
    assert customer_a.company_id is None


def test_light_agents_read_but_do_not_edit(
    signed_in, workspace_a: Workspace, customer_a: Customer
) -> None:
    light = AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT)
    client = signed_in(light)
    page = client.get(reverse("ui:customer", args=[customer_a.pk]))
    assert page.status_code == 200
    assert b'<summary class="btn btn-small">Edit</summary>' not in page.content
    response = client.post(
        reverse("ui:customer", args=[customer_a.pk]), {"name": "Hacked", "email": customer_a.email}
    )
    assert response.status_code == 400
    customer_a.refresh_from_db()
    assert customer_a.name == "Carol Customer"


def test_adding_a_customer_joins_the_company_of_their_domain(
    alice_client: Client, workspace_a: Workspace
) -> None:
    company = company_create(workspace=workspace_a, name="Initech", domains=["initech.test"])
    response = alice_client.post(
        reverse("ui:customer_new"), {"email": "peter@initech.test", "name": "Peter"}
    )
    customer = Customer.objects.get(email="peter@initech.test")
    assert response["Location"] == reverse("ui:customer", args=[customer.pk])
    assert customer.company_id == company.pk


def test_company_list_page_and_search(
    alice_client: Client, workspace_a: Workspace, customer_a: Customer
) -> None:
    company = company_create(workspace=workspace_a, name="Initech", domains=["initech.test"])
    company_create(workspace=workspace_a, name="Umbrella")
    customer_a.company = company
    customer_a.save(update_fields=["company"])
    ticket = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="TPS reports",
        body_text="Did you get the memo?",
        customer=customer_a,
    )
    listing = alice_client.get(reverse("ui:companies"))
    html = listing.content.decode()
    assert "Initech" in html and "Umbrella" in html and "initech.test" in html
    found = alice_client.get(reverse("ui:companies"), {"q": "initech.test"}).content.decode()
    assert "Initech" in found and "Umbrella" not in found
    page = alice_client.get(reverse("ui:company", args=[company.pk])).content.decode()
    assert customer_a.display_name in page
    assert ticket.subject in page


def test_companies_are_edited_by_admins(
    alice_client: Client, bob_client: Client, workspace_a: Workspace
) -> None:
    company = company_create(workspace=workspace_a, name="Initech")
    data = {"name": "Initech Corp", "domains": "initech.test, initech.example", "notes": ""}
    refused = bob_client.post(reverse("ui:company", args=[company.pk]), data)
    assert refused.status_code == 400
    assert b"Only an owner or admin" in refused.content
    response = alice_client.post(reverse("ui:company", args=[company.pk]), data)
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.name == "Initech Corp"
    assert sorted(company.domains.values_list("domain", flat=True)) == [
        "initech.example",
        "initech.test",
    ]
    bad = alice_client.post(
        reverse("ui:company", args=[company.pk]), {"name": "Initech Corp", "domains": "nodot"}
    )
    assert b"is not a mail domain" in bad.content


def test_only_admins_add_companies(alice_client: Client, bob_client: Client, alice: Agent) -> None:
    refused = bob_client.post(reverse("ui:company_new"), {"name": "Bob Inc"})
    assert refused.status_code == 400
    assert not Company.objects.filter(name="Bob Inc").exists()
    response = alice_client.post(
        reverse("ui:company_new"), {"name": "Alice Inc", "domains": "alice.test"}
    )
    company = Company.objects.get(name="Alice Inc")
    assert company.workspace_id == alice.workspace_id
    assert response["Location"] == reverse("ui:company", args=[company.pk])
