"""/v1/agents/invite: who may invite whom, into which teams, and what the email holds."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from enque.tests.factories import AgentFactory, TeamFactory
from workspaces.models import Agent, AgentRole, Invitation, Workspace

pytestmark = pytest.mark.django_db


def error(response: Any) -> dict[str, Any]:
    return response.json()["error"]


def post_invite(client: APIClient, capture: Any, **body: Any) -> Any:
    with capture(execute=True):
        return client.post("/v1/agents/invite", body, format="json")


def test_an_admin_invites_and_the_link_is_emailed(
    client_for: Any, alice: Agent, workspace_a: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    team = TeamFactory(workspace=workspace_a)

    response = post_invite(
        client_for(alice),
        django_capture_on_commit_callbacks,
        email="New.Agent@Example.test",
        role="agent",
        team_ids=[team.pk],
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.agent@example.test"
    assert (body["role"], body["team_ids"], body["invited_by_id"]) == ("agent", [team.pk], alice.pk)
    assert "token" not in body
    (message,) = mail.outbox
    assert message.to == ["new.agent@example.test"]
    assert "Acme Support" in message.subject
    token = re.search(r"/accept-invite\?token=(\S+)", message.body).group(1)
    # Only a hash of the token is stored.
    invitation = Invitation.objects.get(pk=body["id"])
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.values().get(pk=body["id"]))


def test_the_role_defaults_to_agent(
    client_for: Any, alice: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    response = post_invite(
        client_for(alice), django_capture_on_commit_callbacks, email="x@example.test"
    )

    assert (response.status_code, response.json()["role"]) == (201, "agent")


def test_agents_may_not_invite(
    client_for: Any, bob: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    response = post_invite(
        client_for(bob), django_capture_on_commit_callbacks, email="x@example.test"
    )

    assert response.status_code == 403
    assert error(response)["code"] == "admin_required"
    assert not mail.outbox


def test_light_agents_may_not_invite(
    client_for: Any, workspace_a: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    light = AgentFactory(workspace=workspace_a, role=AgentRole.LIGHT)

    response = post_invite(
        client_for(light), django_capture_on_commit_callbacks, email="x@example.test"
    )

    assert response.status_code == 403
    assert error(response)["code"] == "light_agent"


def test_inviting_needs_a_token(api_client: APIClient) -> None:
    response = api_client.post("/v1/agents/invite", {"email": "x@example.test"}, format="json")

    assert response.status_code == 401


def test_only_an_owner_invites_an_owner(
    client_for: Any,
    alice: Agent,
    workspace_a: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    owner = Agent.objects.get(workspace=workspace_a, role=AgentRole.OWNER)

    by_admin = post_invite(
        client_for(alice), django_capture_on_commit_callbacks, email="x@e.test", role="owner"
    )
    by_owner = post_invite(
        client_for(owner), django_capture_on_commit_callbacks, email="x@e.test", role="owner"
    )

    assert by_admin.status_code == 403
    assert error(by_admin)["code"] == "owner_required"
    assert by_owner.status_code == 201


def test_invite_names_each_invalid_field(client_for: Any, alice: Agent) -> None:
    response = client_for(alice).post(
        "/v1/agents/invite",
        {"email": "not-an-email", "role": "emperor", "team_ids": ["x"]},
        format="json",
    )

    assert response.status_code == 400
    assert error(response)["fields"] == {
        "email": ["Enter a valid email address."],
        "role": ['"emperor" is not a valid choice.'],
        "team_ids.0": ["A valid integer is required."],
    }


def test_charlies_team_in_alices_invitation_is_a_400(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    team_b = TeamFactory(workspace=workspace_b)

    response = client_for(alice).post(
        "/v1/agents/invite", {"email": "x@example.test", "team_ids": [team_b.pk]}, format="json"
    )

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_reference"
    assert list(error(response)["fields"]) == ["team_ids"]
    assert not Invitation.objects.exists()


def test_charlie_cannot_invite_into_workspace_a(
    client_for: Any, charlie: Agent, workspace_a: Workspace, workspace_b: Workspace
) -> None:
    response = client_for(charlie).post(
        "/v1/agents/invite", {"email": "x@example.test"}, format="json"
    )

    assert response.status_code == 201
    # The token's workspace decides: Charlie's invitation is to B, never to A.
    assert Invitation.objects.get().workspace_id == workspace_b.pk


def test_inviting_a_current_member_is_a_409(client_for: Any, alice: Agent, bob: Agent) -> None:
    response = client_for(alice).post("/v1/agents/invite", {"email": "BOB@a.test"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "already_member"
