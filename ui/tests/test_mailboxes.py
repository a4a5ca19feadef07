"""Settings → Mailboxes: the list with status and errors, adding an IMAP mailbox (signed in
against the local IMAP server before it is saved), editing, deleting, "Sync now", the
Microsoft 365 connect form, and the page being admins' only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from enque.tests.factories import CategoryFactory, TeamFactory
from integrations import services, tasks
from integrations.models import MailboxConnection, MicrosoftIntegration, SyncStatus
from integrations.tests.imap_server import ImapTestServer
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

USER, SECRET = "help@acme.test", "imap-s3cret-value"


@pytest.fixture(autouse=True)
def mail_settings(settings: Any) -> None:
    settings.MAIL_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def server(settings: Any) -> Iterator[ImapTestServer]:
    with ImapTestServer(users={USER: SECRET}, security="starttls") as imap:
        settings.MAIL_TLS_CA_FILE = imap.ca_file
        yield imap


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(tasks.sync_mailbox_task, "delay", lambda pk: sent.append(pk))
    return sent


def form_data(server: ImapTestServer, **extra: Any) -> dict[str, Any]:
    return {
        "email_address": USER,
        "display_name": "Acme Help",
        "imap_host": "localhost",
        "imap_port": server.port,
        "imap_security": "starttls",
        "imap_username": USER,
        "imap_password": SECRET,
        "imap_folder": "INBOX",
        "smtp_host": "",
        "smtp_port": "",
        "smtp_security": "starttls",
        "smtp_username": "",
        "smtp_password": "",
        "default_priority": "normal",
        "is_active": "on",
        **extra,
    }


def imap_mailbox(alice: Agent, address: str = USER, **fields: Any) -> MailboxConnection:
    mailbox = services.mailbox_create_imap(
        workspace=alice.workspace,
        actor=alice,
        email_address=address,
        imap_host="imap.acme.test",
        imap_port=993,
        imap_username=address,
        imap_password=SECRET,
    )
    if fields:
        MailboxConnection.objects.filter(pk=mailbox.pk).update(**fields)
        mailbox.refresh_from_db()
    return mailbox


def test_the_list_shows_status_errors_and_a_reconnect_button(
    alice_client: Client, alice: Agent
) -> None:
    imap_mailbox(alice, "ok@acme.test", sync_status=SyncStatus.OK, last_synced_at=timezone.now())
    broken = imap_mailbox(
        alice,
        "broken@acme.test",
        sync_status=SyncStatus.RECONNECT_NEEDED,
        last_error="The IMAP server refused the login for broken@acme.test.",
        last_error_at=timezone.now(),
    )
    MailboxConnection.objects.create(
        workspace=alice.workspace,
        provider="microsoft",
        email_address="m365@acme.test",
        sync_status=SyncStatus.RECONNECT_NEEDED,
        last_error="The Microsoft 365 grant was revoked.",
    )

    response = alice_client.get(reverse("ui:settings_mailboxes"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "ok@acme.test" in html and "broken@acme.test" in html and "m365@acme.test" in html
    assert html.count("Reconnect needed") == 2
    assert "The IMAP server refused the login for broken@acme.test." in html
    assert "The Microsoft 365 grant was revoked." in html
    # IMAP: reconnect is entering the password again; Microsoft 365: the OAuth flow.
    assert f'href="{reverse("ui:settings_mailbox", args=[broken.pk])}#id_imap_password"' in html
    assert f'action="{reverse("ui:microsoft_connect")}"' in html
    assert 'aria-label="Sync ok@acme.test now"' in html
    assert 'aria-label="Sync broken@acme.test now"' not in html
    assert SECRET not in html


def test_the_list_query_count_does_not_grow(alice_client: Client, alice: Agent) -> None:
    team = TeamFactory(workspace=alice.workspace)
    imap_mailbox(alice, "one@acme.test", default_team_id=team.pk)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice_client.get(reverse("ui:settings_mailboxes")).status_code == 200
        return len(captured.captured_queries)

    one = count()
    for n in range(4):
        imap_mailbox(
            alice,
            f"box{n}@acme.test",
            default_team_id=team.pk,
            default_category_id=CategoryFactory(workspace=alice.workspace).pk,
        )
    assert count() == one


def test_an_empty_list_says_what_to_do(alice_client: Client) -> None:
    response = alice_client.get(reverse("ui:settings_mailboxes"))
    assert b"No mailboxes yet" in response.content
    assert b"Add IMAP/SMTP mailbox" in response.content


def test_adding_a_mailbox_signs_in_first(
    alice_client: Client, alice: Agent, server: ImapTestServer
) -> None:
    url = reverse("ui:settings_mailbox_new")
    assert alice_client.get(url).status_code == 200

    # A wrong password: said on the password field, nothing saved, the rest kept.
    response = alice_client.post(url, form_data(server, imap_password="wr0ng-pa55"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_imap_password_error"' in html
    assert "Could not sign in to the IMAP server" in html
    assert 'aria-describedby="id_imap_password_error"' in html
    assert f'value="{server.port}"' in html
    assert "wr0ng-pa55" not in html  # passwords are never sent back
    assert not MailboxConnection.objects.exists()

    response = alice_client.post(url, form_data(server))
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:settings_mailboxes")
    mailbox = MailboxConnection.objects.get()
    assert (mailbox.email_address, mailbox.imap_password, mailbox.display_name) == (
        USER,
        SECRET,
        "Acme Help",
    )
    page = alice_client.get(response["Location"]).content.decode()
    assert f"Added {USER}." in page


def test_missing_and_invalid_fields_are_shown_inline(alice_client: Client) -> None:
    response = alice_client.post(
        reverse("ui:settings_mailbox_new"),
        {"email_address": "nope", "imap_port": "70000", "imap_security": "ssl"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("email_address", "imap_host", "imap_port", "imap_username", "imap_password"):
        assert f'id="id_{field}_error"' in html, field
        assert 'aria-invalid="true"' in html
    assert "Ensure this value is less than or equal to 65535." in html
    assert not MailboxConnection.objects.exists()


def test_a_foreign_team_is_not_a_choice(alice_client: Client, charlie: Agent) -> None:
    foreign = TeamFactory(workspace=charlie.workspace, name="Bravo team")
    response = alice_client.post(reverse("ui:settings_mailbox_new"), {"default_team": foreign.pk})
    assert response.status_code == 400
    assert b'id="id_default_team_error"' in response.content
    assert b"Bravo team" not in response.content


def test_editing_keeps_the_password_unless_a_new_one_is_typed(
    alice_client: Client, alice: Agent, server: ImapTestServer
) -> None:
    mailbox = imap_mailbox(alice, sync_status=SyncStatus.RECONNECT_NEEDED, last_error="Refused")
    url = reverse("ui:settings_mailbox", args=[mailbox.pk])
    page = alice_client.get(url).content.decode()
    assert "Reconnect needed:" in page and "Refused" in page
    assert SECRET not in page
    assert "Leave empty to keep the saved password." in page

    # Only the defaults change: no sign-in needed, the password stays.
    data = form_data(server, imap_host="imap.acme.test", imap_port=993, imap_security="ssl")
    data.update(imap_password="", default_priority="high")
    response = alice_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    mailbox.refresh_from_db()
    assert (mailbox.imap_password, mailbox.default_priority) == (SECRET, "high")
    assert mailbox.sync_status == SyncStatus.RECONNECT_NEEDED

    # New connection settings are tried first; then the reconnect state is cleared.
    bad = form_data(server, imap_password="still-wrong")
    assert alice_client.post(url, bad).status_code == 400
    mailbox.refresh_from_db()
    assert mailbox.imap_host == "imap.acme.test"
    assert alice_client.post(url, form_data(server)).status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.imap_host, mailbox.sync_status, mailbox.last_error) == (
        "localhost",
        SyncStatus.IDLE,
        "",
    )


def test_a_microsoft_mailbox_edits_only_its_defaults(alice_client: Client, alice: Agent) -> None:
    mailbox = MailboxConnection.objects.create(
        workspace=alice.workspace, provider="microsoft", email_address="m365@acme.test"
    )
    url = reverse("ui:settings_mailbox", args=[mailbox.pk])
    page = alice_client.get(url).content.decode()
    assert "imap_host" not in page
    response = alice_client.post(
        url, {"display_name": "Sales", "default_priority": "low", "is_active": ""}
    )
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.display_name, mailbox.default_priority, mailbox.is_active) == (
        "Sales",
        "low",
        False,
    )


def test_sync_now_queues_on_commit_and_refuses_a_mailbox_to_reconnect(
    alice_client: Client,
    alice: Agent,
    queued: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    mailbox = imap_mailbox(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("ui:settings_mailbox_sync", args=[mailbox.pk]))
    assert response.status_code == 302
    assert queued == [mailbox.pk]
    assert f"Syncing {USER}." in alice_client.get(response["Location"]).content.decode()

    MailboxConnection.objects.filter(pk=mailbox.pk).update(sync_status=SyncStatus.RECONNECT_NEEDED)
    response = alice_client.post(reverse("ui:settings_mailbox_sync", args=[mailbox.pk]))
    page = alice_client.get(response["Location"]).content.decode()
    assert "must be reconnected first" in page
    assert queued == [mailbox.pk]
    assert (
        alice_client.get(reverse("ui:settings_mailbox_sync", args=[mailbox.pk])).status_code == 405
    )


def test_deleting_a_mailbox(alice_client: Client, alice: Agent) -> None:
    mailbox = imap_mailbox(alice)
    page = alice_client.get(reverse("ui:settings_mailbox", args=[mailbox.pk])).content.decode()
    assert 'data-confirm="Delete help@acme.test?' in page
    response = alice_client.post(reverse("ui:settings_mailbox_delete", args=[mailbox.pk]))
    assert response.status_code == 302
    assert not MailboxConnection.objects.exists()


def test_the_microsoft_connect_form(alice_client: Client, alice: Agent, charlie: Agent) -> None:
    own = MicrosoftIntegration.objects.create(
        workspace=alice.workspace, name="Acme app", client_id="app-a"
    )
    MicrosoftIntegration.objects.create(
        workspace=charlie.workspace, name="Bravo app", client_id="app-b"
    )
    html = alice_client.get(reverse("ui:settings_mailboxes")).content.decode()
    assert f'action="{reverse("ui:microsoft_connect")}"' in html
    assert 'name="email_address"' in html and 'name="is_shared_mailbox"' in html
    assert '<option value="" selected>Deployment default</option>' in html
    assert f'<option value="{own.pk}">Acme app</option>' in html
    assert "Bravo app" not in html
    assert '<label for="id_ms_email_address">Mailbox address</label>' in html


def test_agents_do_not_find_the_pages(bob_client: Client, alice: Agent) -> None:
    mailbox = imap_mailbox(alice)
    for name, args, method in [
        ("ui:settings_mailboxes", [], "get"),
        ("ui:settings_mailbox_new", [], "get"),
        ("ui:settings_mailbox_new", [], "post"),
        ("ui:settings_mailbox", [mailbox.pk], "get"),
        ("ui:settings_mailbox", [mailbox.pk], "post"),
        ("ui:settings_mailbox_sync", [mailbox.pk], "post"),
        ("ui:settings_mailbox_delete", [mailbox.pk], "post"),
    ]:
        response = getattr(bob_client, method)(reverse(name, args=args))
        assert response.status_code == 404, (name, method)
    assert MailboxConnection.objects.filter(pk=mailbox.pk).exists()


def test_charlie_cannot_reach_workspace_as_mailbox(
    charlie_client: Client, alice: Agent, queued: list[int]
) -> None:
    mailbox = imap_mailbox(alice)
    assert USER.encode() not in charlie_client.get(reverse("ui:settings_mailboxes")).content
    for name, method in [
        ("ui:settings_mailbox", "get"),
        ("ui:settings_mailbox", "post"),
        ("ui:settings_mailbox_sync", "post"),
        ("ui:settings_mailbox_delete", "post"),
    ]:
        response = getattr(charlie_client, method)(reverse(name, args=[mailbox.pk]))
        assert response.status_code == 404
    assert MailboxConnection.objects.filter(pk=mailbox.pk, display_name="").exists()
    assert queued == []
