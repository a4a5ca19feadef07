"""Connecting an IMAP mailbox in a real Chromium, against the local IMAP test server.

An admin opens Settings → Mailboxes, adds an IMAP mailbox (a wrong password first: the
form says so and keeps what was typed), sees it listed, presses "Sync now", and finds the
message waiting on the server as a ticket. The live server runs in this process, so Celery
tasks run inline here (``task_always_eager``): "Sync now" syncs before its redirect, as a
worker would a moment later. Leaves test-artifacts/screenshots/settings-mailboxes.png.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from enque.celery import app as celery_app
from integrations.models import MailboxConnection, SyncStatus
from integrations.tests.imap_server import ImapTestServer, raw_message
from tickets.models import Ticket
from tickets.tests.api_support import use_memory_storage
from ui.tests.browser import screenshot, sign_in
from workspaces.models import Agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # enque.tests.factories.UserFactory's
MAILBOX, MAILBOX_PASSWORD = "help@acme.test", "imap-app-password"


@pytest.fixture(autouse=True)
def mail_settings(settings: Any) -> None:
    use_memory_storage(settings)
    settings.MAIL_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def imap_server(settings: Any) -> Iterator[ImapTestServer]:
    with ImapTestServer(users={MAILBOX: MAILBOX_PASSWORD}, security="ssl") as server:
        settings.MAIL_TLS_CA_FILE = server.ca_file
        server.folder().append(
            raw_message(
                subject="Our scanner jams on every page",
                sender="dora@customer.test",
                to=MAILBOX,
                body="Hello, the scanner jams on every page since Monday. Can you help?",
            )
        )
        yield server


def test_connect_an_imap_mailbox_and_sync_it(
    browser_context: Callable[..., BrowserContext],
    live_server: Any,
    chromium: Any,
    alice: Agent,
    imap_server: ImapTestServer,
    eager_tasks: None,
) -> None:
    # A Microsoft 365 mailbox whose grant was revoked, so the list shows that state too.
    MailboxConnection.objects.create(
        workspace=alice.workspace,
        provider="microsoft",
        email_address="sales@acme.test",
        sync_status=SyncStatus.RECONNECT_NEEDED,
        last_error="The Microsoft 365 grant was revoked or has expired.",
        last_error_at=timezone.now(),
    )
    page = browser_context().new_page()
    sign_in(page, live_server.url, "alice@a.test", PASSWORD)

    page.goto(f"{live_server.url}/settings/mailboxes")
    expect(page.get_by_role("heading", name="Mailboxes", exact=True)).to_be_visible()
    settings_nav = page.get_by_role("navigation", name="Settings")
    expect(settings_nav.get_by_role("link", name="Mailboxes")).to_have_attribute(
        "aria-current", "page"
    )
    page.get_by_role("link", name="Add IMAP/SMTP mailbox").first.click()
    expect(page.get_by_role("heading", name="Add IMAP/SMTP mailbox")).to_be_visible()

    page.get_by_label("Email address").fill(MAILBOX)
    page.get_by_label("Display name").fill("Acme Help")
    page.get_by_label("IMAP server").fill("127.0.0.1")
    page.get_by_label("IMAP port").fill(str(imap_server.port))
    page.get_by_label("IMAP security").select_option("ssl")
    page.get_by_label("IMAP user name").fill(MAILBOX)
    page.get_by_label("IMAP password").fill("not-the-password")
    page.get_by_role("button", name="Add mailbox").click()

    # Signed in first: the refusal is on the password field, nothing saved.
    password = page.get_by_label("IMAP password")
    expect(page.locator("#id_imap_password_error")).to_contain_text(
        "Could not sign in to the IMAP server"
    )
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("IMAP server")).to_have_value("127.0.0.1")
    assert not MailboxConnection.objects.filter(provider="imap").exists()

    password.fill(MAILBOX_PASSWORD)
    page.get_by_role("button", name="Add mailbox").click()
    expect(page.get_by_role("heading", name="Mailboxes", exact=True)).to_be_visible()
    row = page.locator("tr", has_text=MAILBOX)
    expect(row).to_contain_text("IMAP / SMTP")
    expect(row).to_contain_text("Not synced yet")
    expect(page.locator("tr", has_text="sales@acme.test")).to_contain_text("Reconnect needed")

    row.get_by_role("button", name=f"Sync {MAILBOX} now").click()
    expect(page.locator("#toasts")).to_contain_text(f"Syncing {MAILBOX}.")
    row = page.locator("tr", has_text=MAILBOX)
    expect(row.locator(".badge")).to_have_text("OK")
    expect(row).to_contain_text("just now")
    screenshot(page, "settings-mailboxes")

    # The message on the server is now a ticket from its sender.
    ticket = Ticket.objects.get(workspace=alice.workspace)
    assert ticket.subject == "Our scanner jams on every page"
    assert ticket.customer.email == "dora@customer.test"
    page.goto(f"{live_server.url}/?view=open")
    page.get_by_role("link", name="Our scanner jams on every page").click()
    expect(page.get_by_role("heading", name="Our scanner jams on every page")).to_be_visible()
    expect(page.locator("#thread")).to_contain_text("the scanner jams on every page")
    # Fetched without marking it read on the server.
    assert not imap_server.folder().seen(1)
