"""Sign in with Microsoft: the authorization URL, the token pair for a matching agent (by
object id, then verified address), accounts created only for allowed domains, bad and
replayed state, and the UI's sign-in button and session login.

Alice (alice@a.test) is workspace A's owner; the fake Microsoft tenant has accounts for
the people each test needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from enque.api.authentication import agent_for_access_token
from integrations.microsoft.callbacks import BINDING_COOKIE
from integrations.tests.fake_microsoft import FakeMicrosoft
from tickets.tests.api_support import error
from ui.session import SESSION_WORKSPACE_KEY
from workspaces.models import Agent, AgentRole, User, Workspace

pytestmark = pytest.mark.django_db

START = "/v1/auth/microsoft"
CALLBACK = "/v1/auth/microsoft/callback"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft.running(settings) as fake:
        yield fake


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def sign_in(fake: FakeMicrosoft, client: APIClient, email: str) -> Any:
    url = client.get(START).json()["authorization_url"]
    return client.get(CALLBACK, fake.consent(url, fake.users[email.lower()]))


def test_the_authorization_url_uses_pkce_and_a_bound_state(
    fake: FakeMicrosoft, api_client: APIClient
) -> None:
    response = api_client.get(START)

    assert response.status_code == 200
    body = response.json()
    query = query_of(body["authorization_url"])
    assert query["state"] == body["state"]
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["redirect_uri"] == "https://enque.test/v1/auth/microsoft/callback"
    assert set(query["scope"].split()) == {
        "https://graph.microsoft.com/User.Read",
        "openid",
        "profile",
        "offline_access",
    }
    assert response.cookies[BINDING_COOKIE]["httponly"]


def test_an_agent_signs_in_by_verified_email_and_is_linked(
    fake: FakeMicrosoft, api_client: APIClient, alice: Agent
) -> None:
    account = fake.add_user("Alice@A.test")

    response = sign_in(fake, api_client, "alice@a.test")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "agent", "workspace"}
    assert body["agent"]["id"] == alice.pk
    agent, _ = agent_for_access_token(body["access"])
    assert agent.pk == alice.pk
    alice.user.refresh_from_db()
    assert alice.user.microsoft_oid == account.oid
    assert alice.user.last_login is not None


def test_a_linked_agent_is_found_by_object_id_after_an_address_change(
    fake: FakeMicrosoft, api_client: APIClient, alice: Agent
) -> None:
    account = fake.add_user("alice.renamed@a.test")
    User.objects.filter(pk=alice.user_id).update(microsoft_oid=account.oid)

    response = sign_in(fake, api_client, "alice.renamed@a.test")

    assert response.status_code == 200
    assert response.json()["agent"]["id"] == alice.pk


def test_an_unverified_email_claim_does_not_take_over_an_account(
    fake: FakeMicrosoft, api_client: APIClient, alice: Agent
) -> None:
    # Another tenant's admin set this account's mail to Alice's address.
    fake.add_user("alice@a.test", email_verified=False, upn="mallory@evil.test")

    response = sign_in(fake, api_client, "alice@a.test")

    assert response.status_code == 403
    assert error(response)["code"] == "microsoft_signup_not_allowed"
    alice.user.refresh_from_db()
    assert alice.user.microsoft_oid == ""


def test_a_new_account_is_created_where_the_workspace_allows_the_domain(
    fake: FakeMicrosoft, api_client: APIClient, workspace_a: Workspace
) -> None:
    workspace_a.signup_domains = ["acme.test"]
    workspace_a.save(update_fields=["signup_domains"])
    account = fake.add_user("dave@acme.test", name="Dave Doe")

    response = sign_in(fake, api_client, "dave@acme.test")

    assert response.status_code == 200, response.content
    agent = Agent.objects.get(user__email="dave@acme.test")
    assert (agent.workspace, agent.role) == (workspace_a, AgentRole.AGENT)
    assert agent.user.microsoft_oid == account.oid
    assert agent.user.name == "Dave Doe"
    assert not agent.user.has_usable_password()
    assert response.json()["workspace"]["id"] == workspace_a.pk


def test_no_account_is_created_for_a_domain_no_workspace_allows(
    fake: FakeMicrosoft, api_client: APIClient, workspace_a: Workspace
) -> None:
    workspace_a.signup_domains = ["acme.test"]
    workspace_a.save(update_fields=["signup_domains"])
    fake.add_user("eve@elsewhere.test")

    response = sign_in(fake, api_client, "eve@elsewhere.test")

    assert response.status_code == 403
    assert "invite" in error(response)["message"]
    assert not User.objects.filter(email="eve@elsewhere.test").exists()


def test_a_deactivated_membership_is_not_revived(
    fake: FakeMicrosoft, api_client: APIClient, alice: Agent, bob: Agent
) -> None:
    alice.workspace.signup_domains = [bob.user.email.rpartition("@")[2]]
    alice.workspace.save(update_fields=["signup_domains"])
    Agent.objects.filter(pk=bob.pk).update(is_active=False)
    fake.add_user(bob.user.email)

    response = sign_in(fake, api_client, bob.user.email)

    assert response.status_code == 403
    assert not Agent.objects.get(pk=bob.pk).is_active


@pytest.mark.parametrize("state", ["", "forged", "x" * 300])
def test_a_bad_state_is_a_400(fake: FakeMicrosoft, api_client: APIClient, state: str) -> None:
    api_client.get(START)
    response = api_client.get(CALLBACK, {"code": "code-1", "state": state})
    assert response.status_code == 400


def test_a_replayed_state_is_a_400(
    fake: FakeMicrosoft, api_client: APIClient, alice: Agent
) -> None:
    fake.add_user("alice@a.test")
    url = api_client.get(START).json()["authorization_url"]
    answer = fake.consent(url, fake.users["alice@a.test"])
    cookie = api_client.cookies[BINDING_COOKIE].value
    assert api_client.get(CALLBACK, answer).status_code == 200

    api_client.cookies[BINDING_COOKIE] = cookie
    replay = api_client.get(CALLBACK, answer)

    assert replay.status_code == 400
    assert error(replay)["code"] == "invalid_state"


def test_a_state_started_in_another_browser_is_a_400(fake: FakeMicrosoft, alice: Agent) -> None:
    fake.add_user("alice@a.test")
    victim, attacker = APIClient(), APIClient()
    url = attacker.get(START).json()["authorization_url"]
    answer = fake.consent(url, fake.users["alice@a.test"])

    response = victim.get(CALLBACK, answer)

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_state"


def test_an_expired_state_is_a_400(
    fake: FakeMicrosoft, api_client: APIClient, alice: Agent
) -> None:
    from django.core.cache import cache

    from integrations.microsoft.oauth import _cache_key

    fake.add_user("alice@a.test")
    url = api_client.get(START).json()["authorization_url"]
    answer = fake.consent(url, fake.users["alice@a.test"])
    assert cache.delete(_cache_key(answer["state"]))  # what the TTL does

    assert api_client.get(CALLBACK, answer).status_code == 400


def test_without_a_microsoft_app_sign_in_is_a_404(api_client: APIClient, settings: Any) -> None:
    settings.MICROSOFT_CLIENT_ID = ""
    response = api_client.get(START)
    assert response.status_code == 404
    assert error(response)["code"] == "microsoft_not_configured"


# --- the UI ---------------------------------------------------------------------------------


def test_the_login_page_offers_microsoft_only_when_configured(
    client: Client, settings: Any
) -> None:
    settings.MICROSOFT_CLIENT_ID = ""
    assert b"Sign in with Microsoft" not in client.get(reverse("ui:login")).content
    settings.MICROSOFT_CLIENT_ID = "app"
    settings.MICROSOFT_CLIENT_SECRET = "secret"
    page = client.get(reverse("ui:login")).content.decode()
    assert "Sign in with Microsoft" in page
    assert reverse("ui:microsoft_login") in page


def test_the_ui_signs_in_with_microsoft(fake: FakeMicrosoft, client: Client, alice: Agent) -> None:
    fake.add_user("alice@a.test")
    start = client.get(reverse("ui:microsoft_login"), {"next": "/customers"})
    assert start.status_code == 302
    assert start["Location"].startswith("https://login.microsoftonline.com/organizations/")
    assert query_of(start["Location"])["redirect_uri"] == (
        "https://enque.test/login/microsoft/callback"
    )

    done = client.get(
        reverse("ui:microsoft_login_callback"),
        fake.consent(start["Location"], fake.users["alice@a.test"]),
    )

    assert done.status_code == 302 and done["Location"] == "/customers"
    assert client.session[SESSION_WORKSPACE_KEY] == alice.workspace_id
    assert int(client.session["_auth_user_id"]) == alice.user_id
    assert client.get(reverse("ui:inbox")).status_code == 200


def test_the_ui_refuses_a_replayed_callback(
    fake: FakeMicrosoft, client: Client, alice: Agent
) -> None:
    fake.add_user("alice@a.test")
    start = client.get(reverse("ui:microsoft_login"))
    answer = fake.consent(start["Location"], fake.users["alice@a.test"])
    client.get(reverse("ui:microsoft_login_callback"), answer)
    client.logout()

    again = client.get(reverse("ui:microsoft_login_callback"), answer, follow=True)

    assert "_auth_user_id" not in client.session
    assert "invalid, expired or was already used" in again.content.decode()


def test_the_ui_explains_a_refused_sign_in(fake: FakeMicrosoft, client: Client) -> None:
    fake.add_user("stranger@nowhere.test")
    start = client.get(reverse("ui:microsoft_login"))
    answer = fake.consent(start["Location"], fake.users["stranger@nowhere.test"])

    page = client.get(reverse("ui:microsoft_login_callback"), answer, follow=True)

    assert "_auth_user_id" not in client.session
    assert "Ask an admin of your workspace to invite you" in page.content.decode()


def test_sign_in_counts_against_the_auth_rate_limit(
    fake: FakeMicrosoft, api_client: APIClient, settings: Any
) -> None:
    settings.RATELIMIT_AUTH = "2/15m"
    assert [api_client.get(START).status_code for _ in range(3)] == [200, 200, 429]
