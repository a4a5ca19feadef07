"""The inbound pipeline: raw first, dedupe, threading, automatic mail, bounces, failure and
replay, the management commands, and two workers racing on one message.

Workspace A has the mailbox support@acme.test; Alice and Bob are its agents, Carol
(carol@customer.test) its customer. Charlie's workspace B has its own mailbox.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automation.models import AutomationRun
from automation.services import automation_create
from enque.testing import postgres_only
from enque.tests.factories import CannedReplyFactory
from integrations.inbound import ingest_many, ingest_raw_email, pipeline, process_inbound_email
from integrations.mime import is_own_message_id, make_message_id
from integrations.models import (
    EmailTicketMapping,
    InboundEmail,
    InboundEmailStatus,
    MailboxConnection,
    MailDirection,
)
from tickets.actors import Actor
from tickets.models import Comment, Ticket, TicketAttachment, TicketEvent
from tickets.services import ticket_merge, ticket_set_status
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _memory_storage(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture
def mailbox(workspace_a: Workspace) -> MailboxConnection:
    return MailboxConnection.objects.create(
        workspace=workspace_a, provider="imap", email_address="support@acme.test"
    )


@pytest.fixture
def mailbox_b(workspace_b: Workspace) -> MailboxConnection:
    return MailboxConnection.objects.create(
        workspace=workspace_b, provider="imap", email_address="help@globex.test"
    )


_counter = iter(range(1, 10_000))


def mail(
    *,
    sender: str = "Carol Customer <carol@customer.test>",
    subject: str = "Printer on fire",
    text: str = "Our printer is on fire.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] = (),
    headers: dict[str, str] | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = "support@acme.test"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 03 Jun 2024 10:00:00 +0000"
    msg["Message-ID"] = f"<{message_id or f'm{next(_counter)}@mail.customer.test'}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(text)
    if attachment:
        msg.add_attachment(attachment[1], maintype="image", subtype="png", filename=attachment[0])
    return msg.as_bytes()


def stored_files(folder: str) -> list[str]:
    """Every file under ``folder`` in the (in-memory) default storage."""
    if not default_storage.exists(folder):
        return []
    directories, files = default_storage.listdir(folder)
    found = [f"{folder}/{name}" for name in files]
    for directory in directories:
        found += stored_files(f"{folder}/{directory}")
    return found


def mid(raw: bytes) -> str:
    return raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()


# --- Raw first, and dedupe ------------------------------------------------------------------


def test_the_raw_message_is_stored_with_its_hash_and_linked_to_what_it_became(
    mailbox: MailboxConnection,
) -> None:
    raw = mail(headers={"Reply-To": "assistant@customer.test"})

    inbound = ingest_raw_email(mailbox=mailbox, raw=raw, provider_message_id="imap:1:42")

    assert inbound.status == InboundEmailStatus.PROCESSED
    assert inbound.reason == "new_ticket"
    with default_storage.open(inbound.raw.name, "rb") as handle:
        assert handle.read() == raw
    assert (inbound.size, len(inbound.sha256), inbound.attempts) == (len(raw), 64, 1)
    assert (inbound.from_address, inbound.reply_to) == (
        "carol@customer.test",
        "assistant@customer.test",
    )
    ticket = Ticket.objects.get()
    assert inbound.ticket == ticket and inbound.comment.ticket == ticket
    assert ticket.customer.email == "carol@customer.test"  # From, not Reply-To
    mapping = EmailTicketMapping.objects.get()
    assert (mapping.direction, mapping.message_id, mapping.provider_message_id) == (
        MailDirection.INBOUND,
        mid(raw),
        "imap:1:42",
    )


def test_the_same_provider_id_or_message_id_is_one_message(mailbox: MailboxConnection) -> None:
    first = ingest_raw_email(mailbox=mailbox, raw=mail(), provider_message_id="graph-1")
    # Fetched again with other bytes (a Received header more) under the same provider id.
    again = ingest_raw_email(
        mailbox=mailbox, raw=b"X-Extra: 1\r\n" + mail(), provider_message_id="graph-1"
    )
    same_id = ingest_raw_email(mailbox=mailbox, raw=b"X-Extra: 2\r\n" + mail(message_id="x@y"))
    same_id_again = ingest_raw_email(mailbox=mailbox, raw=mail(message_id="x@y", text="other"))

    assert again.pk == first.pk and again.was_duplicate
    assert same_id_again.pk == same_id.pk and same_id_again.was_duplicate
    assert InboundEmail.objects.count() == 2
    assert Ticket.objects.count() == 2
    # A duplicate is recognised before its bytes are stored: one file per message.
    assert len(stored_files("inbound")) == 2


def test_a_message_without_message_id_gets_a_stable_one(mailbox: MailboxConnection) -> None:
    raw = b"From: carol@customer.test\r\nSubject: hi\r\n\r\nNo id.\r\n"

    first = ingest_raw_email(mailbox=mailbox, raw=raw)
    second = ingest_raw_email(mailbox=mailbox, raw=raw)

    assert first.message_id.startswith("sha256-") and first.message_id == second.message_id
    assert second.was_duplicate and Ticket.objects.count() == 1


def test_one_message_sent_to_two_mailboxes_of_a_workspace_is_one_ticket(
    mailbox: MailboxConnection, workspace_a: Workspace
) -> None:
    sales = MailboxConnection.objects.create(
        workspace=workspace_a, provider="imap", email_address="sales@acme.test"
    )
    raw = mail()

    first = ingest_raw_email(mailbox=mailbox, raw=raw)
    second = ingest_raw_email(mailbox=sales, raw=raw)

    assert second.pk != first.pk
    assert (second.status, second.reason) == ("processed", "duplicate_message")
    assert second.ticket == first.ticket and Ticket.objects.count() == 1


# --- Threading --------------------------------------------------------------------------------


def test_a_reply_threads_through_in_reply_to_and_references(
    mailbox: MailboxConnection, alice: Agent
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ticket = opened.ticket
    # Our reply went out with an id of ours (recorded by the outbound side).
    ours = make_message_id().strip("<>")
    EmailTicketMapping.objects.create(
        workspace=ticket.workspace,
        mailbox=mailbox,
        ticket=ticket,
        direction=MailDirection.OUTBOUND,
        message_id=ours,
    )

    by_in_reply_to = ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to=ours))
    by_references = ingest_raw_email(
        mailbox=mailbox,
        raw=mail(references=[opened.message_id, ours, "unknown@elsewhere.test"]),
    )

    assert by_in_reply_to.ticket == ticket and by_in_reply_to.reason == "reply"
    assert by_references.ticket == ticket
    assert Ticket.objects.count() == 1
    assert Comment.objects.filter(ticket=ticket, author_customer__isnull=False).count() == 3


def test_a_reply_to_a_merged_ticket_goes_to_the_ticket_it_was_merged_into(
    mailbox: MailboxConnection, alice: Agent
) -> None:
    source = ingest_raw_email(mailbox=mailbox, raw=mail(subject="First"))
    target = ingest_raw_email(mailbox=mailbox, raw=mail(subject="Second"))
    ticket_merge(source=source.ticket, target=target.ticket, actor=Actor.for_agent(alice))
    # A mapping still naming the merged ticket (written by a sync that raced the merge).
    EmailTicketMapping.objects.create(
        workspace=mailbox.workspace,
        mailbox=mailbox,
        ticket=source.ticket,
        direction=MailDirection.OUTBOUND,
        message_id="late@enque.local",
    )

    reply = ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to=source.message_id))
    late = ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to="late@enque.local"))

    assert reply.ticket == target.ticket
    assert late.ticket == target.ticket


def test_a_subject_token_is_believed_from_the_customer_but_not_from_a_stranger(
    mailbox: MailboxConnection,
) -> None:
    ticket = ingest_raw_email(mailbox=mailbox, raw=mail()).ticket
    subject = f"Re: [#{ticket.number}] Printer on fire"

    from_customer = ingest_raw_email(mailbox=mailbox, raw=mail(subject=subject))
    from_stranger = ingest_raw_email(
        mailbox=mailbox, raw=mail(sender="Mallory <mallory@evil.test>", subject=subject)
    )

    assert from_customer.ticket == ticket and from_customer.reason == "reply"
    assert from_stranger.ticket != ticket and from_stranger.reason == "new_ticket"
    assert from_stranger.ticket.customer.email == "mallory@evil.test"
    assert not Comment.objects.filter(ticket=ticket, author_customer__email="mallory@evil.test")


def test_a_subject_token_is_believed_from_someone_who_wrote_on_the_ticket(
    mailbox: MailboxConnection,
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    # A colleague in copy answered the thread once...
    ingest_raw_email(
        mailbox=mailbox,
        raw=mail(sender="Erin <erin@customer.test>", in_reply_to=opened.message_id),
    )
    # ...and later writes with only the number in the subject.
    later = ingest_raw_email(
        mailbox=mailbox,
        raw=mail(sender="Erin <erin@customer.test>", subject=f"[#{opened.ticket.number}] more"),
    )

    assert later.ticket == opened.ticket


def test_a_token_naming_another_workspaces_ticket_or_a_foreign_mapping_opens_a_new_ticket(
    mailbox: MailboxConnection, mailbox_b: MailboxConnection
) -> None:
    theirs = ingest_raw_email(mailbox=mailbox_b, raw=mail(message_id="shared@mail.test"))

    ours = ingest_raw_email(
        mailbox=mailbox,
        raw=mail(in_reply_to="shared@mail.test", subject=f"[#{theirs.ticket.number}] hi"),
    )

    assert ours.reason == "new_ticket"
    assert ours.ticket.workspace_id == mailbox.workspace_id != theirs.ticket.workspace_id


def test_a_customer_reply_reopens_a_resolved_ticket(
    mailbox: MailboxConnection, alice: Agent
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ticket_set_status(ticket=opened.ticket, actor=Actor.for_agent(alice), status="resolved")

    ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to=opened.message_id))

    opened.ticket.refresh_from_db()
    assert opened.ticket.status == "open"


def test_a_reply_to_a_closed_ticket_opens_a_follow_up_naming_it(
    mailbox: MailboxConnection, alice: Agent
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ticket_set_status(ticket=opened.ticket, actor=Actor.for_agent(alice), status="closed")

    reply = ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to=opened.message_id))

    assert reply.reason == "follow_up" and reply.ticket != opened.ticket
    note = Comment.objects.get(ticket=reply.ticket, is_internal=True)
    assert f"Follow-up to ticket #{opened.ticket.number}" in note.body_text
    opened.ticket.refresh_from_db()
    assert opened.ticket.status == "closed"
    # A further reply threads onto the follow-up, not onto the closed ticket.
    again = ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to=reply.message_id))
    assert again.ticket == reply.ticket


def test_an_agents_emailed_reply_is_an_internal_note_not_a_customer_comment(
    mailbox: MailboxConnection, bob: Agent
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())

    note = ingest_raw_email(
        mailbox=mailbox,
        raw=mail(sender="Bob Agent <bob@a.test>", in_reply_to=opened.message_id),
    )

    assert note.reason == "agent_note"
    assert (note.comment.is_internal, note.comment.author_agent) == (True, bob)
    assert not Customer.objects.filter(email="bob@a.test").exists()


# --- Automatic mail and bounces --------------------------------------------------------------


def test_an_out_of_office_reply_is_threaded_flagged_and_reopens_nothing(
    mailbox: MailboxConnection, alice: Agent
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ticket_set_status(ticket=opened.ticket, actor=Actor.for_agent(alice), status="pending")

    ooo = ingest_raw_email(
        mailbox=mailbox,
        raw=mail(
            subject="Automatic reply: Printer on fire",
            in_reply_to=opened.message_id,
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )

    assert (ooo.status, ooo.reason, ooo.is_auto_reply) == ("processed", "auto_reply", True)
    assert ooo.comment.ticket == opened.ticket
    opened.ticket.refresh_from_db()
    assert opened.ticket.status == "pending"


def test_an_out_of_office_reply_fires_no_auto_response_while_a_customer_reply_does(
    mailbox: MailboxConnection, alice: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    canned = CannedReplyFactory(workspace=mailbox.workspace, body="We got your message.")
    rule = automation_create(
        workspace=mailbox.workspace,
        actor=alice,
        name="Acknowledge customer replies",
        trigger="customer_replied",
        actions=[{"action_type": "send_canned_reply", "params": {"canned_reply_id": canned.pk}}],
    )
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ticket = opened.ticket

    with django_capture_on_commit_callbacks(execute=True):
        ooo = ingest_raw_email(
            mailbox=mailbox,
            raw=mail(
                subject="Automatic reply: Printer on fire",
                in_reply_to=opened.message_id,
                headers={"Auto-Submitted": "auto-replied"},
            ),
        )

    assert (ooo.reason, ooo.is_auto_reply, ooo.comment.ticket_id) == ("auto_reply", True, ticket.pk)
    assert not AutomationRun.objects.filter(automation=rule).exists()
    assert not Comment.objects.filter(ticket=ticket, author_type="system", is_internal=False)
    assert not Comment.objects.filter(ticket=ticket, body_text__contains="We got your message")
    # The history says why: the customer's comment was an automatic one.
    event = TicketEvent.objects.get(ticket=ticket, kind="customer_replied")
    assert event.data == {"comment": ooo.comment_id, "auto_reply": True}

    with django_capture_on_commit_callbacks(execute=True):
        reply = ingest_raw_email(
            mailbox=mailbox, raw=mail(subject="Re: Printer on fire", in_reply_to=opened.message_id)
        )

    assert (reply.reason, reply.is_auto_reply) == ("reply", False)
    assert AutomationRun.objects.filter(automation=rule, ticket=ticket).count() == 1
    assert Comment.objects.filter(ticket=ticket, body_text__contains="We got your message").exists()


def test_auto_replies_to_closed_tickets_or_from_agents_are_dropped(
    mailbox: MailboxConnection, alice: Agent, bob: Agent
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ticket_set_status(ticket=opened.ticket, actor=Actor.for_agent(alice), status="closed")
    auto = {"Auto-Submitted": "auto-replied"}

    to_closed = ingest_raw_email(
        mailbox=mailbox, raw=mail(in_reply_to=opened.message_id, headers=auto)
    )
    from_agent = ingest_raw_email(
        mailbox=mailbox,
        raw=mail(sender="bob@a.test", in_reply_to=opened.message_id, headers=auto),
    )

    assert (to_closed.status, to_closed.reason) == ("ignored", "auto_reply_closed_ticket")
    assert (from_agent.status, from_agent.reason) == ("ignored", "auto_reply_from_agent")
    assert Ticket.objects.count() == 1


def test_mailing_lists_are_kept_when_configured_so(
    mailbox: MailboxConnection, settings: Any
) -> None:
    raw = mail(headers={"List-Id": "<users.lists.example.org>"})
    assert ingest_raw_email(mailbox=mailbox, raw=raw).reason == "mailing_list:list-id"

    settings.INBOUND_IGNORE_LISTS = False
    kept = ingest_raw_email(mailbox=mailbox, raw=mail(headers={"List-Id": "<x.example.org>"}))
    assert kept.reason == "new_ticket"


def test_our_own_message_ids_are_recognised(settings: Any) -> None:
    settings.EMAIL_MESSAGE_ID_DOMAIN = "mail.enque.example"
    ours = make_message_id()
    assert ours.startswith("<") and ours.endswith("@mail.enque.example>")
    assert ours != make_message_id()
    assert is_own_message_id(ours) and is_own_message_id(ours.strip("<>"))
    assert not is_own_message_id("abc@mail.enque.example.evil.test")


def dsn(recipient: str, original_id: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: support@acme.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        "Diagnostic-Code: smtp; 552 mailbox full\r\n\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: support@acme.test\r\nMessage-ID: <{original_id}>\r\n\r\nWe are on it.\r\n"
        "--b--\r\n"
    ).encode()


def test_a_bounce_notes_the_ticket_and_flags_the_customer_until_they_write_again(
    mailbox: MailboxConnection,
) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    ours = make_message_id().strip("<>")
    EmailTicketMapping.objects.create(
        workspace=mailbox.workspace,
        mailbox=mailbox,
        ticket=opened.ticket,
        direction=MailDirection.OUTBOUND,
        message_id=ours,
    )

    bounce = ingest_raw_email(mailbox=mailbox, raw=dsn("carol@customer.test", ours))

    assert (bounce.status, bounce.reason, bounce.ticket) == ("processed", "bounce", opened.ticket)
    assert bounce.comment.is_internal and bounce.comment.author_type == "system"
    assert "Delivery to carol@customer.test failed: 5.2.2 smtp; 552 mailbox full" in (
        bounce.comment.body_text
    )
    assert Ticket.objects.count() == 1
    carol = Customer.objects.get(email="carol@customer.test")
    assert carol.email_bounced_at is not None

    ingest_raw_email(mailbox=mailbox, raw=mail(in_reply_to=opened.message_id))
    carol.refresh_from_db()
    assert carol.email_bounced_at is None


def test_a_delay_report_is_not_a_bounce(mailbox: MailboxConnection) -> None:
    opened = ingest_raw_email(mailbox=mailbox, raw=mail())
    raw = dsn("carol@customer.test", opened.message_id).replace(
        b"Action: failed", b"Action: delayed"
    )

    report = ingest_raw_email(mailbox=mailbox, raw=raw)

    assert (report.status, report.reason) == ("ignored", "delivery_status:delayed")
    assert Customer.objects.get(email="carol@customer.test").email_bounced_at is None


# --- Forwarded by an agent, attachments --------------------------------------------------------


def test_mail_an_agent_forwarded_in_belongs_to_the_original_sender(
    mailbox: MailboxConnection, bob: Agent
) -> None:
    raw = mail(
        sender="Bob Agent <bob@a.test>",
        subject="Fwd: Invoice question",
        text=(
            "FYI\n\nBegin forwarded message:\n\nFrom: Gina Green <gina@greenhouse.test>\n"
            "Subject: Invoice question\nDate: 3 June 2024\n\nWhy is my invoice doubled?\n"
        ),
    )

    inbound = ingest_raw_email(mailbox=mailbox, raw=raw)

    assert inbound.reason == "forwarded"
    ticket = inbound.ticket
    assert (ticket.customer.email, ticket.customer.name) == ("gina@greenhouse.test", "Gina Green")
    assert ticket.subject == "Invoice question"
    assert "Why is my invoice doubled?" in inbound.comment.body_text
    note = Comment.objects.get(ticket=ticket, is_internal=True)
    assert "by Bob Agent <bob@a.test>" in note.body_text


def test_attachments_are_stored_hashed_and_sniffed(mailbox: MailboxConnection) -> None:
    inbound = ingest_raw_email(mailbox=mailbox, raw=mail(attachment=("../../shot?.png", PNG)))

    attachment = TicketAttachment.objects.get()
    assert (attachment.ticket, attachment.comment) == (inbound.ticket, inbound.comment)
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "shot_.png",
        "image/png",
        len(PNG),
    )
    with attachment.file.open("rb") as handle:
        assert handle.read() == PNG


# --- Mail with no mailbox ---------------------------------------------------------------------


def test_mail_with_no_mailbox_dedupes_per_workspace(
    mailbox: MailboxConnection, mailbox_b: MailboxConnection
) -> None:
    workspace = mailbox.workspace
    raw = mail()

    first = ingest_raw_email(mailbox=None, workspace=workspace, raw=raw)
    again = ingest_raw_email(mailbox=None, workspace=workspace, raw=raw)
    elsewhere = ingest_raw_email(mailbox=None, workspace=mailbox_b.workspace, raw=raw)

    assert (first.status, first.reason, first.mailbox_id) == ("processed", "new_ticket", None)
    assert first.ticket.mailbox_id is None and first.ticket.priority == "normal"
    assert again.was_duplicate and again.pk == first.pk
    # Another workspace's copy is that workspace's own message.
    assert not elsewhere.was_duplicate and elsewhere.workspace_id == mailbox_b.workspace_id
    assert InboundEmail.objects.filter(workspace=workspace).count() == 1
    assert Ticket.objects.filter(workspace=workspace).count() == 1
    # A mailbox of the workspace receiving it too is the cross-mailbox duplicate: one ticket.
    through_mailbox = ingest_raw_email(mailbox=mailbox, raw=raw)
    assert (through_mailbox.reason, through_mailbox.ticket_id) == (
        "duplicate_message",
        first.ticket_id,
    )
    with pytest.raises(ValueError, match="needs its workspace"):
        ingest_raw_email(mailbox=None, raw=raw)
    with pytest.raises(ValueError, match="another workspace"):
        ingest_raw_email(mailbox=mailbox, workspace=mailbox_b.workspace, raw=raw)


def test_deleting_two_mailboxes_that_received_one_message_keeps_both_rows(
    mailbox: MailboxConnection,
) -> None:
    # Their rows both lose their mailbox on delete: that must not collide with the dedupe of
    # mail that was received without one.
    other = MailboxConnection.objects.create(
        workspace=mailbox.workspace, provider="imap", email_address="sales@acme.test"
    )
    raw = mail()
    ingest_raw_email(mailbox=mailbox, raw=raw)
    ingest_raw_email(mailbox=other, raw=raw)

    mailbox.delete()
    other.delete()

    rows = InboundEmail.objects.filter(workspace=other.workspace)
    assert rows.count() == 2
    assert {(r.mailbox_id, r.received_without_mailbox) for r in rows} == {(None, False)}
    # An upload of the same message afterwards is its own, mailbox-less, copy.
    uploaded = ingest_raw_email(mailbox=None, workspace=other.workspace, raw=raw)
    assert uploaded.received_without_mailbox and not uploaded.was_duplicate


# --- Batches -----------------------------------------------------------------------------------


def test_a_batch_is_stored_first_then_each_message_processed_on_its_own(
    mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = ingest_raw_email(mailbox=mailbox, raw=mail(subject="Already here"))
    opening = mail(subject="Printer on fire")
    bad = b"\x00\x01 no headers at all"
    reply = mail(subject="Re: Printer on fire", in_reply_to=mid(opening))
    statuses_when_processing_began: list[list[str]] = []
    real_decide = pipeline._Processor.decide

    def decide(self: Any, verdict: Any) -> Any:
        statuses_when_processing_began.append(
            list(InboundEmail.objects.exclude(pk=stored.pk).values_list("status", flat=True))
        )
        return real_decide(self, verdict)

    monkeypatch.setattr(pipeline._Processor, "decide", decide)

    rows = ingest_many(
        mailbox,
        [
            (opening, "p-1"),
            (bad, "p-2"),
            (opening, ""),  # the batch holds it twice
            (reply, "p-3"),
            (mail(message_id=stored.message_id, subject="Already here"), ""),
        ],
    )

    # Every row of the batch was stored, and claimed, before the first was processed.
    assert statuses_when_processing_began[0] == ["processing"] * 3
    assert [(r.status, r.reason, r.was_duplicate) for r in rows] == [
        ("processed", "new_ticket", False),
        ("failed", "no_sender", False),
        ("processed", "new_ticket", True),
        ("processed", "reply", False),
        ("processed", "new_ticket", True),
    ]
    assert rows[2].pk == rows[0].pk and rows[4].pk == stored.pk
    # The bad message failed alone; the reply after it threaded onto the ticket before it.
    assert rows[3].ticket_id == rows[0].ticket_id
    assert rows[0].provider_message_id == "p-1"
    assert InboundEmail.objects.count() == 4 and Ticket.objects.count() == 2
    for row in rows:
        db = InboundEmail.objects.get(pk=row.pk)
        assert (db.status, db.reason, db.ticket_id, db.comment_id, db.attempts) == (
            row.status,
            row.reason,
            row.ticket_id,
            row.comment_id,
            row.attempts,
        )


def test_a_batch_reads_the_workspace_lookups_once(
    mailbox: MailboxConnection, alice: Agent, bob: Agent
) -> None:
    def ingest(count: int) -> list[str]:
        messages = [
            (mail(sender="Dan <dan@customer.test>", subject=f"No. {n}"), "") for n in range(count)
        ]
        with CaptureQueriesContext(connection) as queries:
            rows = ingest_many(mailbox, messages)
        assert {row.reason for row in rows} == {"new_ticket"}
        return [q["sql"] for q in queries.captured_queries]

    ingest(1)  # Dan is a customer from now on.
    two, six = ingest(2), ingest(6)

    def reads(sql: list[str], table: str) -> int:
        return sum(1 for q in sql if q.startswith("SELECT") and f'FROM "{table}"' in q)

    for queries in (two, six):
        # Once per page: what is stored already, one INSERT for the raw rows; then in the
        # page's transaction the rows locked, the mappings its thread ids name, the
        # senders' customers, the mailbox addresses, the agents — and at its end one
        # INSERT for the mappings and one UPDATE for the outcomes.
        assert reads(queries, "integrations_inboundemail") == 2
        assert reads(queries, "integrations_emailticketmapping") == 1
        assert reads(queries, "integrations_mailboxconnection") == 1
        assert reads(queries, "workspaces_agent") == 1
        assert reads(queries, "workspaces_customer") == 1
        assert sum(q.startswith('INSERT INTO "integrations_inboundemail"') for q in queries) == 1
        assert (
            sum(q.startswith('INSERT INTO "integrations_emailticketmapping"') for q in queries) == 1
        )
        assert sum(q.startswith('UPDATE "integrations_inboundemail"') for q in queries) == 1
    # Per message: its savepoint and ticket_create's (SAVEPOINT + RELEASE each), the ticket
    # number, the ticket, its body, its comment, its history row: 9.
    per_message = (len(six) - len(two)) / 4
    assert per_message == 9, per_message


# --- Failure and replay ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_real_database_error_mid_processing_leaves_the_raw_message_and_replay_works(
    mailbox: MailboxConnection,
) -> None:
    """Not a Python exception standing in for the database: the database itself rejects a
    statement of the processing transaction (on PostgreSQL that aborts the transaction),
    after the raw row was committed."""
    raw = mail(attachment=("shot.png", PNG))

    def ticket_insert_fails(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith('INSERT INTO "tickets_ticket" '):
            return execute("SELECT * FROM enque_this_table_does_not_exist", (), many, context)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(ticket_insert_fails):
        inbound = ingest_raw_email(mailbox=mailbox, raw=raw)

    assert (inbound.status, inbound.reason, inbound.attempts) == ("failed", "error", 1)
    assert "enque_this_table_does_not_exist" in inbound.error
    stored = InboundEmail.objects.get()
    assert (stored.status, stored.error) == ("failed", inbound.error)
    with default_storage.open(stored.raw.name, "rb") as handle:
        assert handle.read() == raw
    # Everything the processing wrote is gone: customer, attachment row and file.
    assert not Ticket.objects.exists() and not Customer.objects.exists()
    assert not TicketAttachment.objects.exists() and stored_files("attachments") == []

    out = StringIO()
    call_command("reprocess_email", "--id", str(stored.pk), stdout=out)

    stored.refresh_from_db()
    assert (stored.status, stored.reason, stored.attempts) == ("processed", "new_ticket", 2)
    assert f"inbound #{stored.pk} processed: new_ticket → ticket #1" in out.getvalue()
    assert Ticket.objects.count() == 1 and TicketAttachment.objects.count() == 1
    assert EmailTicketMapping.objects.get().ticket_id == stored.ticket_id


# --- Failure and replay ------------------------------------------------------------------------


def test_a_database_failure_mid_ingest_keeps_the_raw_message_and_reprocess_replays_it(
    mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ticket_create = pipeline.ticket_create

    def database_down(**kwargs: Any) -> Ticket:
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(pipeline, "ticket_create", database_down)
    raw = mail(attachment=("shot.png", PNG))

    inbound = ingest_raw_email(mailbox=mailbox, raw=raw)

    assert (inbound.status, inbound.reason, inbound.attempts) == ("failed", "error", 1)
    assert inbound.error.startswith("DatabaseError: server closed the connection")
    assert "database_down" in inbound.error  # the traceback summary
    assert inbound.ticket is None and not Ticket.objects.exists()
    # Nothing half-done is left: no attachment row, no attachment file.
    assert not TicketAttachment.objects.exists()
    assert stored_files("attachments") == []
    with default_storage.open(inbound.raw.name, "rb") as handle:
        assert handle.read() == raw
    # Ingesting the same message again does not hide the failure nor retry it silently.
    assert ingest_raw_email(mailbox=mailbox, raw=raw).status == "failed"

    monkeypatch.setattr(pipeline, "ticket_create", real_ticket_create)
    out = StringIO()
    call_command("reprocess_email", "--failed", stdout=out)

    inbound.refresh_from_db()
    assert (inbound.status, inbound.reason, inbound.attempts) == ("processed", "new_ticket", 2)
    assert inbound.error == ""
    assert f"inbound #{inbound.pk} processed: new_ticket → ticket #" in out.getvalue()
    assert Ticket.objects.count() == 1 and TicketAttachment.objects.count() == 1

    # Idempotent: a second replay finds nothing, and --id on a processed one changes nothing.
    out = StringIO()
    call_command("reprocess_email", "--failed", stdout=out)
    call_command("reprocess_email", "--id", str(inbound.pk), stdout=out)
    assert "Nothing to reprocess." in out.getvalue()
    assert Ticket.objects.count() == 1 and Comment.objects.count() == 1


def test_a_failure_after_the_ticket_was_written_rolls_all_of_it_back(
    mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mapping_fails(self: Any, ticket: Ticket, comment: Comment | None) -> None:
        raise DatabaseError("deadlock detected")

    monkeypatch.setattr(pipeline._Processor, "map", mapping_fails)

    inbound = ingest_raw_email(mailbox=mailbox, raw=mail(attachment=("a.png", PNG)))

    assert inbound.status == "failed"
    assert not Ticket.objects.exists() and not Customer.objects.exists()
    assert not TicketAttachment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_message_failing_mid_page_rolls_back_alone_and_publishes_nothing(
    mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real commits (transaction=True): the page is one transaction with a savepoint per
    # message, and on-commit work runs only for what the page committed.
    from tickets import hooks

    changes: list[hooks.TicketChange] = []
    # A copy of the global listener list, restored after the test whatever happens.
    monkeypatch.setattr(hooks, "_listeners", [*hooks._listeners])
    hooks.subscribe(changes.append)
    real_map = pipeline._Processor.map

    def map_fails_for_the_broken_one(self: Any, ticket: Ticket, comment: Comment | None) -> None:
        if ticket.subject == "Broken one":
            # After its customer, ticket, comment and attachment were written.
            raise DatabaseError("deadlock detected")
        real_map(self, ticket, comment)

    monkeypatch.setattr(pipeline._Processor, "map", map_fails_for_the_broken_one)
    first = mail(subject="First one", sender="first@customer.test")
    reply = mail(subject="Re: First one", sender="first@customer.test", in_reply_to=mid(first))
    rows = ingest_many(
        mailbox,
        [
            (first, "p-1"),
            (mail(subject="Broken one", sender="broken@customer.test",
                  attachment=("a.png", PNG)), "p-2"),
            (reply, "p-3"),
        ],
    )  # fmt: skip

    assert [(r.status, r.reason) for r in rows] == [
        ("processed", "new_ticket"),
        ("failed", rows[1].reason),
        ("processed", "reply"),
    ]
    assert "deadlock detected" in InboundEmail.objects.get(pk=rows[1].pk).error
    # Nothing of the broken message stayed: no ticket, customer or attachment.
    assert list(Ticket.objects.values_list("subject", flat=True)) == ["First one"]
    assert not Customer.objects.filter(email="broken@customer.test").exists()
    assert not TicketAttachment.objects.exists()
    assert rows[2].ticket_id == rows[0].ticket_id
    # Its raw message is kept for a replay, which works once the fault is gone.
    monkeypatch.setattr(pipeline._Processor, "map", real_map)
    replayed = process_inbound_email(InboundEmail.objects.get(pk=rows[1].pk))
    assert replayed.status == "processed"
    assert Ticket.objects.filter(subject="Broken one").count() == 1
    # Listeners heard the committed messages once each, and nothing of the rolled-back one.
    created = [c for c in changes if c.type == "ticket.created"]
    assert [c.ticket_id for c in created] == [rows[0].ticket_id, replayed.ticket_id]
    assert [c.ticket_id for c in changes if c.type == "comment.created"] == [rows[0].ticket_id]


class WorkerKilled(BaseException):
    """The process dies mid-processing: nothing in the pipeline gets to record it."""


def test_a_message_left_processing_by_a_crashed_worker_is_replayed(
    mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = mail()

    def killed(self: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(pipeline._Processor, "run", killed)
    with pytest.raises(WorkerKilled):
        ingest_raw_email(mailbox=mailbox, raw=raw)
    monkeypatch.undo()
    # The raw row was committed before processing started, and is left claimed.
    inbound = InboundEmail.objects.get()
    assert (inbound.status, inbound.attempts) == ("processing", 1)
    with default_storage.open(inbound.raw.name, "rb") as handle:
        assert handle.read() == raw
    # Fetched again meanwhile: already there, and not processed twice.
    again = ingest_raw_email(mailbox=mailbox, raw=raw)
    assert again.was_duplicate and again.status == "processing"
    InboundEmail.objects.filter(pk=inbound.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    # A fresh "processing" row belongs to a live worker: --failed leaves it alone.
    fresh = ingest_raw_email(mailbox=mailbox, raw=mail())
    InboundEmail.objects.filter(pk=fresh.pk).update(status="processing", ticket=None)

    call_command("reprocess_email", "--failed", stdout=StringIO())

    inbound.refresh_from_db()
    fresh.refresh_from_db()
    assert (inbound.status, inbound.attempts) == ("processed", 2)
    assert Ticket.objects.filter(pk=inbound.ticket_id).exists()
    assert fresh.status == "processing"


def test_process_claims_a_message_once(mailbox: MailboxConnection) -> None:
    inbound = ingest_raw_email(mailbox=mailbox, raw=mail())

    again = process_inbound_email(inbound)

    assert again.status == "processed" and again.attempts == 1
    assert Ticket.objects.count() == 1


# --- Commands ----------------------------------------------------------------------------------


def test_ingest_email_reports_each_file_and_goes_on_after_a_bad_one(
    mailbox: MailboxConnection, tmp_path: Path
) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(mail())
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"\x00\x01\x02 no headers at all")
    missing = tmp_path / "missing.eml"
    out = StringIO()

    with pytest.raises(CommandError, match="2 of 4 messages failed"):
        call_command(
            "ingest_email",
            "--mailbox",
            "SUPPORT@acme.test",
            str(bad),
            str(missing),
            str(good),
            str(good),
            stdout=out,
        )

    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"{bad}: inbound #") and "failed: no_sender" in lines[0]
    assert lines[1].startswith(f"{missing}: unreadable")
    assert "processed: new_ticket → ticket #1" in lines[2]
    assert "(already received)" in lines[3]


def test_ingest_email_needs_a_known_mailbox(mailbox: MailboxConnection, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No mailbox"):
        call_command("ingest_email", "--mailbox", "nobody@acme.test", str(tmp_path / "x.eml"))


# --- Two workers, one message (PostgreSQL) -----------------------------------------------------


def run_together(count: int, work: Callable[[], InboundEmail]) -> list[Any]:
    start = threading.Barrier(count)
    results: list[Any] = []

    def worker() -> None:
        try:
            start.wait(timeout=30)
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_ingesting_the_same_message_make_one_ticket(
    mailbox: MailboxConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both workers look for the message before either stores it: the unique constraint
    # decides, and the loser gets the winner's row.
    real_existing = pipeline._existing_rows
    looked = threading.local()

    def existing_after_the_first_look(*args: Any) -> list[InboundEmail]:
        if not getattr(looked, "once", False):
            looked.once = True
            return []
        return real_existing(*args)

    monkeypatch.setattr(pipeline, "_existing_rows", existing_after_the_first_look)
    raw = mail(attachment=("a.png", PNG))

    results = run_together(2, lambda: ingest_raw_email(mailbox=mailbox, raw=raw))

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert {r.pk for r in results} == {InboundEmail.objects.get().pk}
    assert Ticket.objects.count() == 1 and TicketAttachment.objects.count() == 1
    assert InboundEmail.objects.get().status == "processed"
    # The loser's copy of the raw bytes is gone again.
    assert len(stored_files("inbound")) == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_ingesting_the_same_mailboxless_message_make_one_ticket(
    workspace_a: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As above, through inbound_no_mailbox_message_id_unique (workspace, Message-ID).
    real_existing = pipeline._existing_rows
    looked = threading.local()

    def existing_after_the_first_look(*args: Any) -> list[InboundEmail]:
        if not getattr(looked, "once", False):
            looked.once = True
            return []
        return real_existing(*args)

    monkeypatch.setattr(pipeline, "_existing_rows", existing_after_the_first_look)
    raw = mail(attachment=("a.png", PNG))

    results = run_together(
        2, lambda: ingest_raw_email(mailbox=None, workspace=workspace_a, raw=raw)
    )

    assert not [r for r in results if isinstance(r, BaseException)], results
    row = InboundEmail.objects.get()
    assert {r.pk for r in results} == {row.pk} and row.mailbox_id is None
    assert sorted(r.was_duplicate for r in results) == [False, True]
    assert row.status == "processed"
    assert Ticket.objects.count() == 1 and TicketAttachment.objects.count() == 1
    assert EmailTicketMapping.objects.count() == 1
    assert len(stored_files("inbound")) == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_many_workers_racing_on_several_messages_make_one_ticket_each(
    mailbox: MailboxConnection,
) -> None:
    messages = [mail(subject=f"Message {n}") for n in range(4)]

    def ingest_all() -> list[InboundEmail]:
        return [ingest_raw_email(mailbox=mailbox, raw=raw) for raw in messages]

    results = run_together(4, ingest_all)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert InboundEmail.objects.filter(status="processed").count() == 4
    assert Ticket.objects.count() == 4
    assert EmailTicketMapping.objects.count() == 4
