"""The services the settings pages added: revoking and resending an invitation, and a
team's Microsoft Teams webhook (validated, encrypted at rest)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings

from enque.errors import Conflict, Forbidden, InvalidInput, NotFound
from enque.tests.factories import TeamFactory
from workspaces.models import Agent, AgentRole, Invitation, Team, Workspace
from workspaces.services import (
    invitation_accept,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    team_create,
    team_update,
)

pytestmark = pytest.mark.django_db

HOOK = "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123"


def owner_of(workspace: Workspace) -> Agent:
    return Agent.objects.get(workspace=workspace, role=AgentRole.OWNER)


def test_a_revoked_invitation_cannot_be_accepted(alice: Agent) -> None:
    invitation, token = invitation_create(workspace=alice.workspace, actor=alice, email="n@a.test")
    invitation_revoke(workspace=alice.workspace, actor=alice, invitation=invitation)
    assert not Invitation.objects.exists()
    with pytest.raises(InvalidInput) as exc:
        invitation_accept(token=token, name="New", password="a long enough passphrase 1")
    assert exc.value.code == "invalid_token"


def test_revoke_and_resend_follow_the_role_rules(
    alice: Agent, bob: Agent, charlie: Agent, workspace_a: Workspace
) -> None:
    owners, _ = invitation_create(
        workspace=workspace_a, actor=owner_of(workspace_a), email="o@a.test", role="owner"
    )
    for service in (invitation_revoke, invitation_resend):
        with pytest.raises(Forbidden):
            service(workspace=workspace_a, actor=alice, invitation=owners)  # an admin
        with pytest.raises(Forbidden):
            service(workspace=workspace_a, actor=bob, invitation=owners)  # an agent
        with pytest.raises(NotFound):  # another workspace's invitation
            service(workspace=charlie.workspace, actor=charlie, invitation=owners)
    assert Invitation.objects.filter(pk=owners.pk).exists()


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_resend_sends_a_new_link_and_kills_the_old(
    alice: Agent, workspace_a: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    kept, gone = TeamFactory(workspace=workspace_a), TeamFactory(workspace=workspace_a)
    first, old_token = invitation_create(
        workspace=workspace_a, actor=alice, email="n@a.test", role="light",
        team_ids=[kept.pk, gone.pk],
    )  # fmt: skip
    gone.delete()
    with django_capture_on_commit_callbacks(execute=True):
        second, new_token = invitation_resend(workspace=workspace_a, actor=alice, invitation=first)
    assert (second.email, second.role, second.team_ids) == ("n@a.test", "light", [kept.pk])
    assert list(Invitation.objects.all()) == [second]
    assert new_token in mail.outbox[-1].body
    with pytest.raises(InvalidInput):
        invitation_accept(token=old_token, name="N", password="a long enough passphrase 1")
    agent, created = invitation_accept(
        token=new_token, name="N", password="a long enough passphrase 1"
    )
    assert created and agent.role == "light"
    # Accepted: neither revocable nor resendable any more.
    second.refresh_from_db()
    for service in (invitation_revoke, invitation_resend):
        with pytest.raises(Conflict):
            service(workspace=workspace_a, actor=alice, invitation=second)


def test_a_teams_webhook_is_https_and_encrypted_at_rest(
    alice: Agent, workspace_a: Workspace
) -> None:
    team = team_create(workspace=workspace_a, name="Hardware", teams_webhook_url=f" {HOOK} ")
    assert Team.objects.get().teams_webhook_url == HOOK
    with connection.cursor() as cursor:
        cursor.execute("SELECT teams_webhook_url FROM workspaces_team WHERE id = %s", [team.pk])
        assert HOOK not in cursor.fetchone()[0]
    for bad in ("http://acme.webhook.office.com/x", "not a url", "https://" + "a" * 2000):
        with pytest.raises(InvalidInput) as exc:
            team_update(workspace=workspace_a, actor=alice, team=team, teams_webhook_url=bad)
        assert exc.value.field == "teams_webhook_url"
        with pytest.raises(InvalidInput):
            team_create(workspace=workspace_a, name="Other", teams_webhook_url=bad)
    team_update(workspace=workspace_a, actor=alice, team=team, teams_webhook_url="")
    assert Team.objects.get().teams_webhook_url == ""
    assert Team.objects.count() == 1
