"""/v1/workspaces: the caller's own workspaces only; update needs admin there, delete owner."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from enque.tests.factories import AgentFactory
from workspaces.models import Agent, AgentRole, Workspace
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


def error(response: Any) -> dict[str, Any]:
    return response.json()["error"]


def owner_of(workspace: Workspace) -> Agent:
    return Agent.objects.get(workspace=workspace, role=AgentRole.OWNER)


# --- List and retrieve ---------------------------------------------------------------------


def test_list_shows_the_callers_workspaces_with_their_role(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    AgentFactory(workspace=workspace_b, user=alice.user, role=AgentRole.LIGHT)

    response = client_for(alice).get("/v1/workspaces")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert [(w["id"], w["role"]) for w in body["results"]] == [
        (alice.workspace_id, "admin"),
        (workspace_b.pk, "light"),
    ]


def test_charlie_does_not_see_workspace_a(
    client_for: Any, charlie: Agent, workspace_a: Workspace
) -> None:
    listed = client_for(charlie).get("/v1/workspaces").json()["results"]

    assert [w["id"] for w in listed] == [charlie.workspace_id]


def test_inactive_memberships_and_workspaces_are_not_listed(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    AgentFactory(workspace=workspace_b, user=alice.user, is_active=False)
    closed = workspace_create(name="Closed", owner=alice.user)
    Workspace.objects.filter(pk=closed.pk).update(is_active=False)

    listed = client_for(alice).get("/v1/workspaces").json()["results"]

    assert [w["id"] for w in listed] == [alice.workspace_id]


def test_the_list_pages_with_a_cursor(client_for: Any, alice: Agent) -> None:
    extra = [workspace_create(name=f"Extra {n}", owner=alice.user) for n in range(3)]

    client = client_for(alice)
    page1 = client.get("/v1/workspaces?page_size=2").json()
    page2 = client.get(page1["next"]).json()

    listed = [w["id"] for w in page1["results"] + page2["results"]]
    assert listed == [alice.workspace_id, *[w.pk for w in extra]]
    assert page2["next"] is None


def test_the_list_costs_the_same_queries_for_many_workspaces(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    with CaptureQueriesContext(connection) as one:
        client.get("/v1/workspaces")
    for n in range(5):
        workspace_create(name=f"Extra {n}", owner=alice.user)
    with CaptureQueriesContext(connection) as six:
        client.get("/v1/workspaces")

    # authentication (agent + user + workspace), then the page (role as a subquery).
    assert len(six) == len(one) == 2


def test_retrieve_one_of_the_callers_workspaces(client_for: Any, bob: Agent) -> None:
    response = client_for(bob).get(f"/v1/workspaces/{bob.workspace_id}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["role"]) == (bob.workspace_id, "Acme Support", "agent")
    assert body["slug"] == "acme-support"


def test_charlie_gets_404_for_workspace_a(
    client_for: Any, charlie: Agent, workspace_a: Workspace
) -> None:
    client = client_for(charlie)
    url = f"/v1/workspaces/{workspace_a.pk}"

    answers = [
        client.get(url),
        client.patch(url, {"name": "Mine now"}, format="json"),
        client.delete(url, {"confirm": workspace_a.slug}, format="json"),
    ]

    assert [r.status_code for r in answers] == [404, 404, 404]
    assert {error(r)["code"] for r in answers} == {"not_found"}
    workspace_a.refresh_from_db()
    assert (workspace_a.name, workspace_a.is_active) == ("Acme Support", True)


def test_a_missing_workspace_is_the_same_404(client_for: Any, charlie: Agent) -> None:
    assert client_for(charlie).get("/v1/workspaces/999999").status_code == 404


def test_workspaces_need_a_token(api_client: APIClient) -> None:
    assert api_client.get("/v1/workspaces").status_code == 401


# --- Create --------------------------------------------------------------------------------


def test_create_makes_the_caller_its_owner(client_for: Any, bob: Agent) -> None:
    response = client_for(bob).post(
        "/v1/workspaces", {"name": "Side Project", "timezone": "Europe/Berlin"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["timezone"], body["role"]) == (
        "Side Project",
        "Europe/Berlin",
        "owner",
    )
    assert Agent.objects.get(workspace_id=body["id"], user=bob.user).role == AgentRole.OWNER


def test_a_light_agent_may_still_create_their_own_workspace(
    client_for: Any, workspace_a: Workspace
) -> None:
    light = AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT)

    response = client_for(light).post("/v1/workspaces", {"name": "Mine"}, format="json")

    assert response.status_code == 201


def test_create_names_each_invalid_field(client_for: Any, bob: Agent) -> None:
    response = client_for(bob).post(
        "/v1/workspaces", {"name": "", "timezone": "Mars/Olympus"}, format="json"
    )

    assert response.status_code == 400
    assert error(response)["fields"] == {
        "name": ["This field may not be blank."],
        "timezone": ["Not a time zone (e.g. Europe/Berlin)."],
    }


# --- Update --------------------------------------------------------------------------------


def test_an_admin_updates_the_settings(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).patch(
        f"/v1/workspaces/{alice.workspace_id}",
        {
            "name": "Acme Customer Care",
            "timezone": "America/New_York",
            "default_signature": "-- \nAcme",
            "signup_domains": ["@Acme.test", "acme.test", "acme.example"],
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Acme Customer Care"
    assert body["signup_domains"] == ["acme.example", "acme.test"]
    workspace = Workspace.objects.get(pk=alice.workspace_id)
    assert (workspace.timezone, workspace.default_signature) == ("America/New_York", "-- \nAcme")
    assert workspace.slug == "acme-support"  # links and confirmations keep working


def test_an_agent_may_not_update(client_for: Any, bob: Agent) -> None:
    response = client_for(bob).patch(
        f"/v1/workspaces/{bob.workspace_id}", {"name": "Bob's"}, format="json"
    )

    assert response.status_code == 403
    assert error(response)["code"] == "admin_required"


def test_the_role_that_counts_is_the_one_in_the_addressed_workspace(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    AgentFactory(workspace=workspace_b, user=alice.user, role=AgentRole.AGENT)

    response = client_for(alice).patch(
        f"/v1/workspaces/{workspace_b.pk}", {"name": "Taken over"}, format="json"
    )

    assert response.status_code == 403


def test_update_names_each_invalid_field(client_for: Any, alice: Agent) -> None:
    client = client_for(alice)
    url = f"/v1/workspaces/{alice.workspace_id}"

    blank = client.patch(url, {"name": "  "}, format="json")
    zone = client.patch(url, {"timezone": "Nowhere/Land"}, format="json")
    domain = client.patch(url, {"signup_domains": ["not a domain"]}, format="json")

    assert list(error(blank)["fields"]) == ["name"]
    assert (zone.status_code, list(error(zone)["fields"])) == (400, ["timezone"])
    assert (domain.status_code, list(error(domain)["fields"])) == (400, ["signup_domains"])


# --- Delete --------------------------------------------------------------------------------


def test_the_owner_deletes_with_the_slug_as_confirmation(
    client_for: Any, workspace_a: Workspace, alice: Agent
) -> None:
    owner = client_for(owner_of(workspace_a))
    alices = client_for(alice)

    response = owner.delete(
        f"/v1/workspaces/{workspace_a.pk}", {"confirm": "acme-support"}, format="json"
    )

    assert response.status_code == 204
    workspace_a.refresh_from_db()
    assert not workspace_a.is_active  # soft: the data is kept
    # Every token for the workspace stops working, and it is gone for its members.
    assert alices.get("/v1/auth/me").status_code == 401
    assert owner.get(f"/v1/workspaces/{workspace_a.pk}").status_code == 401


def test_the_confirmation_may_come_as_a_query_parameter(
    client_for: Any, workspace_a: Workspace
) -> None:
    response = client_for(owner_of(workspace_a)).delete(
        f"/v1/workspaces/{workspace_a.pk}?confirm=acme-support"
    )

    assert response.status_code == 204


def test_a_wrong_or_missing_confirmation_is_a_400(client_for: Any, workspace_a: Workspace) -> None:
    owner = client_for(owner_of(workspace_a))
    url = f"/v1/workspaces/{workspace_a.pk}"

    wrong = owner.delete(url, {"confirm": "Acme Support"}, format="json")
    missing = owner.delete(url)

    assert (wrong.status_code, error(wrong)["code"]) == (400, "confirmation_mismatch")
    assert list(error(wrong)["fields"]) == ["confirm"]
    assert (missing.status_code, list(error(missing)["fields"])) == (400, ["confirm"])
    workspace_a.refresh_from_db()
    assert workspace_a.is_active


def test_an_admin_may_not_delete(client_for: Any, alice: Agent, workspace_a: Workspace) -> None:
    response = client_for(alice).delete(
        f"/v1/workspaces/{workspace_a.pk}", {"confirm": "acme-support"}, format="json"
    )

    assert response.status_code == 403
    assert error(response)["code"] == "owner_required"
