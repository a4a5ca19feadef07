"""Sending through Microsoft Graph: the complete MIME as base64 (threading headers kept),
shared mailboxes, large attachments through an upload session in 320 KiB-multiple chunks,
and the failures callers tell apart."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from django.core.files.base import ContentFile

from integrations.errors import PermanentMailError, ReconnectNeeded, TransientMailError
from integrations.microsoft import graph, send
from integrations.microsoft.send import send_mime
from integrations.models import MailboxConnection
from integrations.tests.fake_microsoft import FakeMicrosoft, FakeUser, connect_mailbox
from tickets.models import TicketAttachment
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
def support(fake: FakeMicrosoft) -> FakeUser:
    return fake.add_user(SUPPORT)


@pytest.fixture
def mailbox(fake: FakeMicrosoft, support: FakeUser, alice: Agent) -> MailboxConnection:
    return connect_mailbox(fake, admin=alice, user=support)


def reply_mime(**extra: str) -> bytes:
    message = EmailMessage()
    message["From"] = SUPPORT
    message["To"] = "carol@customer.test"
    message["Subject"] = "Re: Printer on fire [#1]"
    message["Message-ID"] = "<reply-1@enque.acme.test>"
    message["In-Reply-To"] = "<question-1@customer.test>"
    message["References"] = "<question-1@customer.test>"
    for name, value in extra.items():
        message[name] = value
    message.set_content("We are on it.")
    return message.as_bytes()


def test_send_mime_posts_the_message_as_base64_mime(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    mime = reply_mime()

    assert send_mime(mailbox, mime) == ""

    (request,) = [r for r in fake.graph_requests if r.url.endswith("/sendMail")]
    assert request.url == "https://graph.microsoft.com/v1.0/me/sendMail"
    assert request.headers["Content-Type"] == "text/plain"
    assert request.headers["Prefer"] == 'IdType="ImmutableId"'
    (sent,) = fake.sent
    assert sent.mime == mime
    assert sent.message["In-Reply-To"] == "<question-1@customer.test>"
    assert sent.message["References"] == "<question-1@customer.test>"
    assert sent.message["Message-ID"] == "<reply-1@enque.acme.test>"


def test_a_shared_mailbox_sends_through_users_address(fake: FakeMicrosoft, alice: Agent) -> None:
    delegate = fake.add_user("alice@acme.test")
    fake.mailbox("help@acme.test")
    shared = connect_mailbox(
        fake, admin=alice, user=delegate, address="help@acme.test", shared=True
    )

    send_mime(shared, reply_mime())

    assert fake.graph_requests[-1].url == (
        "https://graph.microsoft.com/v1.0/users/help@acme.test/sendMail"
    )
    assert fake.sent[0].mailbox == "help@acme.test"


def big_attachment(mailbox: MailboxConnection, size: int) -> TicketAttachment:
    data = hashlib.sha256(b"seed").digest() * (size // 32 + 1)
    attachment = TicketAttachment(
        workspace=mailbox.workspace,
        filename="scan.pdf",
        content_type="application/pdf",
        size=size,
    )
    attachment.file.save("scan.pdf", ContentFile(data[:size]), save=False)
    attachment.save()
    return attachment


def test_large_attachments_go_through_an_upload_session(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    size = 4 * 1024 * 1024 + 123  # over the 3 MB that may ride in the MIME
    attachment = big_attachment(mailbox, size)

    message_id = send_mime(mailbox, reply_mime(), [attachment])

    assert message_id.startswith("draft-")
    (sent,) = fake.sent
    assert sent.message["In-Reply-To"] == "<question-1@customer.test>"
    (upload,) = sent.attachments
    assert (upload.name, upload.size, upload.content_type) == ("scan.pdf", size, "application/pdf")
    with attachment.file.open("rb") as handle:
        assert bytes(upload.data) == handle.read()
    chunk = send.CHUNK_SIZE
    assert chunk % (320 * 1024) == 0
    assert [put["Content-Range"] for put in upload.puts] == [
        f"bytes 0-{chunk - 1}/{size}",
        f"bytes {chunk}-{size - 1}/{size}",
    ]
    # Draft from MIME, upload session, send — in that order, all with immutable ids.
    calls = [(r.method, r.url.rsplit("/v1.0/me", 1)[1]) for r in fake.graph_requests]
    assert calls == [
        ("POST", "/messages"),
        ("POST", f"/messages/{message_id}/attachments/createUploadSession"),
        ("POST", f"/messages/{message_id}/send"),
    ]


def test_a_revoked_grant_raises_reconnect_needed(
    fake: FakeMicrosoft, mailbox: MailboxConnection
) -> None:
    fake.revoke(SUPPORT)
    with pytest.raises(ReconnectNeeded):
        send_mime(mailbox, reply_mime())
    assert fake.sent == []


def test_throttling_beyond_the_bound_is_transient(
    fake: FakeMicrosoft,
    mailbox: MailboxConnection,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(graph, "sleep", waits.append)
    settings.GRAPH_MAX_RETRY_WAIT = 5
    fake.throttle_next(3, retry_after="2")

    with pytest.raises(TransientMailError) as caught:
        send_mime(mailbox, reply_mime())

    assert waits == [2.0, 2.0]
    assert caught.value.retry_after == 2


def test_a_rejected_message_is_permanent(fake: FakeMicrosoft, mailbox: MailboxConnection) -> None:
    fake.fail_next(400, "ErrorMimeContentInvalid", "The MIME content is invalid.")

    with pytest.raises(PermanentMailError, match="ErrorMimeContentInvalid"):
        send_mime(mailbox, reply_mime())
    assert fake.sent == []


def test_a_failed_upload_deletes_the_draft(
    fake: FakeMicrosoft, mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    attachment = big_attachment(mailbox, 4 * 1024 * 1024)
    monkeypatch.setattr(send, "CHUNK_SIZE", 1000)  # not a multiple of 320 KiB: refused

    with pytest.raises(PermanentMailError, match=r"scan\.pdf"):
        send_mime(mailbox, reply_mime(), [attachment])

    assert fake.sent == [] and fake.drafts == {}
    assert fake.graph_requests[-1].method == "DELETE"
