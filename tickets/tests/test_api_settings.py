"""The settings API: /v1/categories, /v1/tags, /v1/canned-replies (and rendering one).

Olivia owns workspace A, Alice is an admin there, Bob an agent and Lena a light agent;
Carol is a customer of A with ticket #1. Charlie is the admin of workspace B.
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
    CannedReplyFactory,
    CategoryFactory,
    TagFactory,
    UserFactory,
)
from tickets.actors import Actor
from tickets.models import CannedReply, Category, Tag, Ticket, TicketEvent, TicketEventKind
from tickets.services import ticket_create, ticket_delete, ticket_update
from workspaces.models import Agent, AgentRole, Customer, Workspace

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Agent], APIClient]


@pytest.fixture
def lena(workspace_a: Workspace) -> Agent:
    user = UserFactory(email="lena@a.test", name="Lena Light")
    return AgentFactory(workspace=workspace_a, user=user, role=AgentRole.LIGHT)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] == code, body
    if field is not None:
        assert field in body.get("fields", {}), body


def count_queries(client: APIClient, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [item.get("name") or item.get("title") for item in response.json()["results"]]


# --- Categories --------------------------------------------------------------------------------


def test_categories_crud(client_for: ClientFor, alice: Agent, bob: Agent):
    admin = client_for(alice)

    created = admin.post("/v1/categories", {"name": "  Billing ", "description": "Invoices"})
    assert created.status_code == 201, created.content
    category_id = created.json()["id"]
    assert (created.json()["name"], created.json()["description"]) == ("Billing", "Invoices")

    assert client_for(bob).get(f"/v1/categories/{category_id}").json()["name"] == "Billing"
    renamed = admin.patch(f"/v1/categories/{category_id}", {"name": "Payments"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Payments"
    assert admin.delete(f"/v1/categories/{category_id}").status_code == 204
    assert not Category.objects.filter(pk=category_id).exists()


def test_category_names_are_unique_in_any_case(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace, workspace_b: Workspace
):
    CategoryFactory(workspace=workspace_a, name="Billing")
    CategoryFactory(workspace=workspace_b, name="Shipping")
    other = CategoryFactory(workspace=workspace_a, name="Returns")
    admin = client_for(alice)

    assert_error(admin.post("/v1/categories", {"name": "BILLING"}), 409, "duplicate", "name")
    assert_error(
        admin.patch(f"/v1/categories/{other.pk}", {"name": "billing"}), 409, "duplicate", "name"
    )
    # B's names are B's business.
    assert admin.post("/v1/categories", {"name": "shipping"}).status_code == 201


def test_category_validation_and_roles(client_for: ClientFor, alice: Agent, bob: Agent, lena):
    admin = client_for(alice)

    assert_error(admin.post("/v1/categories", {}), 400, "invalid", "name")
    assert_error(admin.post("/v1/categories", {"name": "x" * 121}), 400, "invalid", "name")
    assert_error(admin.post("/v1/categories", {"name": "   "}), 400, "invalid", "name")
    assert_error(client_for(bob).post("/v1/categories", {"name": "Mine"}), 403, "admin_required")
    assert_error(client_for(lena).post("/v1/categories", {"name": "Mine"}), 403, "light_agent")
    assert Category.objects.count() == 0


def test_deleting_a_category_records_the_change_on_its_tickets(
    client_for: ClientFor, alice: Agent, ticket_a: Ticket, workspace_a: Workspace
):
    category = CategoryFactory(workspace=workspace_a, name="Hardware")
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), category=category)
    canned = CannedReplyFactory(workspace=workspace_a, category=category)

    assert client_for(alice).delete(f"/v1/categories/{category.pk}").status_code == 204

    ticket_a.refresh_from_db()
    canned.refresh_from_db()
    assert ticket_a.category_id is None and canned.category_id is None
    event = TicketEvent.objects.filter(ticket=ticket_a, field="category").latest("id")
    assert (event.old_value, event.new_value, event.actor_agent_id) == (category.pk, None, alice.pk)


def test_category_list_search_and_tenancy(
    client_for: ClientFor, bob: Agent, workspace_a: Workspace, workspace_b: Workspace
):
    for name in ("Billing", "Bugs", "Access"):
        CategoryFactory(workspace=workspace_a, name=name)
    CategoryFactory(workspace=workspace_b, name="Bulk orders")
    client = client_for(bob)

    assert names(client.get("/v1/categories")) == ["Access", "Billing", "Bugs"]
    assert names(client.get("/v1/categories", {"q": "bu"})) == ["Bugs"]
    assert_error(client.get("/v1/categories", {"name": "x"}), 400, "invalid", "name")


def test_charlie_gets_404_for_every_category_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, workspace_a: Workspace
):
    category = CategoryFactory(workspace=workspace_a, name="Billing")
    client = client_for(charlie)
    url = f"/v1/categories/{category.pk}"

    for response in (client.get(url), client.patch(url, {"name": "x"}), client.delete(url)):
        assert_error(response, 404, "not_found")
    assert Category.objects.get(pk=category.pk).name == "Billing"


# --- Tags --------------------------------------------------------------------------------------


def test_tags_crud(client_for: ClientFor, alice: Agent, bob: Agent):
    admin = client_for(alice)

    created = admin.post("/v1/tags", {"name": "VIP", "color": "#FF0000"})
    assert created.status_code == 201, created.content
    tag_id = created.json()["id"]
    assert (created.json()["name"], created.json()["color"]) == ("VIP", "#ff0000")

    assert client_for(bob).get(f"/v1/tags/{tag_id}").status_code == 200
    recoloured = admin.patch(f"/v1/tags/{tag_id}", {"color": ""})
    assert recoloured.json()["color"] == ""
    assert admin.delete(f"/v1/tags/{tag_id}").status_code == 204
    assert not Tag.objects.filter(pk=tag_id).exists()


def test_tag_validation_uniqueness_and_roles(
    client_for: ClientFor, alice: Agent, bob: Agent, workspace_a: Workspace
):
    TagFactory(workspace=workspace_a, name="urgent")
    admin = client_for(alice)

    assert_error(admin.post("/v1/tags", {"name": "URGENT"}), 409, "duplicate", "name")
    assert_error(admin.post("/v1/tags", {"name": "x", "color": "red"}), 400, "invalid", "color")
    assert_error(admin.post("/v1/tags", {"name": "x" * 65}), 400, "invalid", "name")
    assert_error(client_for(bob).post("/v1/tags", {"name": "mine"}), 403, "admin_required")
    assert list(Tag.objects.values_list("name", flat=True)) == ["urgent"]


def test_deleting_a_tag_takes_it_off_its_tickets_with_history(
    client_for: ClientFor, alice: Agent, ticket_a: Ticket, workspace_a: Workspace
):
    ticket_update(ticket=ticket_a, actor=Actor.for_agent(alice), tags=["printer", "vip"])
    vip = Tag.objects.for_workspace(workspace_a).get(name="vip")
    before = Ticket.objects.get(pk=ticket_a.pk).updated_at

    assert client_for(alice).delete(f"/v1/tags/{vip.pk}").status_code == 204

    ticket_a.refresh_from_db()
    assert list(ticket_a.tags.values_list("name", flat=True)) == ["printer"]
    assert ticket_a.updated_at > before
    event = TicketEvent.objects.filter(ticket=ticket_a, kind=TicketEventKind.TAGS_CHANGED).latest(
        "id"
    )
    assert (event.old_value, event.new_value, event.data) == (
        ["printer", "vip"],
        ["printer"],
        {"reason": "tag_deleted"},
    )


def test_charlie_gets_404_for_every_tag_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, workspace_a: Workspace, workspace_b: Workspace
):
    tag = TagFactory(workspace=workspace_a, name="vip")
    TagFactory(workspace=workspace_b, name="globex")
    client = client_for(charlie)
    url = f"/v1/tags/{tag.pk}"

    for response in (client.get(url), client.patch(url, {"name": "x"}), client.delete(url)):
        assert_error(response, 404, "not_found")
    assert names(client.get("/v1/tags")) == ["globex"]


def test_category_and_tag_lists_cost_the_same_at_5_and_50(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace
):
    client = client_for(alice)
    CategoryFactory.create_batch(5, workspace=workspace_a)
    TagFactory.create_batch(5, workspace=workspace_a)
    # Each: 1. the token's agent; 2. the rows.
    at_5 = [
        count_queries(client, f"/v1/{kind}?page_size=100")[0] for kind in ("categories", "tags")
    ]
    CategoryFactory.create_batch(45, workspace=workspace_a)
    TagFactory.create_batch(45, workspace=workspace_a)
    at_50 = [count_queries(client, f"/v1/{kind}?page_size=100") for kind in ("categories", "tags")]
    assert [len(body["results"]) for _, body in at_50] == [50, 50]
    assert at_5 == [n for n, _ in at_50] == [2, 2]


# --- Canned replies: who sees and edits what ---------------------------------------------------


@pytest.fixture
def shared_reply(workspace_a: Workspace) -> CannedReply:
    return CannedReplyFactory(
        workspace=workspace_a,
        title="Printer help",
        body="Hi {{customer.first_name}}, about #{{ticket.number}}: {{ 7*7 }}\n-- {{agent.name}}",
    )


def test_an_agent_keeps_personal_canned_replies_and_only_admins_share(
    client_for: ClientFor, alice: Agent, bob: Agent, workspace_a: Workspace
):
    category = CategoryFactory(workspace=workspace_a, name="Hardware")

    personal = client_for(bob).post(
        "/v1/canned-replies",
        {
            "title": "My thanks",
            "body": "Thanks, {{customer.first_name}}!",
            "category_id": category.pk,
        },
    )
    refused = client_for(bob).post(
        "/v1/canned-replies", {"title": "For all", "body": "Hello", "shared": True}
    )
    shared = client_for(alice).post(
        "/v1/canned-replies", {"title": "For all", "body": "Hello", "shared": True}
    )

    assert personal.status_code == 201, personal.content
    body = personal.json()
    assert (body["shared"], body["owner"], body["category"]) == (
        False,
        {"id": bob.pk, "name": "Bob Agent"},
        {"id": category.pk, "name": "Hardware"},
    )
    assert body["usage_count"] == 0
    assert_error(refused, 403, "admin_required")
    assert shared.status_code == 201 and shared.json()["shared"] is True
    assert shared.json()["owner"] is None


def test_canned_reply_validation(
    client_for: ClientFor, bob: Agent, lena: Agent, workspace_b: Workspace
):
    client = client_for(bob)
    foreign = CategoryFactory(workspace=workspace_b)

    assert_error(client.post("/v1/canned-replies", {"title": "x"}), 400, "invalid", "body")
    assert_error(client.post("/v1/canned-replies", {"body": "x"}), 400, "invalid", "title")
    assert_error(
        client.post("/v1/canned-replies", {"title": "x", "body": "y", "category_id": foreign.pk}),
        400,
        "invalid_reference",
        "category_id",
    )
    assert_error(
        client.post("/v1/canned-replies", {"title": "x", "body": "y", "shared": "maybe"}),
        400,
        "invalid",
        "shared",
    )
    assert_error(
        client_for(lena).post("/v1/canned-replies", {"title": "x", "body": "y"}),
        403,
        "light_agent",
    )
    assert CannedReply.objects.count() == 0


def test_an_agent_lists_the_shared_replies_and_their_own(
    client_for: ClientFor,
    alice: Agent,
    bob: Agent,
    shared_reply: CannedReply,
    workspace_a: Workspace,
    workspace_b: Workspace,
):
    category = CategoryFactory(workspace=workspace_a, name="Hardware")
    foreign_category = CategoryFactory(workspace=workspace_b)
    mine = CannedReplyFactory(workspace=workspace_a, owner=bob, title="Bob's", category=category)
    CannedReplyFactory(workspace=workspace_a, owner=alice, title="Alice's")
    CannedReplyFactory(workspace=workspace_b, title="Globex's")
    client = client_for(bob)

    assert names(client.get("/v1/canned-replies")) == ["Bob's", "Printer help"]
    assert names(client.get("/v1/canned-replies", {"scope": "personal"})) == ["Bob's"]
    assert names(client.get("/v1/canned-replies", {"scope": "shared"})) == ["Printer help"]
    assert names(client.get("/v1/canned-replies", {"category": category.pk})) == ["Bob's"]
    assert names(client.get("/v1/canned-replies", {"q": "PRINTER"})) == ["Printer help"]
    assert names(client_for(alice).get("/v1/canned-replies")) == ["Alice's", "Printer help"]
    assert_error(
        client.get("/v1/canned-replies", {"category": foreign_category.pk}),
        400,
        "invalid_reference",
        "category",
    )
    assert_error(client.get("/v1/canned-replies", {"scope": "everyone"}), 400, "invalid", "scope")
    assert client.get(f"/v1/canned-replies/{mine.pk}").status_code == 200


def test_someone_elses_personal_reply_does_not_exist_for_you(
    client_for: ClientFor, alice: Agent, bob: Agent, workspace_a: Workspace, ticket_a: Ticket
):
    bobs = CannedReplyFactory(workspace=workspace_a, owner=bob, title="Bob's")
    client = client_for(alice)
    url = f"/v1/canned-replies/{bobs.pk}"

    for response in (
        client.get(url),
        client.patch(url, {"title": "Mine now"}),
        client.delete(url),
        client.post(f"{url}/render", {"ticket": ticket_a.number}),
    ):
        assert_error(response, 404, "not_found")
    assert CannedReply.objects.get(pk=bobs.pk).title == "Bob's"


def test_editing_rules(
    client_for: ClientFor, alice: Agent, bob: Agent, shared_reply: CannedReply, workspace_a
):
    mine = CannedReplyFactory(workspace=workspace_a, owner=bob, title="Bob's")
    as_bob = client_for(bob)

    assert as_bob.patch(f"/v1/canned-replies/{mine.pk}", {"body": "New"}).status_code == 200
    assert_error(
        as_bob.patch(f"/v1/canned-replies/{shared_reply.pk}", {"title": "x"}), 403, "admin_required"
    )
    assert_error(as_bob.delete(f"/v1/canned-replies/{shared_reply.pk}"), 403, "admin_required")
    # Sharing one's own reply with everyone takes an admin too.
    assert_error(
        as_bob.patch(f"/v1/canned-replies/{mine.pk}", {"shared": True}), 403, "admin_required"
    )
    assert_error(
        as_bob.patch(f"/v1/canned-replies/{mine.pk}", {"title": ""}), 400, "invalid", "title"
    )
    edited = client_for(alice).patch(
        f"/v1/canned-replies/{shared_reply.pk}", {"title": "Printer help v2", "category_id": None}
    )
    assert edited.status_code == 200 and edited.json()["title"] == "Printer help v2"
    assert as_bob.delete(f"/v1/canned-replies/{mine.pk}").status_code == 204
    assert not CannedReply.objects.filter(pk=mine.pk).exists()


def test_an_admin_shares_their_personal_reply(
    client_for: ClientFor, alice: Agent, workspace_a: Workspace
):
    mine = CannedReplyFactory(workspace=workspace_a, owner=alice)

    response = client_for(alice).patch(f"/v1/canned-replies/{mine.pk}", {"shared": True})

    assert response.status_code == 200 and response.json()["shared"] is True
    mine.refresh_from_db()
    assert mine.owner_id is None


def test_canned_reply_list_costs_the_same_at_5_and_50(
    client_for: ClientFor, bob: Agent, workspace_a: Workspace
):
    client = client_for(bob)
    category = CategoryFactory(workspace=workspace_a)

    def add(n: int) -> None:
        for i in range(n):
            CannedReplyFactory(
                workspace=workspace_a, category=category, owner=bob if i % 2 else None
            )

    add(5)
    # 1. the token's agent; 2. the replies joined to category and owner (with its user).
    at_5, body = count_queries(client, "/v1/canned-replies?page_size=100")
    assert len(body["results"]) == 5
    add(45)
    at_50, body = count_queries(client, "/v1/canned-replies?page_size=100")
    assert len(body["results"]) == 50
    assert at_5 == at_50 == 2


def test_charlie_gets_404_for_every_canned_reply_route_of_workspace_a(
    client_for: ClientFor, charlie: Agent, shared_reply: CannedReply, ticket_b: Ticket
):
    client = client_for(charlie)
    url = f"/v1/canned-replies/{shared_reply.pk}"

    for response in (
        client.get(url),
        client.patch(url, {"title": "x"}),
        client.delete(url),
        client.post(f"{url}/render", {"ticket": ticket_b.number}),
    ):
        assert_error(response, 404, "not_found")
    assert client.get("/v1/canned-replies").json()["results"] == []
    shared_reply.refresh_from_db()
    assert (shared_reply.title, shared_reply.usage_count) == ("Printer help", 0)


# --- Rendering -----------------------------------------------------------------------------------


def test_render_fills_the_placeholders_for_the_ticket_and_counts_the_use(
    client_for: ClientFor, bob: Agent, shared_reply: CannedReply, ticket_a: Ticket
):
    client = client_for(bob)
    url = f"/v1/canned-replies/{shared_reply.pk}/render"

    response = client.post(url, {"ticket": ticket_a.number})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "body": f"Hi Carol, about #{ticket_a.number}: {{{{ 7*7 }}}}\n-- Bob Agent",
        "unknown_placeholders": ["{{ 7*7 }}"],
    }
    client.post(url, {"ticket": ticket_a.number})
    shared_reply.refresh_from_db()
    assert shared_reply.usage_count == 2
    listed = client.get("/v1/canned-replies").json()["results"]
    assert listed[0]["usage_count"] == 2


def test_render_every_placeholder_through_the_api(
    client_for: ClientFor, alice: Agent, ticket_a: Ticket, workspace_a: Workspace
):
    canned = CannedReplyFactory(
        workspace=workspace_a,
        body="{{ticket.number}}|{{ticket.subject}}|{{ticket.status}}|{{customer.name}}|"
        "{{customer.first_name}}|{{customer.email}}|{{agent.name}}|{{agent.first_name}}|"
        "{{workspace.name}}|{{ ticket.__class__ }}|{% debug %}",
    )

    response = client_for(alice).post(
        f"/v1/canned-replies/{canned.pk}/render", {"ticket": ticket_a.number}
    )

    assert response.json() == {
        "body": f"{ticket_a.number}|Printer on fire|New|Carol Customer|Carol|"
        "carol@customer.test|Alice Admin|Alice|Acme Support|{{ ticket.__class__ }}|{% debug %}",
        "unknown_placeholders": ["{{ ticket.__class__ }}", "{% debug %}"],
    }


def test_render_needs_a_live_ticket_of_the_workspace(
    client_for: ClientFor,
    alice: Agent,
    shared_reply: CannedReply,
    ticket_a: Ticket,
    workspace_b: Workspace,
    customer_b: Customer,
):
    # #1 and #2 exist in B; only #1 exists in A (and is deleted below).
    for _ in range(2):
        ticket_create(
            workspace=workspace_b,
            actor=Actor.for_customer(customer_b),
            subject="B",
            body_text="B",
            customer=customer_b,
        )
    client = client_for(alice)
    url = f"/v1/canned-replies/{shared_reply.pk}/render"

    assert_error(client.post(url, {"ticket": 2}), 400, "invalid_reference", "ticket")
    assert_error(client.post(url, {}), 400, "invalid", "ticket")
    assert_error(client.post(url, {"ticket": "one"}), 400, "invalid", "ticket")
    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))
    assert_error(client.post(url, {"ticket": ticket_a.number}), 400, "invalid_reference")
    shared_reply.refresh_from_db()
    assert shared_reply.usage_count == 0


def test_a_light_agent_may_render_for_an_internal_note(
    client_for: ClientFor, lena: Agent, shared_reply: CannedReply, ticket_a: Ticket
):
    response = client_for(lena).post(
        f"/v1/canned-replies/{shared_reply.pk}/render", {"ticket": ticket_a.number}
    )

    assert response.status_code == 200, response.content
    assert response.json()["body"].endswith("-- Lena Light")


def test_a_replayed_render_counts_once(
    client_for: ClientFor, bob: Agent, shared_reply: CannedReply, ticket_a: Ticket
):
    client = client_for(bob)
    url = f"/v1/canned-replies/{shared_reply.pk}/render"

    first = client.post(url, {"ticket": ticket_a.number}, HTTP_IDEMPOTENCY_KEY="render-1")
    again = client.post(url, {"ticket": ticket_a.number}, HTTP_IDEMPOTENCY_KEY="render-1")

    assert first.json() == again.json()
    shared_reply.refresh_from_db()
    assert shared_reply.usage_count == 1


def test_the_schema_documents_every_settings_endpoint(api_client: APIClient):
    paths = api_client.get("/v1/schema", {"format": "json"}).json()["paths"]

    for kind in ("categories", "tags", "canned-replies"):
        assert {"get", "post"} <= set(paths[f"/v1/{kind}"])
        assert {"get", "patch", "delete"} <= set(paths[f"/v1/{kind}/{{id}}"])
    render = paths["/v1/canned-replies/{id}/render"]["post"]
    assert render["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CannedReplyRenderInput"
    )
    assert render["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RenderedReplyOutput"
    )
