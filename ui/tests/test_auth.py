"""Signing in and out, the workspace switcher, password reset, and login on every page."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from enque.tests.factories import AgentFactory, UserFactory
from ui.session import SESSION_WORKSPACE_KEY
from workspaces.models import Agent, AgentRole, Workspace
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def login(client: Client, email: str, password: str = PASSWORD, **extra: str):
    return client.post(reverse("ui:login"), {"email": email, "password": password, **extra})


def test_the_login_page_renders(client: Client) -> None:
    response = client.get(reverse("ui:login"))
    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert b"Forgot your password?" in response.content


def test_an_agent_signs_in_and_lands_in_their_workspace(client: Client, alice: Agent) -> None:
    response = login(client, "alice@a.test")
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:inbox")
    assert client.session[SESSION_WORKSPACE_KEY] == alice.workspace_id
    alice.user.refresh_from_db()
    assert alice.user.last_workspace_id == alice.workspace_id
    assert client.get(reverse("ui:inbox")).status_code == 200


def test_sign_in_is_case_insensitive_on_the_email(client: Client, alice: Agent) -> None:
    assert login(client, "ALICE@A.test").status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: Client, alice: Agent
) -> None:
    wrong = login(client, "alice@a.test", "nope")
    unknown = login(client, "nobody@a.test")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert b"Invalid email or password." in response.content
    assert SESSION_WORKSPACE_KEY not in client.session


def test_repeated_failures_lock_the_address_for_a_while(client: Client, alice: Agent) -> None:
    with override_settings(RATELIMIT_LOGIN_FAILURES="3/15m"):
        for _ in range(3):
            login(client, "alice@a.test", "nope")
        response = login(client, "alice@a.test")  # the right password, too late
    assert response.status_code == 429
    assert b"Too many sign-in attempts" in response.content


def test_only_active_agents_get_in(client: Client, alice: Agent) -> None:
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    response = login(client, "alice@a.test")
    assert response.status_code == 200
    assert b"not an active agent" in response.content
    assert "_auth_user_id" not in client.session


def test_a_user_without_membership_is_refused(client: Client) -> None:
    UserFactory(email="loner@x.test")
    response = login(client, "loner@x.test")
    assert b"not an active agent" in response.content


def test_next_is_followed_only_on_this_site(client: Client, alice: Agent) -> None:
    assert login(client, "alice@a.test", next="/customers")["Location"] == "/customers"
    client.logout()
    response = login(client, "alice@a.test", next="https://evil.example/phish")
    assert response["Location"] == reverse("ui:inbox")


def test_logout_is_a_post(alice_client: Client) -> None:
    assert alice_client.get(reverse("ui:logout")).status_code == 405
    response = alice_client.post(reverse("ui:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:login")
    assert alice_client.get(reverse("ui:inbox")).status_code == 302


def test_a_deactivated_agent_is_signed_out_at_the_next_page(
    alice_client: Client, alice: Agent
) -> None:
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    response = alice_client.get(reverse("ui:inbox"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("ui:login"))


# --- Several workspaces --------------------------------------------------------------------


@pytest.fixture
def alice_in_b(alice: Agent, workspace_b: Workspace) -> Agent:
    return AgentFactory(workspace=workspace_b, user=alice.user, role=AgentRole.AGENT)


def test_the_switcher_lists_the_users_workspaces(alice_client: Client, alice_in_b: Agent) -> None:
    page = alice_client.get(reverse("ui:inbox")).content.decode()
    assert "Acme Support" in page and "Globex Help" in page
    assert 'name="workspace"' in page


def test_switching_workspace_changes_the_session_and_the_data(
    alice_client: Client, alice_in_b: Agent, ticket_a, ticket_b
) -> None:
    assert alice_client.get(reverse("ui:ticket", args=[ticket_a.number])).status_code == 200
    response = alice_client.post(
        reverse("ui:switch_workspace"), {"workspace": alice_in_b.workspace_id}
    )
    assert response.status_code == 302
    assert alice_client.session[SESSION_WORKSPACE_KEY] == alice_in_b.workspace_id
    # Both tickets are #1 of their workspace: the same URL now shows workspace B's.
    page = alice_client.get(reverse("ui:ticket", args=[ticket_b.number])).content.decode()
    assert ticket_b.subject in page
    assert ticket_a.subject not in page


def test_switching_to_a_workspace_one_is_not_in_is_404(
    alice_client: Client, alice: Agent, workspace_b: Workspace
) -> None:
    response = alice_client.post(reverse("ui:switch_workspace"), {"workspace": workspace_b.pk})
    assert response.status_code == 404
    assert alice_client.session[SESSION_WORKSPACE_KEY] == alice.workspace_id


def test_losing_the_session_workspace_falls_back_to_another(
    alice_client: Client, alice: Agent, alice_in_b: Agent
) -> None:
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert alice_client.get(reverse("ui:inbox")).status_code == 200
    assert alice_client.session[SESSION_WORKSPACE_KEY] == alice_in_b.workspace_id


# --- Password reset ------------------------------------------------------------------------


def _reset_link() -> str:
    body = mail.outbox[-1].body
    match = re.search(r"https?://\S+/password-reset/confirm\?token=(\S+)", body)
    assert match, body
    return match.group(1)


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_password_reset_by_email(
    client: Client, alice: Agent, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ui:password_reset"), {"email": "alice@a.test"})
    assert response.status_code == 200
    assert b"Check your email" in response.content
    assert mail.outbox[-1].to == ["alice@a.test"]
    token = _reset_link()

    page = client.get(reverse("ui:password_reset_confirm"), {"token": token})
    assert page.status_code == 200
    assert b"Choose a new password" in page.content
    new = "a much better passphrase 42"
    response = client.post(
        reverse("ui:password_reset_confirm"),
        {"token": token, "password": new, "password_again": new},
    )
    assert response.status_code == 302
    assert login(client, "alice@a.test", new).status_code == 302
    # The link worked once.
    client.logout()
    again = client.post(
        reverse("ui:password_reset_confirm"),
        {"token": token, "password": new + "!", "password_again": new + "!"},
    )
    assert b"no longer works" in again.content


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_password_reset_for_an_unknown_address_answers_the_same(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ui:password_reset"), {"email": "ghost@nowhere.test"})
    assert b"Check your email" in response.content
    assert mail.outbox == []


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_a_weak_new_password_is_refused_with_the_reason(
    client: Client, alice: Agent, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("ui:password_reset"), {"email": "alice@a.test"})
    token = _reset_link()
    response = client.post(
        reverse("ui:password_reset_confirm"),
        {"token": token, "password": "123", "password_again": "123"},
    )
    assert response.status_code == 400
    assert b"too short" in response.content


# --- Every page wants a signed-in agent ----------------------------------------------------

PUBLIC = {
    "login",
    "logout",
    "password_reset",
    "password_reset_confirm",
    # Sign in with Microsoft: for visitors, like the password sign-in.
    "microsoft_login",
    "microsoft_login_callback",
}


def ui_patterns() -> list[URLPattern]:
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "ui":
            return list(entry.url_patterns)
    raise AssertionError("the ui URLs are not mounted")


def sample_url(pattern: URLPattern) -> str:
    kwargs = dict.fromkeys(pattern.pattern.converters, 1)
    return reverse(f"ui:{pattern.name}", kwargs=kwargs)


@pytest.mark.parametrize(
    "pattern", [p for p in ui_patterns() if p.name not in PUBLIC], ids=lambda p: p.name
)
def test_every_page_requires_sign_in(client: Client, pattern: URLPattern) -> None:
    assert getattr(pattern.callback, "agent_view", False), f"{pattern.name} is not an agent_view"
    url = sample_url(pattern)
    response = client.get(url)
    if response.status_code == 405:  # POST-only endpoints refuse GET before anything else
        response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("ui:login"))


def test_an_expired_session_on_an_htmx_call_redirects_the_page(client: Client) -> None:
    response = client.get(reverse("ui:inbox_counts"), HTTP_HX_REQUEST="true")
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith(reverse("ui:login"))


def test_workspace_create_gives_a_membership_that_can_sign_in(client: Client) -> None:
    owner = UserFactory(email="owner@c.test")
    workspace_create(name="Initech", owner=owner)
    assert login(client, "owner@c.test").status_code == 302
