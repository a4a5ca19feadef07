"""Connecting a Microsoft 365 mailbox: the consent URL (PKCE, scopes, state), the callback,
bad and replayed state, the binding to the admin's browser, workspace apps, reconnecting a
"reconnect needed" mailbox, and the same through the settings UI.

Alice is workspace A's admin, Bob an agent there, Charlie workspace B's admin.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.microsoft import oauth
from integrations.microsoft.callbacks import BINDING_COOKIE
from integrations.microsoft.config import MAIL_SCOPES, default_app
from integrations.models import (
    EmailSyncConfig,
    MailboxConnection,
    MicrosoftIntegration,
    MicrosoftToken,
    SyncStatus,
)
from integrations.tests.fake_microsoft import CLIENT_ID, FakeMicrosoft
from tickets.tests.api_support import error
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

AUTHORIZE = "/v1/mailboxes/microsoft/authorize"
CALLBACK = "/v1/mailboxes/microsoft/callback"
SUPPORT = "support@acme.test"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft.running(settings) as fake:
        fake.add_user(SUPPORT)
        yield fake


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize(client: APIClient, **params: str) -> Any:
    return client.get(AUTHORIZE, {"email_address": SUPPORT, **params})


def test_the_authorize_url_asks_for_mail_scopes_with_pkce_and_a_state(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    response = authorize(client_for(alice))

    assert response.status_code == 200, response.content
    body = response.json()
    url = body["authorization_url"]
    assert url.startswith("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?")
    query = query_of(url)
    assert query["client_id"] == CLIENT_ID
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == "https://enque.test/v1/mailboxes/microsoft/callback"
    assert query["state"] == body["state"]
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256
    assert query["login_hint"] == SUPPORT
    assert set(query["scope"].split()) == {
        "https://graph.microsoft.com/Mail.ReadWrite",
        "https://graph.microsoft.com/Mail.Send",
        "offline_access",
        "openid",
        "profile",
    }
    cookie = response.cookies[BINDING_COOKIE]
    assert cookie["httponly"] and cookie["path"] == CALLBACK


def test_the_callback_connects_the_mailbox_with_an_encrypted_token_cache(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    client = client_for(alice)
    url = authorize(client).json()["authorization_url"]

    response = client.get(CALLBACK, fake.consent(url, fake.users[SUPPORT]))

    assert response.status_code == 200, response.content
    mailbox = MailboxConnection.objects.get(workspace=alice.workspace)
    assert response.json() == {
        "id": mailbox.pk,
        "email_address": SUPPORT,
        "provider": "microsoft",
        "is_shared_mailbox": False,
        "sync_status": "idle",
    }
    token = MicrosoftToken.objects.get(mailbox=mailbox)
    user = fake.users[SUPPORT]
    assert token.home_account_id == f"{user.oid}.{user.tenant}"
    assert "Mail.Send" in token.scopes
    cache = msal.SerializableTokenCache()
    cache.deserialize(token.token_cache)
    assert [a["username"] for a in cache.search(msal.TokenCache.CredentialType.ACCOUNT)] == [
        SUPPORT
    ]
    assert EmailSyncConfig.objects.filter(mailbox=mailbox, delta_link="").exists()
    # PKCE: the token request carried the verifier of the URL's challenge.
    (exchange,) = [r for r in fake.token_requests if r["grant_type"] == "authorization_code"]
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(exchange["code_verifier"].encode()).digest()
    ).rstrip(b"=")
    assert challenge.decode() == query_of(url)["code_challenge"]


def test_the_callback_works_without_a_token_in_the_browser_that_started_it(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    client = client_for(alice)
    url = authorize(client).json()["authorization_url"]
    client.credentials()  # the browser Microsoft redirects has the cookie, not the JWT

    response = client.get(CALLBACK, fake.consent(url, fake.users[SUPPORT]))

    assert response.status_code == 200, response.content
    assert MailboxConnection.objects.filter(workspace=alice.workspace).count() == 1


@pytest.mark.parametrize("state", ["", "not-a-state", "x" * 300])
def test_a_bad_state_is_a_400(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient], state: str
) -> None:
    client = client_for(alice)
    authorize(client)
    response = client.get(CALLBACK, {"code": "code-1", "state": state})
    assert response.status_code == 400
    assert not MailboxConnection.objects.exists()


def test_a_replayed_state_is_a_400(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    client = client_for(alice)
    url = authorize(client).json()["authorization_url"]
    answer = fake.consent(url, fake.users[SUPPORT])
    cookie = client.cookies[BINDING_COOKIE].value
    assert client.get(CALLBACK, answer).status_code == 200

    client.cookies[BINDING_COOKIE] = cookie
    replay = client.get(CALLBACK, answer)

    assert replay.status_code == 400
    assert error(replay)["code"] == "invalid_state"


def test_a_state_from_another_browser_is_refused(
    fake: FakeMicrosoft,
    alice: Agent,
    client_for: Callable[[Agent], APIClient],
    api_client: APIClient,
) -> None:
    url = authorize(client_for(alice)).json()["authorization_url"]
    answer = fake.consent(url, fake.users[SUPPORT])

    response = api_client.get(CALLBACK, answer)  # no binding cookie

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_state"
    assert not MailboxConnection.objects.exists()


def test_a_declined_consent_is_a_clear_400(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    client = client_for(alice)
    state = authorize(client).json()["state"]
    response = client.get(
        CALLBACK,
        {"state": state, "error": "access_denied", "error_description": "The user declined."},
    )
    assert response.status_code == 400
    assert error(response)["code"] == "microsoft_error"
    assert "declined" in error(response)["message"]


def test_only_admins_connect_mailboxes(
    fake: FakeMicrosoft, bob: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    response = authorize(client_for(bob))
    assert response.status_code == 403
    assert error(response)["code"] == "admin_required"


def test_the_email_address_is_validated(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    response = client_for(alice).get(AUTHORIZE, {"email_address": "not an address"})
    assert response.status_code == 400
    assert "email_address" in error(response)["fields"]


def test_a_workspace_app_is_used_and_another_workspaces_app_is_refused(
    fake: FakeMicrosoft,
    alice: Agent,
    charlie: Agent,
    client_for: Callable[[Agent], APIClient],
) -> None:
    own = MicrosoftIntegration.objects.create(
        workspace=alice.workspace, client_id=CLIENT_ID, client_secret=fake.client_secret
    )
    theirs = MicrosoftIntegration.objects.create(
        workspace=charlie.workspace, client_id="charlie-app", client_secret="x"
    )
    client = client_for(alice)

    foreign = authorize(client, integration=str(theirs.pk))
    assert foreign.status_code == 400
    assert error(foreign)["code"] == "invalid_reference"
    assert list(error(foreign)["fields"]) == ["integration"]

    url = authorize(client, integration=str(own.pk)).json()["authorization_url"]
    assert client.get(CALLBACK, fake.consent(url, fake.users[SUPPORT])).status_code == 200
    mailbox = MailboxConnection.objects.get(workspace=alice.workspace)
    assert mailbox.microsoft_integration == own


def test_reconnecting_clears_reconnect_needed(
    fake: FakeMicrosoft, alice: Agent, client_for: Callable[[Agent], APIClient]
) -> None:
    mailbox = MailboxConnection.objects.create(
        workspace=alice.workspace,
        provider="microsoft",
        email_address=SUPPORT,
        sync_status=SyncStatus.RECONNECT_NEEDED,
        last_error="Microsoft refused the mailbox's sign-in (invalid_grant)",
    )
    client = client_for(alice)
    url = authorize(client).json()["authorization_url"]

    assert client.get(CALLBACK, fake.consent(url, fake.users[SUPPORT])).status_code == 200

    mailbox.refresh_from_db()
    assert (mailbox.sync_status, mailbox.last_error) == (SyncStatus.IDLE, "")
    assert MailboxConnection.objects.filter(workspace=alice.workspace).count() == 1
    assert MicrosoftToken.objects.filter(mailbox=mailbox).count() == 1


def test_without_a_microsoft_app_the_authorize_call_says_so(
    alice: Agent, client_for: Callable[[Agent], APIClient], settings: Any
) -> None:
    settings.MICROSOFT_CLIENT_ID = ""
    response = authorize(client_for(alice))
    assert response.status_code == 400
    assert error(response)["code"] == "microsoft_not_configured"


# --- the settings UI ------------------------------------------------------------------------


def ui_client(agent: Agent) -> Client:
    client = Client()
    client.force_login(agent.user)
    return client


def test_the_ui_connects_a_mailbox_and_reports_it(fake: FakeMicrosoft, alice: Agent) -> None:
    client = ui_client(alice)
    start = client.post(
        reverse("ui:microsoft_connect"), {"email_address": SUPPORT, "is_shared_mailbox": "on"}
    )
    assert start.status_code == 302
    assert start["Location"].startswith("https://login.microsoftonline.com/")
    assert "login_hint" not in query_of(start["Location"])  # a delegate signs in

    done = client.get(
        reverse("ui:microsoft_connect_callback"),
        fake.consent(start["Location"], fake.users[SUPPORT]),
        follow=True,
    )

    assert done.status_code == 200
    mailbox = MailboxConnection.objects.get(workspace=alice.workspace)
    assert mailbox.is_shared_mailbox
    assert f"{SUPPORT} is connected" in done.content.decode()


def test_the_ui_callback_refuses_a_replay_with_a_message(fake: FakeMicrosoft, alice: Agent) -> None:
    client = ui_client(alice)
    start = client.post(reverse("ui:microsoft_connect"), {"email_address": SUPPORT})
    answer = fake.consent(start["Location"], fake.users[SUPPORT])
    client.get(reverse("ui:microsoft_connect_callback"), answer)
    MailboxConnection.objects.all().delete()

    again = client.get(reverse("ui:microsoft_connect_callback"), answer, follow=True)

    assert "was not connected" in again.content.decode()
    assert not MailboxConnection.objects.exists()


def test_the_ui_connect_is_for_admins_only(fake: FakeMicrosoft, bob: Agent) -> None:
    response = ui_client(bob).post(reverse("ui:microsoft_connect"), {"email_address": SUPPORT})
    assert response.status_code == 404


def test_the_ui_reports_a_bad_address(fake: FakeMicrosoft, alice: Agent) -> None:
    response = ui_client(alice).post(
        reverse("ui:microsoft_connect"), {"email_address": "nope"}, follow=True
    )
    assert "Could not connect the mailbox" in response.content.decode()


def test_racing_callbacks_consume_a_state_once(fake: FakeMicrosoft) -> None:
    binding = oauth.new_binding()
    _url, state = oauth.start(
        purpose=oauth.MAILBOX,
        credentials=default_app(),
        scopes=MAIL_SCOPES,
        redirect_uri="https://enque.test/v1/mailboxes/microsoft/callback",
        binding=binding,
    )
    barrier = threading.Barrier(8)
    results: list[str] = []

    def consume() -> None:
        barrier.wait()
        try:
            oauth.consume(state=state, purpose=oauth.MAILBOX, binding=binding)
        except oauth.InvalidState:
            results.append("refused")
        else:
            results.append("taken")

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["refused"] * 7 + ["taken"]


def test_a_flow_started_for_sign_in_cannot_connect_a_mailbox(fake: FakeMicrosoft) -> None:
    binding = oauth.new_binding()
    _url, state = oauth.start(
        purpose=oauth.SIGNIN,
        credentials=default_app(),
        scopes=MAIL_SCOPES,
        redirect_uri="https://enque.test/v1/auth/microsoft/callback",
        binding=binding,
    )
    with pytest.raises(oauth.InvalidState):
        oauth.consume(state=state, purpose=oauth.MAILBOX, binding=binding)
