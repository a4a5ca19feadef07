"""The admin never shows a secret: not the plaintext, not the ciphertext. Password inputs
are write-only; blank keeps the stored value."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from enque.tests.admin_helpers import (
    CLIENT_SECRET,
    IMAP_PASSWORD,
    SMTP_PASSWORD,
    TOKEN_CACHE,
    changeform_data,
    populate,
)
from integrations.models import (
    InboundEmail,
    MailboxConnection,
    MicrosoftIntegration,
    MicrosoftToken,
)


@pytest.fixture(autouse=True)
def _memory_storage(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture
def rows(workspace_a, alice, customer_a, ticket_a):
    return populate(workspace_a, alice, customer_a, ticket_a)


@pytest.fixture
def mailbox(rows) -> MailboxConnection:
    return rows["mailbox"]


def stored(model, pk: int, column: str) -> str:
    """The column as the database holds it (the ciphertext)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def url(obj, view: str = "change") -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


@pytest.mark.parametrize("who", ["superuser", "workspace-admin"])
def test_pages_show_neither_plaintext_nor_ciphertext(client, admin_user, alice, rows, who) -> None:
    user = admin_user if who == "superuser" else alice.user
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    mailbox = rows["mailbox"]
    integration = mailbox.microsoft_integration
    token = MicrosoftToken.objects.get(mailbox=mailbox)
    secrets = [IMAP_PASSWORD, SMTP_PASSWORD, CLIENT_SECRET, TOKEN_CACHE, "refresh-token-b16b00b5"]
    ciphertexts = [
        stored(MailboxConnection, mailbox.pk, "imap_password"),
        stored(MailboxConnection, mailbox.pk, "smtp_password"),
        stored(MicrosoftIntegration, integration.pk, "client_secret"),
        stored(MicrosoftToken, token.pk, "token_cache"),
    ]
    assert all(c.startswith("enc:v1:") for c in ciphertexts)
    pages = [
        url(mailbox),
        url(integration),
        url(token),
        reverse("admin:integrations_mailboxconnection_changelist"),
        reverse("admin:integrations_microsoftintegration_changelist"),
        reverse("admin:integrations_microsofttoken_changelist"),
        url(mailbox, "delete"),
        url(token, "delete"),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for value in secrets + ciphertexts:
            assert value not in html, (page, value)
    # The change pages say whether a value is stored.
    html = client.get(url(mailbox)).content.decode()
    assert 'type="password"' in html
    assert html.count('<div class="readonly">set</div>') == 2  # IMAP and SMTP


def test_the_admin_never_decrypts(admin_client, settings, rows) -> None:
    # Under another key every stored secret fails authentication when read. Every list and
    # change page still works, because the admin never loads an encrypted column, not even
    # through a related row (a ticket's mailbox, a token's mailbox, a mailbox's integration).
    import secrets as random_secrets

    from django.contrib import admin

    objects = {
        model: model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        for model in admin.site._registry
        if model._meta.app_label in {"workspaces", "tickets", "integrations", "automation"}
    }
    settings.DATABASE_ENCRYPTION_KEY = random_secrets.token_urlsafe(32)
    for model, pk in objects.items():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert admin_client.get(reverse(f"{info}_changelist")).status_code == 200, model
        assert admin_client.get(reverse(f"{info}_change", args=[pk])).status_code == 200, model
    mailbox = rows["mailbox"]
    data = changeform_data(admin_client.get(url(mailbox)))
    assert admin_client.post(url(mailbox), data).status_code == 302
    ticket = rows["ticket"]
    data = changeform_data(admin_client.get(url(ticket)))
    data["priority"] = "urgent"
    assert admin_client.post(url(ticket), data).status_code == 302


def test_mailbox_password_inputs_are_write_only(admin_client, mailbox) -> None:
    imap_before = stored(MailboxConnection, mailbox.pk, "imap_password")
    smtp_before = stored(MailboxConnection, mailbox.pk, "smtp_password")

    # Blank keeps the stored value: the column is not even rewritten.
    data = changeform_data(admin_client.get(url(mailbox)))
    assert data["imap_password"] == ""
    data["display_name"] = "Support desk"
    response = admin_client.post(url(mailbox), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    mailbox.refresh_from_db()
    assert mailbox.display_name == "Support desk"
    assert mailbox.imap_password == IMAP_PASSWORD
    assert stored(MailboxConnection, mailbox.pk, "imap_password") == imap_before

    # A new value replaces it (encrypted); the other secret is untouched.
    data = changeform_data(admin_client.get(url(mailbox)))
    data["imap_password"] = "a brand new password "
    assert admin_client.post(url(mailbox), data).status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.imap_password == "a brand new password "  # kept as typed, spaces too
    assert stored(MailboxConnection, mailbox.pk, "imap_password").startswith("enc:v1:")
    assert stored(MailboxConnection, mailbox.pk, "smtp_password") == smtp_before

    # "Clear" empties it.
    data = changeform_data(admin_client.get(url(mailbox)))
    data["smtp_password_clear"] = "on"
    assert admin_client.post(url(mailbox), data).status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.smtp_password == ""
    assert "not set" in admin_client.get(url(mailbox)).content.decode()


def test_a_new_mailbox_stores_its_password_encrypted(admin_client, workspace_a) -> None:
    response = admin_client.post(
        reverse("admin:integrations_mailboxconnection_add"),
        {
            "workspace": workspace_a.pk,
            "provider": "imap",
            "email_address": "help@acme.test",
            "is_active": "on",
            "imap_security": "ssl",
            "imap_password": "first-password",
            "imap_folder": "INBOX",
            "smtp_security": "starttls",
            "default_priority": "normal",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    mailbox = MailboxConnection.objects.get(email_address="help@acme.test")
    assert mailbox.imap_password == "first-password"
    assert mailbox.smtp_password == ""
    assert stored(MailboxConnection, mailbox.pk, "imap_password").startswith("enc:v1:")


def test_client_secret_is_write_only(admin_client, rows) -> None:
    integration = rows["mailbox"].microsoft_integration
    data = changeform_data(admin_client.get(url(integration)))
    assert admin_client.post(url(integration), data).status_code == 302
    integration.refresh_from_db()
    assert integration.client_secret == CLIENT_SECRET
    data["client_secret"] = "rotated"
    assert admin_client.post(url(integration), data).status_code == 302
    integration.refresh_from_db()
    assert integration.client_secret == "rotated"


def test_the_token_cache_is_never_editable(admin_client, mailbox) -> None:
    token = MicrosoftToken.objects.get(mailbox=mailbox)
    page = admin_client.get(url(token))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert "token_cache" not in page.context["adminform"].form.fields
    assert admin_client.post(url(token), {"token_cache": "x"}).status_code == 403
    assert admin_client.get(reverse("admin:integrations_microsofttoken_add")).status_code == 403
    token.refresh_from_db()
    assert token.token_cache == TOKEN_CACHE


def test_inbound_email_is_read_only_with_a_status_filter(admin_client, rows) -> None:
    email = InboundEmail.objects.get(workspace=rows["ticket"].workspace)
    page = admin_client.get(url(email))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    html = page.content.decode()
    assert email.message_id in html
    assert email.from_address in html
    changelist = admin_client.get(
        reverse("admin:integrations_inboundemail_changelist"), {"status__exact": "failed"}
    )
    assert list(changelist.context["cl"].result_list) == []
    raw = admin_client.get(reverse("admin:integrations_inboundemail_raw", args=[email.pk]))
    assert raw.status_code == 200
    assert b"".join(raw.streaming_content).startswith(b"From: a@customer.test")
