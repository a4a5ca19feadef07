"""/v1/views: saved ticket filters, personal or shared, with live counts.

Alice is an admin of workspace A, Bob an agent there, Lena a light agent there; Carol is a
customer of A. Charlie is the admin of workspace B.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from enque.tests.factories import AgentFactory, TeamFactory
from tickets.models import SavedView, Ticket
from tickets.tests.api_support import error, light_agent, queries_of, write_in
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_api(client_for: Any, alice: Agent) -> APIClient:
    return client_for(alice)


@pytest.fixture
def bob_api(client_for: Any, bob: Agent) -> APIClient:
    return client_for(bob)


@pytest.fixture
def charlie_api(client_for: Any, charlie: Agent) -> APIClient:
    return client_for(charlie)


def shared_view(workspace: Workspace, name: str = "Open", **filters: Any) -> SavedView:
    return SavedView.objects.create(workspace=workspace, name=name, filters=filters)


def personal_view(agent: Agent, name: str = "Mine", **filters: Any) -> SavedView:
    return SavedView.objects.create(
        workspace=agent.workspace, owner=agent, name=name, filters=filters
    )


def test_an_agent_saves_a_personal_view_with_its_live_count(
    bob_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    write_in(customer_a, "urgent and mine", priority="urgent", assignee=bob)
    write_in(customer_a, "urgent, not mine", priority="urgent")

    response = bob_api.post(
        "/v1/views",
        {
            "name": " My   urgent ",
            "filters": {"status": "new,open", "priority": ["urgent"], "assignee": "me"},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "My urgent"
    assert (body["shared"], body["owner"]) == (False, {"id": bob.pk, "name": "Bob Agent"})
    assert body["filters"] == {
        "status": ["new", "open"],
        "priority": ["urgent"],
        "assignee": "me",
    }
    assert body["count"] == 1
    assert body["position"] == 0


def test_a_views_tickets_are_the_filtered_list(
    bob_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    mine = write_in(customer_a, "mine", assignee=bob)
    write_in(customer_a, "nobody's")
    view = personal_view(bob, assignee="me")

    response = bob_api.get(f"/v1/views/{view.pk}/tickets")

    assert response.status_code == 200
    assert [t["number"] for t in response.json()["results"]] == [mine.number]
    assert response.json()["results"][0]["assignee"]["id"] == bob.pk


def test_a_views_ordering_applies_to_its_tickets(
    bob_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    tickets = [write_in(customer_a, f"t{n}") for n in range(3)]
    view = personal_view(bob, ordering="number")
    response = bob_api.get(f"/v1/views/{view.pk}/tickets?page_size=2")
    page = [t["number"] for t in response.json()["results"]]
    page += [t["number"] for t in bob_api.get(response.json()["next"]).json()["results"]]
    assert page == [t.number for t in tickets]


def test_me_in_a_shared_view_is_whoever_opens_it(
    client_for: Any, alice: Agent, bob: Agent, customer_a: Customer, workspace_a: Workspace
) -> None:
    write_in(customer_a, "bob's", assignee=bob)
    write_in(customer_a, "bob's too", assignee=bob)
    write_in(customer_a, "alice's", assignee=alice)
    view = shared_view(workspace_a, "Assigned to me", assignee="me")

    assert client_for(bob).get(f"/v1/views/{view.pk}").json()["count"] == 2
    assert client_for(alice).get(f"/v1/views/{view.pk}").json()["count"] == 1


def test_an_agent_lists_shared_views_and_their_own_only(
    bob_api: APIClient, bob: Agent, alice: Agent, workspace_a: Workspace, workspace_b: Workspace
) -> None:
    shared = shared_view(workspace_a, "Everyone's")
    own = personal_view(bob, "Bob's")
    personal_view(alice, "Alice's")
    shared_view(workspace_b, "B's")

    response = bob_api.get("/v1/views")

    assert response.status_code == 200
    assert [v["id"] for v in response.json()["results"]] == [shared.pk, own.pk]


def test_counts_never_include_another_workspaces_tickets(
    charlie_api: APIClient, workspace_b: Workspace, ticket_a: Ticket, ticket_b: Ticket
) -> None:
    view = shared_view(workspace_b, "All")
    assert charlie_api.get(f"/v1/views/{view.pk}").json()["count"] == 1
    assert [
        t["number"] for t in charlie_api.get(f"/v1/views/{view.pk}/tickets").json()["results"]
    ] == [ticket_b.number]


def test_the_views_list_counts_every_view_in_one_query(
    bob_api: APIClient, bob: Agent, customer_a: Customer, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    for n in range(5):
        write_in(customer_a, f"printer {n}", team=team if n % 2 else None, priority="high")

    def add_views(count: int) -> None:
        for n in range(count):
            filters = [
                {"status": ["new"]},
                {"team": team.pk},
                {"q": "printer"},
                {"tag": ["vip"], "priority": ["high"]},
                {},
            ][n % 5]
            personal_view(bob, f"view {SavedView.objects.count()}", **filters)

    add_views(5)
    response, few = queries_of(lambda: bob_api.get("/v1/views?page_size=100"))
    counts = [v["count"] for v in response.json()["results"]]
    assert counts == [5, 2, 5, 0, 5]
    add_views(45)
    response, many = queries_of(lambda: bob_api.get("/v1/views?page_size=100"))
    assert len(response.json()["results"]) == 50
    # 1. the token's agent  2. the page of views (owner + user joined)
    # 3. one aggregate with a COUNT(*) FILTER (WHERE ...) per view
    assert len(few) == len(many) == 3, many


def test_view_tickets_take_the_same_queries_for_5_and_100(
    bob_api: APIClient, bob: Agent, customer_a: Customer
) -> None:
    view = personal_view(bob, status=["new"])

    def add(count: int) -> None:
        for n in range(count):
            write_in(customer_a, f"ticket {n}")

    add(5)
    url = f"/v1/views/{view.pk}/tickets?page_size=100"
    _, five = queries_of(lambda: bob_api.get(url))
    add(95)
    response, hundred = queries_of(lambda: bob_api.get(url))
    assert len(response.json()["results"]) == 100
    # 1. agent  2. the view  3. the page of tickets, embeds joined  4. their tags
    assert len(five) == len(hundred) == 4, hundred


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "v", "filters": {"status": ["someday"]}}, "filters.status"),
        ({"name": "v", "filters": {"colour": "red"}}, "filters.colour"),
        ({"name": "v", "filters": {"assignee": "you"}}, "filters.assignee"),
        ({"name": "v", "filters": "status=open"}, "filters.non_field_errors"),
        ({"name": "v", "position": -1}, "position"),
    ],
)
def test_view_validation_errors_name_their_fields(
    bob_api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = bob_api.post("/v1/views", body, format="json")
    assert response.status_code == 400
    assert list(error(response)["fields"]) == [field]


def test_a_filter_naming_another_workspaces_team_is_refused(
    bob_api: APIClient, workspace_b: Workspace
) -> None:
    team_b = TeamFactory(workspace=workspace_b)
    response = bob_api.post(
        "/v1/views", {"name": "v", "filters": {"team": team_b.pk}}, format="json"
    )
    assert (response.status_code, error(response)["code"]) == (400, "invalid_reference")
    assert list(error(response)["fields"]) == ["filters.team"]
    assert not SavedView.objects.exists()


def test_names_are_unique_per_owner_and_among_shared_views(
    alice_api: APIClient, bob_api: APIClient
) -> None:
    assert bob_api.post("/v1/views", {"name": "Mine"}, format="json").status_code == 201
    again = bob_api.post("/v1/views", {"name": "MINE"}, format="json")
    assert (again.status_code, error(again)["code"]) == (409, "name_taken")
    # Alice may have her own "Mine", and the workspace a shared one.
    assert alice_api.post("/v1/views", {"name": "Mine"}, format="json").status_code == 201
    shared = alice_api.post("/v1/views", {"name": "Mine", "shared": True}, format="json")
    assert shared.status_code == 201


def test_only_admins_create_and_change_shared_views(
    alice_api: APIClient, bob_api: APIClient, workspace_a: Workspace
) -> None:
    refused = bob_api.post("/v1/views", {"name": "Team", "shared": True}, format="json")
    assert (refused.status_code, error(refused)["code"]) == (403, "admin_required")

    created = alice_api.post(
        "/v1/views", {"name": "Team", "shared": True, "filters": {"status": "open"}}, format="json"
    )
    assert created.status_code == 201
    assert (created.json()["shared"], created.json()["owner"]) == (True, None)
    view_id = created.json()["id"]

    # Bob sees it, but may not change or delete it.
    assert bob_api.get(f"/v1/views/{view_id}").status_code == 200
    for response in (
        bob_api.patch(f"/v1/views/{view_id}", {"name": "Mine now"}, format="json"),
        bob_api.delete(f"/v1/views/{view_id}"),
    ):
        assert (response.status_code, error(response)["code"]) == (403, "admin_required")

    renamed = alice_api.patch(
        f"/v1/views/{view_id}", {"name": "Open team tickets", "position": 3}, format="json"
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["position"]) == ("Open team tickets", 3)
    assert alice_api.delete(f"/v1/views/{view_id}").status_code == 204
    assert not SavedView.objects.exists()


def test_the_owner_edits_a_personal_view_and_nobody_else_sees_it(
    bob_api: APIClient, alice_api: APIClient, bob: Agent, workspace_a: Workspace
) -> None:
    view = personal_view(bob, "Bob's", status=["new"])

    changed = bob_api.patch(
        f"/v1/views/{view.pk}", {"filters": {"priority": "low,high"}}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["filters"] == {"priority": ["low", "high"]}

    # Even an admin: another agent's personal view is not found.
    assert alice_api.get(f"/v1/views/{view.pk}").status_code == 404
    assert alice_api.patch(f"/v1/views/{view.pk}", {"name": "x"}, format="json").status_code == 404
    assert alice_api.delete(f"/v1/views/{view.pk}").status_code == 404
    assert alice_api.get(f"/v1/views/{view.pk}/tickets").status_code == 404
    assert bob_api.delete(f"/v1/views/{view.pk}").status_code == 204


def test_patch_needs_a_change(bob_api: APIClient, bob: Agent) -> None:
    view = personal_view(bob)
    response = bob_api.patch(f"/v1/views/{view.pk}", {}, format="json")
    assert list(error(response)["fields"]) == ["non_field_errors"]


def test_light_agents_read_views_but_keep_none(
    client_for: Any, workspace_a: Workspace, ticket_a: Ticket
) -> None:
    lena = light_agent(workspace_a)
    view = shared_view(workspace_a, "All")
    api = client_for(lena)
    assert api.get("/v1/views").status_code == 200
    assert api.get(f"/v1/views/{view.pk}/tickets").json()["results"][0]["number"] == 1
    refused = api.post("/v1/views", {"name": "Mine"}, format="json")
    assert (refused.status_code, error(refused)["code"]) == (403, "light_agent")


def test_charlie_gets_404_for_a_view_of_a(
    charlie_api: APIClient, workspace_a: Workspace, bob: Agent
) -> None:
    for view in (shared_view(workspace_a), personal_view(bob)):
        assert charlie_api.get(f"/v1/views/{view.pk}").status_code == 404
        assert charlie_api.get(f"/v1/views/{view.pk}/tickets").status_code == 404
        assert (
            charlie_api.patch(f"/v1/views/{view.pk}", {"name": "x"}, format="json").status_code
            == 404
        )
        assert charlie_api.delete(f"/v1/views/{view.pk}").status_code == 404
    assert SavedView.objects.count() == 2


def test_a_view_whose_team_was_deleted_matches_nothing(
    bob_api: APIClient, bob: Agent, customer_a: Customer, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    write_in(customer_a, team=team)
    view = personal_view(bob, team=team.pk)
    team.delete()
    assert bob_api.get(f"/v1/views/{view.pk}").json()["count"] == 0


def test_an_inactive_assignee_in_a_filter_is_still_a_valid_reference(
    bob_api: APIClient, workspace_a: Workspace
) -> None:
    former = AgentFactory(workspace=workspace_a, is_active=False)
    response = bob_api.post(
        "/v1/views", {"name": "Former's", "filters": {"assignee": former.pk}}, format="json"
    )
    assert response.status_code == 201
