"""/v1/auth: sign-up, sign-in, tokens, sign-out, switching workspaces, password reset and
accepting invitations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from rest_framework.test import APIClient

from enque.api.authentication import issue_tokens
from enque.tests.factories import AgentFactory, TeamFactory
from workspaces import services
from workspaces.models import Agent, AgentRole, Invitation, TeamMembership, User, Workspace

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's


def error(response: Any) -> dict[str, Any]:
    body = response.json()["error"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def token_in(message: mail.EmailMessage) -> str:
    return re.search(r"token=(\S+)", message.body).group(1)


# --- Register ----------------------------------------------------------------------------


def test_register_creates_a_user_and_a_workspace_they_own(api_client: APIClient) -> None:
    response = api_client.post(
        "/v1/auth/register",
        {
            "name": "Dana Founder",
            "email": "Dana@Startup.test",
            "password": "a long unusual passphrase",
            "workspace_name": "Startup Support",
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["agent"]["role"] == "owner"
    assert body["agent"]["email"] == "dana@startup.test"
    assert body["workspace"]["name"] == "Startup Support"
    assert body["workspace"]["role"] == "owner"
    me = bearer(body["access"]).get("/v1/auth/me").json()
    assert me["workspace"]["id"] == body["workspace"]["id"]
    user = User.objects.get(email="dana@startup.test")
    assert user.check_password("a long unusual passphrase")
    assert user.last_workspace_id == body["workspace"]["id"]


def test_register_names_every_missing_field(api_client: APIClient) -> None:
    response = api_client.post("/v1/auth/register", {"email": "nope"}, format="json")

    assert response.status_code == 400
    assert error(response)["fields"] == {
        "name": ["This field is required."],
        "email": ["Enter a valid email address."],
        "password": ["This field is required."],
        "workspace_name": ["This field is required."],
    }


def test_register_applies_djangos_password_validators(api_client: APIClient) -> None:
    response = api_client.post(
        "/v1/auth/register",
        {"name": "Dana", "email": "dana@s.test", "password": "1234", "workspace_name": "S"},
        format="json",
    )

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid_password"
    assert len(body["fields"]["password"]) >= 2  # too short, too common, entirely numeric
    assert any("too short" in message for message in body["fields"]["password"])
    assert not User.objects.filter(email="dana@s.test").exists()


def test_register_with_a_taken_email_is_a_409(api_client: APIClient, alice: Agent) -> None:
    response = api_client.post(
        "/v1/auth/register",
        {
            "name": "Alice Again",
            "email": "ALICE@a.test",
            "password": "a long unusual passphrase",
            "workspace_name": "Another",
        },
        format="json",
    )

    assert response.status_code == 409
    assert error(response)["code"] == "email_taken"
    assert list(error(response)["fields"]) == ["email"]


# --- Login -------------------------------------------------------------------------------


def login(client: APIClient, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(
        "/v1/auth/login", {"email": email, "password": password, **extra}, format="json"
    )


def test_login_returns_tokens_for_the_agent_and_workspace(
    api_client: APIClient, alice: Agent
) -> None:
    response = login(api_client, "alice@a.test")

    assert response.status_code == 200
    body = response.json()
    assert body["agent"]["id"] == alice.pk
    assert body["agent"]["role"] == "admin"
    assert (body["workspace"]["id"], body["workspace"]["role"]) == (alice.workspace_id, "admin")
    assert bearer(body["access"]).get("/v1/auth/me").status_code == 200
    alice.user.refresh_from_db()
    assert alice.user.last_login is not None


def test_login_is_case_insensitive_about_the_email(api_client: APIClient, alice: Agent) -> None:
    assert login(api_client, "Alice@A.TEST").status_code == 200


def test_unknown_email_and_wrong_password_get_the_same_answer(
    api_client: APIClient, alice: Agent
) -> None:
    unknown = login(api_client, "nobody@a.test")
    wrong = login(api_client, "alice@a.test", "not the password")

    assert unknown.status_code == wrong.status_code == 401
    assert {k: v for k, v in error(unknown).items() if k != "request_id"} == {
        k: v for k, v in error(wrong).items() if k != "request_id"
    }
    assert error(wrong)["code"] == "invalid_credentials"
    assert error(wrong)["message"] == "Invalid email or password."


def test_an_inactive_user_cannot_log_in(api_client: APIClient, alice: Agent) -> None:
    User.objects.filter(pk=alice.user_id).update(is_active=False)

    response = login(api_client, "alice@a.test")

    assert response.status_code == 401
    assert error(response)["code"] == "invalid_credentials"


def test_repeated_failures_lock_the_address_even_for_the_right_password(
    api_client: APIClient, alice: Agent, settings: Any
) -> None:
    settings.RATELIMIT_LOGIN_FAILURES = "3/15m"
    for _ in range(3):
        assert login(api_client, "alice@a.test", "guess").status_code == 401

    locked = login(api_client, "alice@a.test")

    assert locked.status_code == 429
    assert error(locked)["code"] == "throttled"
    assert int(locked["Retry-After"]) > 0


def test_the_failure_lock_does_not_reveal_whether_an_address_exists(
    api_client: APIClient, settings: Any
) -> None:
    settings.RATELIMIT_LOGIN_FAILURES = "3/15m"
    for _ in range(3):
        login(api_client, "nobody@a.test", "guess")

    assert login(api_client, "nobody@a.test", "guess").status_code == 429


def test_logins_from_one_address_are_limited(api_client: APIClient, settings: Any) -> None:
    settings.RATELIMIT_AUTH = "3/15m"

    answers = [login(api_client, f"user{n}@a.test", "guess").status_code for n in range(4)]

    assert answers == [401, 401, 401, 429]


def test_login_lands_in_the_last_used_workspace_unless_one_is_named(
    api_client: APIClient, alice: Agent, workspace_b: Workspace
) -> None:
    in_b = AgentFactory(workspace=workspace_b, user=alice.user, role=AgentRole.AGENT)
    User.objects.filter(pk=alice.user_id).update(last_workspace=workspace_b)

    default = login(api_client, "alice@a.test").json()
    named = login(api_client, "alice@a.test", workspace_id=alice.workspace_id).json()

    assert default["agent"]["id"] == in_b.pk
    assert named["agent"]["id"] == alice.pk
    alice.user.refresh_from_db()
    assert alice.user.last_workspace_id == alice.workspace_id


def test_login_into_a_workspace_one_is_not_a_member_of_is_a_404(
    api_client: APIClient, alice: Agent, workspace_b: Workspace
) -> None:
    response = login(api_client, "alice@a.test", workspace_id=workspace_b.pk)

    assert response.status_code == 404
    assert list(error(response)["fields"]) == ["workspace_id"]


def test_login_without_any_active_membership_is_refused(
    api_client: APIClient, alice: Agent
) -> None:
    Agent.objects.filter(pk=alice.pk).update(is_active=False)

    response = login(api_client, "alice@a.test")

    assert response.status_code == 403
    assert error(response)["code"] == "no_workspace"


def test_login_validates_its_input(api_client: APIClient) -> None:
    response = api_client.post(
        "/v1/auth/login", {"email": "a@a.test", "password": "x", "workspace_id": 0}, format="json"
    )

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["workspace_id"]


def test_a_stale_token_does_not_block_login(api_client: APIClient, alice: Agent) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")

    assert login(api_client, "alice@a.test").status_code == 200


# --- Tokens: refresh, logout, me -----------------------------------------------------------


def test_refresh_rotates_the_pair(api_client: APIClient, alice: Agent) -> None:
    tokens = issue_tokens(alice)

    response = api_client.post("/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    reused = api_client.post("/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200
    fresh = response.json()
    assert set(fresh) == {"access", "refresh"}
    assert fresh["refresh"] != tokens["refresh"]
    assert bearer(fresh["access"]).get("/v1/auth/me").json()["agent"]["id"] == alice.pk
    assert reused.status_code == 401
    assert error(reused)["code"] == "token_not_valid"


def test_a_deactivated_agent_cannot_refresh(api_client: APIClient, bob: Agent) -> None:
    tokens = issue_tokens(bob)
    Agent.objects.filter(pk=bob.pk).update(is_active=False)

    response = api_client.post("/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 401
    assert error(response)["code"] == "account_inactive"


@pytest.mark.parametrize("which", ["garbage", "access"])
def test_refresh_refuses_anything_but_a_refresh_token(
    api_client: APIClient, alice: Agent, which: str
) -> None:
    token = "garbage" if which == "garbage" else issue_tokens(alice)["access"]

    response = api_client.post("/v1/auth/refresh", {"refresh": token}, format="json")

    assert response.status_code == 401
    assert error(response)["code"] == "token_not_valid"


def test_refresh_validates_its_input(api_client: APIClient) -> None:
    response = api_client.post("/v1/auth/refresh", {}, format="json")

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["refresh"]


def test_after_logout_the_refresh_token_is_refused(api_client: APIClient, alice: Agent) -> None:
    tokens = issue_tokens(alice)

    logout = api_client.post("/v1/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    refresh = api_client.post("/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert logout.status_code == 204
    assert refresh.status_code == 401
    assert error(refresh)["code"] == "token_not_valid"


def test_after_logout_the_access_tokens_of_that_session_are_refused(
    api_client: APIClient, alice: Agent
) -> None:
    first = issue_tokens(alice)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['access']}")
    rotated = api_client.post("/v1/auth/refresh", {"refresh": first["refresh"]}, format="json")
    other_session = issue_tokens(alice)

    logout = api_client.post(
        "/v1/auth/logout", {"refresh": rotated.json()["refresh"]}, format="json"
    )

    assert logout.status_code == 204
    # Both the original and the rotated access token belong to the signed-out session.
    for access in (first["access"], rotated.json()["access"]):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        me = api_client.get("/v1/auth/me")
        assert me.status_code == 401
        assert error(me)["code"] == "token_revoked"
    # Another sign-in of the same person is not affected.
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_session['access']}")
    assert api_client.get("/v1/auth/me").status_code == 200


def test_logout_refuses_a_token_that_is_not_one(api_client: APIClient) -> None:
    response = api_client.post("/v1/auth/logout", {"refresh": "garbage"}, format="json")

    assert response.status_code == 401


def test_me_describes_the_token(client_for: Any, bob: Agent) -> None:
    response = client_for(bob).get("/v1/auth/me")

    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"id": bob.user_id, "email": "bob@a.test", "name": "Bob Agent"}
    assert body["agent"]["id"] == bob.pk
    assert body["role"] == "agent"
    assert body["workspace"]["id"] == bob.workspace_id
    assert body["workspace"]["role"] == "agent"


def test_me_needs_a_token(api_client: APIClient) -> None:
    assert api_client.get("/v1/auth/me").status_code == 401


def test_a_role_change_applies_to_existing_tokens(client_for: Any, bob: Agent) -> None:
    client = client_for(bob)
    Agent.objects.filter(pk=bob.pk).update(role=AgentRole.ADMIN)

    assert client.get("/v1/auth/me").json()["role"] == "admin"


# --- Switching workspace -------------------------------------------------------------------


def test_switch_workspace_issues_a_pair_for_another_membership(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    in_b = AgentFactory(workspace=workspace_b, user=alice.user, role=AgentRole.LIGHT)

    response = client_for(alice).post(
        "/v1/auth/switch-workspace", {"workspace_id": workspace_b.pk}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["agent"]["id"], body["workspace"]["role"]) == (in_b.pk, "light")
    me = bearer(body["access"]).get("/v1/auth/me").json()
    assert me["workspace"]["id"] == workspace_b.pk
    alice.user.refresh_from_db()
    assert alice.user.last_workspace_id == workspace_b.pk


def test_charlie_gets_404_switching_into_workspace_a(
    client_for: Any, charlie: Agent, workspace_a: Workspace
) -> None:
    response = client_for(charlie).post(
        "/v1/auth/switch-workspace", {"workspace_id": workspace_a.pk}, format="json"
    )

    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_switching_into_a_deactivated_membership_is_a_404(
    client_for: Any, alice: Agent, workspace_b: Workspace
) -> None:
    AgentFactory(workspace=workspace_b, user=alice.user, is_active=False)

    response = client_for(alice).post(
        "/v1/auth/switch-workspace", {"workspace_id": workspace_b.pk}, format="json"
    )

    assert response.status_code == 404


def test_switch_workspace_needs_a_token_and_an_id(
    api_client: APIClient, client_for: Any, alice: Agent
) -> None:
    anonymous = api_client.post("/v1/auth/switch-workspace", {"workspace_id": 1}, format="json")
    invalid = client_for(alice).post(
        "/v1/auth/switch-workspace", {"workspace_id": "b"}, format="json"
    )

    assert anonymous.status_code == 401
    assert invalid.status_code == 400
    assert list(error(invalid)["fields"]) == ["workspace_id"]


# --- Password reset ------------------------------------------------------------------------


def request_reset(client: APIClient, email: str, capture: Any) -> Any:
    with capture(execute=True):
        return client.post("/v1/auth/password-reset", {"email": email}, format="json")


def test_password_reset_answers_the_same_for_known_and_unknown_addresses(
    api_client: APIClient, alice: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    known = request_reset(api_client, "alice@a.test", django_capture_on_commit_callbacks)
    unknown = request_reset(api_client, "nobody@a.test", django_capture_on_commit_callbacks)

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    (message,) = mail.outbox
    assert message.to == ["alice@a.test"]
    assert "/password-reset/confirm?token=" in message.body


def test_a_reset_token_sets_the_password_once(
    api_client: APIClient, alice: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    old_session = issue_tokens(alice)
    request_reset(api_client, "alice@a.test", django_capture_on_commit_callbacks)
    token = token_in(mail.outbox[0])
    body = {"token": token, "password": "a brand new passphrase"}

    first = api_client.post("/v1/auth/password-reset/confirm", body, format="json")
    again = api_client.post(
        "/v1/auth/password-reset/confirm",
        {**body, "password": "yet another passphrase"},
        format="json",
    )

    assert first.status_code == 204
    assert again.status_code == 400
    assert error(again)["code"] == "invalid_token"
    assert list(error(again)["fields"]) == ["token"]
    assert login(api_client, "alice@a.test", "a brand new passphrase").status_code == 200
    assert login(api_client, "alice@a.test", PASSWORD).status_code == 401
    # Every earlier session is signed out.
    stale = api_client.post("/v1/auth/refresh", {"refresh": old_session["refresh"]}, format="json")
    assert stale.status_code == 401


def test_a_reset_token_expires(
    api_client: APIClient,
    alice: Agent,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = services.password_reset_token(alice.user)
    later = PasswordResetTokenGenerator()._now() + timedelta(
        seconds=settings.PASSWORD_RESET_TIMEOUT + 1
    )
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)

    response = api_client.post(
        "/v1/auth/password-reset/confirm",
        {"token": token, "password": "a brand new passphrase"},
        format="json",
    )

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_token"


def test_a_reset_applies_the_password_validators(api_client: APIClient, alice: Agent) -> None:
    token = services.password_reset_token(alice.user)

    response = api_client.post(
        "/v1/auth/password-reset/confirm", {"token": token, "password": "alice"}, format="json"
    )

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_password"
    alice.user.refresh_from_db()
    assert alice.user.check_password(PASSWORD)


@pytest.mark.parametrize("token", ["garbage", "MQ.abc-def", "", "Zm9v.x"])
def test_a_malformed_reset_token_is_a_400(api_client: APIClient, token: str) -> None:
    response = api_client.post(
        "/v1/auth/password-reset/confirm",
        {"token": token, "password": "a brand new passphrase"},
        format="json",
    )

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["token"]


# --- Accepting invitations -----------------------------------------------------------------


def invite(agent: Agent, email: str, **kwargs: Any) -> str:
    _, token = services.invitation_create(
        workspace=agent.workspace, actor=agent, email=email, **kwargs
    )
    return token


def accept(client: APIClient, token: str, **kwargs: Any) -> Any:
    return client.post("/v1/auth/accept-invite", {"token": token, **kwargs}, format="json")


def test_a_new_user_accepts_with_a_name_and_password(
    api_client: APIClient, alice: Agent, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a)
    token = invite(alice, "newbie@a.test", role=AgentRole.LIGHT, team_ids=[team.pk])

    response = accept(api_client, token, name="New Bie", password="a long unusual passphrase")

    assert response.status_code == 200
    body = response.json()
    assert body["agent"]["role"] == "light"
    assert body["workspace"]["id"] == workspace_a.pk
    assert bearer(body["access"]).get("/v1/auth/me").status_code == 200
    agent = Agent.objects.get(pk=body["agent"]["id"])
    assert agent.user.name == "New Bie"
    assert TeamMembership.objects.filter(team=team, agent=agent).exists()
    assert login(api_client, "newbie@a.test", "a long unusual passphrase").status_code == 200


def test_an_invitation_works_once(api_client: APIClient, alice: Agent) -> None:
    token = invite(alice, "newbie@a.test")
    accept(api_client, token, name="New Bie", password="a long unusual passphrase")

    again = accept(api_client, token, name="Someone", password="another long passphrase")

    assert again.status_code == 400
    assert error(again)["code"] == "invalid_token"


def test_an_invitation_expires(api_client: APIClient, alice: Agent) -> None:
    token = invite(alice, "newbie@a.test")
    Invitation.objects.update(expires_at=Invitation.objects.get().created_at)

    response = accept(api_client, token, name="New Bie", password="a long unusual passphrase")

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_token"
    assert not User.objects.filter(email="newbie@a.test").exists()


def test_an_existing_user_just_gains_the_membership(
    api_client: APIClient, alice: Agent, charlie: Agent
) -> None:
    token = invite(alice, "charlie@b.test")

    response = accept(api_client, token, name="Mallory", password="an attacker's passphrase")

    assert response.status_code == 200
    body = response.json()
    assert body["access"] is None and body["refresh"] is None
    assert body["workspace"]["id"] == alice.workspace_id
    charlie.user.refresh_from_db()
    assert charlie.user.name == "Charlie Admin"
    assert charlie.user.check_password(PASSWORD)
    assert Agent.objects.filter(user=charlie.user, workspace=alice.workspace).exists()


def test_a_new_user_must_give_a_name_and_a_valid_password(
    api_client: APIClient, alice: Agent
) -> None:
    token = invite(alice, "newbie@a.test")

    no_name = accept(api_client, token, password="a long unusual passphrase")
    weak = accept(api_client, token, name="New Bie", password="123")
    ok = accept(api_client, token, name="New Bie", password="a long unusual passphrase")

    assert (no_name.status_code, list(error(no_name)["fields"])) == (400, ["name"])
    assert (weak.status_code, list(error(weak)["fields"])) == (400, ["password"])
    assert ok.status_code == 200


def test_a_new_invitation_revokes_the_earlier_link(api_client: APIClient, alice: Agent) -> None:
    first = invite(alice, "newbie@a.test")
    second = invite(alice, "newbie@a.test")

    stale = accept(api_client, first, name="N", password="a long unusual passphrase")
    fresh = accept(api_client, second, name="N", password="a long unusual passphrase")

    assert (stale.status_code, fresh.status_code) == (400, 200)


def test_accept_invite_validates_its_input(api_client: APIClient) -> None:
    response = api_client.post("/v1/auth/accept-invite", {}, format="json")

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["token"]


def test_inviting_a_member_back_restores_their_membership(
    api_client: APIClient, alice: Agent, bob: Agent
) -> None:
    Agent.objects.filter(pk=bob.pk).update(is_active=False)
    token = invite(alice, "bob@a.test")

    response = accept(api_client, token)

    assert response.status_code == 200
    bob.refresh_from_db()
    assert bob.is_active
