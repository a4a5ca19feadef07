"""``/v1/mailboxes``: list and read (any member, no secrets), add an IMAP/SMTP mailbox with
validation (admins), change, delete, sync now (202 / 409), test the connection, and
Charlie (workspace B) getting 404 for A's mailbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from enque.tests.factories import CategoryFactory, TeamFactory
from integrations import tasks
from integrations.models import EmailSyncConfig, MailboxConnection, SyncStatus
from integrations.tests.imap_server import ImapTestServer
from tickets.tests.api_support import error
from workspaces.models import Agent, AgentRole

pytestmark = pytest.mark.django_db

Client = Callable[[Agent], APIClient]
SECRET = "imap-s3cret-value"


@pytest.fixture(autouse=True)
def api_settings(settings: Any) -> None:
    settings.RATELIMIT_ENABLE = False
    settings.MAIL_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The syncs sent to the broker (the worker is not under test here)."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.sync_mailbox_task, "delay", lambda pk: sent.append(pk))
    return sent


@pytest.fixture
def server(settings: Any) -> Iterator[ImapTestServer]:
    with ImapTestServer(users={"help@acme.test": SECRET}, security="ssl") as imap:
        settings.MAIL_TLS_CA_FILE = imap.ca_file
        yield imap


def body(**extra: Any) -> dict[str, Any]:
    return {
        "email_address": "Help@Acme.test",
        "imap_host": "imap.acme.test",
        "imap_port": 993,
        "imap_security": "ssl",
        "imap_username": "help@acme.test",
        "imap_password": SECRET,
        "smtp_host": "smtp.acme.test",
        "smtp_port": 587,
        "smtp_username": "help@acme.test",
        "smtp_password": "smtp-s3cret-value",
        **extra,
    }


def create(client_for: Client, agent: Agent, **extra: Any) -> Any:
    return client_for(agent).post("/v1/mailboxes", body(**extra), format="json")


def test_an_admin_adds_an_imap_mailbox_and_secrets_never_come_back(
    client_for: Client, alice: Agent, bob: Agent
) -> None:
    team = TeamFactory(workspace=alice.workspace, name="Support")
    category = CategoryFactory(workspace=alice.workspace, name="Email")

    response = create(
        client_for,
        alice,
        default_team_id=team.pk,
        default_category_id=category.pk,
        default_priority="high",
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["provider"] == "imap"
    assert data["email_address"] == "help@acme.test"
    assert (data["imap_host"], data["imap_port"], data["imap_security"]) == (
        "imap.acme.test",
        993,
        "ssl",
    )
    assert (data["imap_password_set"], data["smtp_password_set"]) == (True, True)
    assert data["default_team"] == {"id": team.pk, "name": "Support"}
    assert data["default_category"] == {"id": category.pk, "name": "Email"}
    assert data["sync"]["status"] == "idle"
    assert data["sync"]["enabled"] is True
    mailbox = MailboxConnection.objects.get(pk=data["id"])
    assert mailbox.imap_password == SECRET
    assert EmailSyncConfig.objects.filter(mailbox=mailbox, folder="INBOX").exists()
    # Stored encrypted; never in any answer, to admins or agents.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT imap_password FROM integrations_mailboxconnection WHERE id = %s",
            [mailbox.pk],
        )
        assert SECRET not in cursor.fetchone()[0]
    for agent in (alice, bob):
        api = client_for(agent)
        for url in ("/v1/mailboxes", f"/v1/mailboxes/{mailbox.pk}"):
            answer = api.get(url)
            assert answer.status_code == 200
            assert SECRET.encode() not in answer.content
            assert b"smtp-s3cret-value" not in answer.content
    assert SECRET.encode() not in response.content


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"imap_host": ""}, "imap_host"),
        ({"imap_host": "not a host"}, "imap_host"),
        ({"imap_port": 0}, "imap_port"),
        ({"imap_port": 65536}, "imap_port"),
        ({"imap_security": "tls1.0"}, "imap_security"),
        ({"imap_username": ""}, "imap_username"),
        ({"imap_password": ""}, "imap_password"),
        ({"email_address": "not-an-address"}, "email_address"),
        ({"smtp_port": None}, "smtp_port"),
        ({"smtp_password": ""}, "smtp_password"),
        ({"smtp_security": "bogus"}, "smtp_security"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field(
    client_for: Client, alice: Agent, extra: dict[str, Any], field: str
) -> None:
    response = create(client_for, alice, **extra)

    assert response.status_code == 400, response.content
    assert field in error(response)["fields"], error(response)
    assert not MailboxConnection.objects.exists()


def test_references_and_duplicates(client_for: Client, alice: Agent, charlie: Agent) -> None:
    foreign_team = TeamFactory(workspace=charlie.workspace)
    response = create(client_for, alice, default_team_id=foreign_team.pk)
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_reference"
    assert set(error(response)["fields"]) == {"default_team_id"}

    assert create(client_for, alice).status_code == 201
    response = create(client_for, alice, email_address="HELP@acme.test")
    assert response.status_code == 409
    assert error(response)["code"] == "duplicate"
    # The same address in another workspace is that workspace's business.
    assert create(client_for, charlie).status_code == 201


def test_only_admins_write(client_for: Client, alice: Agent, bob: Agent, queued: list[int]) -> None:
    mailbox_id = create(client_for, alice).json()["id"]
    api = client_for(bob)
    for method, url, data in [
        ("post", "/v1/mailboxes", body(email_address="other@acme.test")),
        ("patch", f"/v1/mailboxes/{mailbox_id}", {"display_name": "Mine"}),
        ("delete", f"/v1/mailboxes/{mailbox_id}", None),
        ("post", f"/v1/mailboxes/{mailbox_id}/sync", None),
        ("post", f"/v1/mailboxes/{mailbox_id}/test", None),
    ]:
        response = getattr(api, method)(url, data, format="json")
        assert response.status_code == 403, (method, url)
        assert error(response)["code"] == "admin_required"
    assert queued == []
    assert MailboxConnection.objects.get().display_name == ""


def test_update_keeps_an_empty_password_and_clears_a_reconnect(
    client_for: Client, alice: Agent
) -> None:
    mailbox_id = create(client_for, alice).json()["id"]
    MailboxConnection.objects.filter(pk=mailbox_id).update(
        sync_status=SyncStatus.RECONNECT_NEEDED, last_error="Login refused"
    )
    EmailSyncConfig.objects.filter(mailbox_id=mailbox_id).update(
        imap_uidvalidity=7, imap_last_uid=40
    )
    api = client_for(alice)

    response = api.patch(
        f"/v1/mailboxes/{mailbox_id}",
        {"display_name": "Acme Help", "imap_password": ""},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["sync"]["status"] == "reconnect"
    assert MailboxConnection.objects.get(pk=mailbox_id).imap_password == SECRET

    response = api.patch(
        f"/v1/mailboxes/{mailbox_id}",
        {"imap_password": "new-password", "imap_username": "helpdesk@acme.test"},
        format="json",
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["sync"]["status"], data["sync"]["last_error"]) == ("idle", "")
    assert data["display_name"] == "Acme Help"
    # Another account: its UIDs start afresh.
    config = EmailSyncConfig.objects.get(mailbox_id=mailbox_id)
    assert (config.imap_uidvalidity, config.imap_last_uid) == (None, 0)


def test_microsoft_mailboxes_are_listed_and_edit_only_their_defaults(
    client_for: Client, alice: Agent
) -> None:
    mailbox = MailboxConnection.objects.create(
        workspace=alice.workspace, provider="microsoft", email_address="m365@acme.test"
    )
    api = client_for(alice)
    assert [m["provider"] for m in api.get("/v1/mailboxes").json()["results"]] == ["microsoft"]

    response = api.patch(
        f"/v1/mailboxes/{mailbox.pk}", {"default_priority": "urgent", "is_active": False}
    )
    assert response.status_code == 200
    assert (response.json()["default_priority"], response.json()["is_active"]) == (
        "urgent",
        False,
    )
    response = api.patch(f"/v1/mailboxes/{mailbox.pk}", {"imap_host": "imap.acme.test"})
    assert response.status_code == 400
    assert set(error(response)["fields"]) == {"imap_host"}

    assert api.delete(f"/v1/mailboxes/{mailbox.pk}").status_code == 204
    assert not MailboxConnection.objects.exists()


def test_sync_now_is_queued_on_commit_or_refused_with_a_reason(
    client_for: Client,
    alice: Agent,
    queued: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    mailbox_id = create(client_for, alice).json()["id"]
    api = client_for(alice)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(f"/v1/mailboxes/{mailbox_id}/sync")
        assert response.status_code == 202
        assert response.json()["id"] == mailbox_id
        # Nothing leaves before the commit.
        assert queued == []
    for callback in callbacks:
        callback()
    assert queued == [mailbox_id]

    MailboxConnection.objects.filter(pk=mailbox_id).update(sync_status=SyncStatus.RECONNECT_NEEDED)
    response = api.post(f"/v1/mailboxes/{mailbox_id}/sync")
    assert response.status_code == 409
    assert error(response)["code"] == "mailbox_reconnect_needed"
    assert "password" in error(response)["message"]

    MailboxConnection.objects.filter(pk=mailbox_id).update(
        sync_status=SyncStatus.OK, is_active=False
    )
    response = api.post(f"/v1/mailboxes/{mailbox_id}/sync")
    assert response.status_code == 409
    assert error(response)["code"] == "mailbox_inactive"


def test_verify_and_test_sign_in_to_the_server(
    client_for: Client, alice: Agent, server: ImapTestServer
) -> None:
    api = client_for(alice)
    imap = {"imap_host": "localhost", "imap_port": server.port, "smtp_host": "", "smtp_port": None}

    response = create(
        client_for, alice, **imap, imap_password="wrong", smtp_username="", verify=True
    )
    assert response.status_code == 400
    assert error(response)["code"] == "imap_connection_failed"
    assert set(error(response)["fields"]) == {"imap_password"}
    assert not MailboxConnection.objects.exists()

    response = create(client_for, alice, **imap, smtp_username="", verify=True)
    assert response.status_code == 201, response.content
    mailbox_id = response.json()["id"]

    response = api.post(f"/v1/mailboxes/{mailbox_id}/test")
    assert response.status_code == 200
    assert response.json()["imap"]["ok"] is True
    assert response.json()["smtp"] == {"ok": None, "message": "No SMTP server is set."}

    server.users["help@acme.test"] = "rotated"
    response = api.post(f"/v1/mailboxes/{mailbox_id}/test")
    assert response.json()["imap"]["ok"] is False
    assert "refused the login" in response.json()["imap"]["message"]


def test_charlie_gets_404_for_workspace_as_mailbox(
    client_for: Client, alice: Agent, charlie: Agent, queued: list[int]
) -> None:
    mailbox_id = create(client_for, alice).json()["id"]
    api = client_for(charlie)
    for method, path, data in [
        ("get", "", None),
        ("patch", "", {"display_name": "Hijacked"}),
        ("delete", "", None),
        ("post", "/sync", None),
        ("post", "/test", None),
    ]:
        response = getattr(api, method)(f"/v1/mailboxes/{mailbox_id}{path}", data, format="json")
        assert response.status_code == 404, (method, path)
        assert error(response)["code"] == "not_found"
    assert api.get("/v1/mailboxes").json()["results"] == []
    assert queued == []
    assert MailboxConnection.objects.get(pk=mailbox_id).display_name == ""


def test_the_list_query_count_does_not_grow_with_its_length(
    client_for: Client, alice: Agent
) -> None:
    api = client_for(alice)
    team = TeamFactory(workspace=alice.workspace)
    create(client_for, alice, default_team_id=team.pk)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/v1/mailboxes")
        assert response.status_code == 200
        return len(captured.captured_queries)

    one = count()
    for n in range(5):
        category = CategoryFactory(workspace=alice.workspace)
        create(
            client_for,
            alice,
            email_address=f"box{n}@acme.test",
            default_team_id=team.pk,
            default_category_id=category.pk,
        )
    MailboxConnection.objects.create(
        workspace=alice.workspace, provider="microsoft", email_address="m365@acme.test"
    )
    assert len(api.get("/v1/mailboxes").json()["results"]) == 7
    # The token's agent and workspace, then one page of mailboxes joined to their team,
    # category and sync config: the same for 1 mailbox as for 7.
    assert count() == one


def test_light_agents_read_but_never_write(client_for: Client, alice: Agent) -> None:
    from tickets.tests.api_support import light_agent

    mailbox_id = create(client_for, alice).json()["id"]
    lena = light_agent(alice.workspace)
    assert lena.role == AgentRole.LIGHT
    api = client_for(lena)
    assert api.get(f"/v1/mailboxes/{mailbox_id}").status_code == 200
    assert api.post(f"/v1/mailboxes/{mailbox_id}/sync").status_code == 403
