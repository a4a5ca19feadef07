"""Graph delta sync: first sync, incremental delta, paging, throttling, expired delta,
links to other hosts, shared mailboxes, token refresh with rotation, revoked grants.

Workspace A connects support@acme.test (Alice, its admin, consents as the mailbox's own
account) through the fake Microsoft (integrations/tests/fake_microsoft.py); MSAL and
requests run for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from integrations.errors import PermanentMailError, ReconnectNeeded, TransientMailError
from integrations.microsoft import graph
from integrations.microsoft.sync import sync_microsoft_mailbox
from integrations.models import EmailSyncConfig, InboundEmail, MailboxConnection, MicrosoftToken
from integrations.tests.fake_microsoft import (
    FakeMicrosoft,
    FakeUser,
    connect_mailbox,
    plain_message,
)
from tickets.models import Ticket
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

SUPPORT = "support@acme.test"


@pytest.fixture(autouse=True)
def _memory_storage(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft.running(settings) as fake:
        yield fake


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(graph, "sleep", recorded.append)
    return recorded


@pytest.fixture
def support(fake: FakeMicrosoft) -> FakeUser:
    return fake.add_user(SUPPORT, name="Acme Support")


@pytest.fixture
def mailbox(fake: FakeMicrosoft, support: FakeUser, alice: Agent) -> MailboxConnection:
    return connect_mailbox(fake, admin=alice, user=support)


def subjects(mailbox: MailboxConnection) -> list[str]:
    return sorted(InboundEmail.objects.filter(mailbox=mailbox).values_list("subject", flat=True))


def test_first_sync_ingests_the_inbox_as_tickets(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    for n in range(3):
        fake.deliver(SUPPORT, plain_message(f"Question {n}"))

    assert sync_microsoft_mailbox(mailbox) == 3

    assert subjects(mailbox) == ["Question 0", "Question 1", "Question 2"]
    assert Ticket.objects.filter(workspace=mailbox.workspace).count() == 3
    stored = InboundEmail.objects.filter(mailbox=mailbox)
    assert {row.provider_message_id for row in stored} == set(fake.mailbox(SUPPORT).messages)
    config = EmailSyncConfig.objects.get(mailbox=mailbox)
    assert config.delta_link.startswith(
        "https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken="
    )
    assert config.last_full_sync_at is not None
    # Ids only in the delta query; every call asked for immutable ids.
    first = fake.graph_requests[0]
    assert "%24select=id" in first.url or "$select=id" in first.url
    assert all(r.headers["Prefer"].startswith('IdType="ImmutableId"') for r in fake.graph_requests)


def test_incremental_sync_fetches_only_new_messages(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    fake.deliver(SUPPORT, plain_message("Old"))
    sync_microsoft_mailbox(mailbox)
    fake.graph_requests.clear()

    fake.deliver(SUPPORT, plain_message("New"))
    assert sync_microsoft_mailbox(mailbox) == 1

    assert subjects(mailbox) == ["New", "Old"]
    urls = [r.url for r in fake.graph_requests]
    assert "deltatoken" in urls[0]
    # One delta page and one $value: the old message is not downloaded again.
    assert sum(url.endswith("/$value") for url in urls) == 1
    assert sync_microsoft_mailbox(mailbox) == 0


def test_removed_items_are_ignored(fake: FakeMicrosoft, mailbox: MailboxConnection) -> None:
    keep = fake.deliver(SUPPORT, plain_message("Keep"))
    gone = fake.deliver(SUPPORT, plain_message("Gone soon"))
    sync_microsoft_mailbox(mailbox)
    fake.delete(SUPPORT, gone)
    fake.deliver(SUPPORT, plain_message("Another"))

    assert sync_microsoft_mailbox(mailbox) == 1

    assert subjects(mailbox) == ["Another", "Gone soon", "Keep"]
    assert keep in fake.mailbox(SUPPORT).messages


def test_paging_follows_next_links_and_saves_the_delta_link_at_the_end(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    fake.page_size = 2
    for n in range(5):
        fake.deliver(SUPPORT, plain_message(f"Paged {n}"))

    assert sync_microsoft_mailbox(mailbox) == 5

    delta_calls = [r.url for r in fake.graph_requests if "/messages/delta" in r.url]
    assert len(delta_calls) == 3
    assert all("skiptoken" in url for url in delta_calls[1:])
    assert "deltatoken" in EmailSyncConfig.objects.get(mailbox=mailbox).delta_link


def test_a_crash_before_the_delta_link_is_saved_refetches_without_duplicates(
    fake: FakeMicrosoft, mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.page_size = 2
    for n in range(3):
        fake.deliver(SUPPORT, plain_message(f"Crash {n}"))
    real_save = EmailSyncConfig.save

    def crash(self: EmailSyncConfig, *args: Any, **kwargs: Any) -> None:
        if self.delta_link:
            raise RuntimeError("worker killed")
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(EmailSyncConfig, "save", crash)
    with pytest.raises(RuntimeError):
        sync_microsoft_mailbox(mailbox)
    monkeypatch.setattr(EmailSyncConfig, "save", real_save)
    # The first page committed; the last page rolled back with its delta link.
    assert subjects(mailbox) == ["Crash 0", "Crash 1"]
    assert EmailSyncConfig.objects.get(mailbox=mailbox).delta_link == ""

    assert sync_microsoft_mailbox(mailbox) == 1
    assert subjects(mailbox) == ["Crash 0", "Crash 1", "Crash 2"]
    assert Ticket.objects.filter(workspace=mailbox.workspace).count() == 3


def test_throttling_waits_for_retry_after_then_goes_on(
    fake: FakeMicrosoft, mailbox: MailboxConnection, waits: list[float]
) -> None:
    fake.deliver(SUPPORT, plain_message("Patience"))
    fake.throttle_next(2, retry_after="3")

    assert sync_microsoft_mailbox(mailbox) == 1
    assert waits == [3.0, 3.0]


def test_a_503_is_retried_like_a_429(
    fake: FakeMicrosoft, mailbox: MailboxConnection, waits: list[float]
) -> None:
    fake.deliver(SUPPORT, plain_message("Busy"))
    fake.throttle_next(1, status=503, retry_after="1")
    assert sync_microsoft_mailbox(mailbox) == 1
    assert waits == [1.0]


def test_throttling_past_the_bound_raises_a_retryable_error(
    fake: FakeMicrosoft, mailbox: MailboxConnection, waits: list[float], settings: Any
) -> None:
    settings.GRAPH_MAX_RETRY_WAIT = 10
    fake.deliver(SUPPORT, plain_message("Later"))
    fake.throttle_next(1, retry_after="120")

    with pytest.raises(TransientMailError) as caught:
        sync_microsoft_mailbox(mailbox)

    assert caught.value.retry_after == 120
    assert waits == []  # never sleeps past the bound
    assert InboundEmail.objects.filter(mailbox=mailbox).count() == 0


def test_an_expired_delta_link_resyncs_in_full_without_duplicates(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    fake.deliver(SUPPORT, plain_message("Before"))
    sync_microsoft_mailbox(mailbox)
    old_link = EmailSyncConfig.objects.get(mailbox=mailbox).delta_link
    fake.expire_delta_tokens()
    fake.deliver(SUPPORT, plain_message("After"))

    assert sync_microsoft_mailbox(mailbox) == 1

    assert subjects(mailbox) == ["After", "Before"]
    assert Ticket.objects.filter(workspace=mailbox.workspace).count() == 2
    new_link = EmailSyncConfig.objects.get(mailbox=mailbox).delta_link
    assert new_link != old_link and new_link
    # The full resync downloads only the message it did not have.
    assert sum(r.url.endswith("/$value") for r in fake.graph_requests) == 2


def test_a_next_link_to_another_host_is_refused(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    fake.page_size = 1
    fake.foreign_next_link = True
    fake.deliver(SUPPORT, plain_message("One"))
    fake.deliver(SUPPORT, plain_message("Two"))

    with pytest.raises(PermanentMailError, match=r"graph\.evil\.example"):
        sync_microsoft_mailbox(mailbox)

    assert InboundEmail.objects.filter(mailbox=mailbox).count() == 0
    assert all(r.url.startswith("https://graph.microsoft.com/") for r in fake.graph_requests)


def test_a_shared_mailbox_is_read_through_users_address(fake: FakeMicrosoft, alice: Agent) -> None:
    delegate = fake.add_user("alice@acme.test")
    fake.mailbox("help@acme.test")
    fake.deliver("help@acme.test", plain_message("Shared question", to="help@acme.test"))
    mailbox = connect_mailbox(
        fake, admin=alice, user=delegate, address="help@acme.test", shared=True
    )

    assert sync_microsoft_mailbox(mailbox) == 1

    assert subjects(mailbox) == ["Shared question"]
    assert all(
        r.url.startswith("https://graph.microsoft.com/v1.0/users/help@acme.test/")
        for r in fake.graph_requests
    )


def stored_cache(mailbox: MailboxConnection) -> tuple[str, str]:
    """(decrypted cache, raw column) of the mailbox's token row."""
    token = MicrosoftToken.objects.get(mailbox=mailbox)
    with connection.cursor() as cursor:
        # The table name is the model's own, not input.
        table = connection.ops.quote_name(MicrosoftToken._meta.db_table)
        cursor.execute(f"SELECT token_cache FROM {table} WHERE id = %s", [token.pk])  # noqa: S608
        (raw,) = cursor.fetchone()
    return token.token_cache, raw


def test_a_refresh_that_rotates_the_token_is_saved_encrypted(
    fake: FakeMicrosoft, support: FakeUser, alice: Agent
) -> None:
    # Access tokens that MSAL considers about to expire: every call refreshes.
    fake.token_lifetime = 60
    mailbox = connect_mailbox(fake, admin=alice, user=support)
    (first_rt,) = [t for t, e in fake.refresh_tokens.items() if e == SUPPORT]
    plain, raw = stored_cache(mailbox)
    assert first_rt in plain and first_rt not in raw

    fake.deliver(SUPPORT, plain_message("Refresh"))
    assert sync_microsoft_mailbox(mailbox) == 1

    (second_rt,) = [t for t, e in fake.refresh_tokens.items() if e == SUPPORT]
    assert second_rt != first_rt  # the fake rotated it and forgot the old one
    plain, raw = stored_cache(mailbox)
    assert second_rt in plain and first_rt not in plain
    assert second_rt not in raw and "refresh_token" not in raw.lower()
    # The next sync refreshes with the rotated token, so the grant survives.
    fake.deliver(SUPPORT, plain_message("Again"))
    assert sync_microsoft_mailbox(mailbox) == 1


def test_a_revoked_grant_on_one_mailbox_leaves_the_other_syncing(
    fake: FakeMicrosoft, support: FakeUser, alice: Agent
) -> None:
    sales = fake.add_user("sales@acme.test")
    support_box = connect_mailbox(fake, admin=alice, user=support)
    sales_box = connect_mailbox(fake, admin=alice, user=sales)
    fake.deliver(SUPPORT, plain_message("For support"))
    fake.deliver("sales@acme.test", plain_message("For sales", to="sales@acme.test"))
    fake.revoke(SUPPORT)

    with pytest.raises(ReconnectNeeded):
        sync_microsoft_mailbox(support_box)
    assert sync_microsoft_mailbox(sales_box) == 1
    assert subjects(sales_box) == ["For sales"]
    assert subjects(support_box) == []


def test_an_expired_refresh_token_needs_a_reconnect(
    fake: FakeMicrosoft, support: FakeUser, alice: Agent
) -> None:
    fake.token_lifetime = 60
    mailbox = connect_mailbox(fake, admin=alice, user=support)
    fake.refresh_tokens.clear()  # Microsoft no longer knows the refresh token
    with pytest.raises(ReconnectNeeded, match="invalid_grant"):
        sync_microsoft_mailbox(mailbox)


def test_a_mailbox_never_connected_needs_a_reconnect(fake: FakeMicrosoft, alice: Agent) -> None:
    mailbox = MailboxConnection.objects.create(
        workspace=alice.workspace, provider="microsoft", email_address="new@acme.test"
    )
    with pytest.raises(ReconnectNeeded):
        sync_microsoft_mailbox(mailbox)
