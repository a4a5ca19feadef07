"""Outbound mail: the reply's MIME, the SMTP round trip, retries with backoff, permanent
failures made visible, the automatic-mail cap, the sweep's recoveries, scheduled replies.

Workspace A's mailbox support@acme.test sends through a real SMTP server on 127.0.0.1
(aiosmtpd, integrations/tests/smtp_server.py), with STARTTLS and a login unless a test
says otherwise. Carol (carol@customer.test) writes in; Alice answers.
"""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from enque.celery import app as celery_app
from enque.testing import postgres_only
from integrations import outbound
from integrations.errors import PermanentMailError, ReconnectNeeded, TransientMailError
from integrations.inbound import ingest_raw_email
from integrations.mime import is_own_message_id, make_message_id
from integrations.models import (
    EmailTicketMapping,
    InboundEmailStatus,
    MailboxConnection,
    MailDirection,
    OutboundEmail,
    OutboundEmailStatus,
    SyncStatus,
)
from integrations.tests.smtp_server import SMTPServer, smtp_server
from tickets.actors import Actor
from tickets.models import Comment, CommentVia, Ticket
from tickets.services import (
    attachment_upload,
    comment_create,
    comment_schedule,
    scheduled_comments_send_due,
    ticket_create,
)
from workspaces.models import Agent, Customer, Workspace

pytestmark = [
    pytest.mark.django_db,
    # aiosmtpd warns (from its thread) on every connection of the plain-text login test.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

SMTP_LOGIN = ("support@acme.test", "app-password-1")
PDF = b"%PDF-1.7\n" + b"outbound test attachment\n" * 40


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _memory_storage(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture(autouse=True)
def eager_tasks() -> Iterator[None]:
    """Tasks enqueued on commit run inline, as a worker would run them."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def hooks_run(django_capture_on_commit_callbacks: Any) -> Callable[[], AbstractContextManager]:
    """``with hooks_run(): ...``: the block's on-commit work runs at its end, as on commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def server(settings: Any) -> Iterator[SMTPServer]:
    with smtp_server(security="starttls", login=SMTP_LOGIN) as running:
        settings.MAIL_ALLOW_PRIVATE_HOSTS = True  # the server is on loopback
        settings.MAIL_TLS_CA_FILE = running.ca_file
        yield running


@pytest.fixture
def mailbox(workspace_a: Workspace, server: SMTPServer) -> MailboxConnection:
    return MailboxConnection.objects.create(
        workspace=workspace_a,
        provider="imap",
        email_address="support@acme.test",
        display_name="Acme Support",
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="starttls",
        smtp_username=SMTP_LOGIN[0],
        smtp_password=SMTP_LOGIN[1],
    )


def customer_mail(
    *,
    subject: str = "Printer on fire",
    text: str = "Our printer is on fire.",
    sender: str = "Carol Customer <carol@customer.test>",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] = (),
    reply_to: str | None = None,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = "support@acme.test"
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(timezone.now())
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain="mail.customer.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content(text)
    return msg.as_bytes()


@pytest.fixture
def email_ticket(mailbox: MailboxConnection) -> Ticket:
    """Carol's ticket, opened by her mail to support@acme.test."""
    inbound = ingest_raw_email(
        mailbox=mailbox, raw=customer_mail(message_id="<first@mail.customer.test>")
    )
    assert inbound.status == InboundEmailStatus.PROCESSED
    return inbound.ticket


def reply(ticket: Ticket, agent: Agent, text: str = "We are on our way.", **kwargs: Any) -> Comment:
    return comment_create(ticket=ticket, actor=Actor.for_agent(agent), body_text=text, **kwargs)


def text_of(part: EmailMessage) -> str:
    return part.get_content().replace("\r\n", "\n")


def notes(ticket: Ticket) -> list[str]:
    return list(
        Comment.objects.filter(ticket=ticket, is_internal=True, author_type="system")
        .order_by("pk")
        .values_list("body_text", flat=True)
    )


# --- Subject ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer on fire", "Re: Printer on fire [#7]"),
        ("Re: Printer on fire", "Re: Printer on fire [#7]"),
        ("RE: Re: AW: Printer on fire [#7]", "Re: Printer on fire [#7]"),
        ("Re: [#7] Printer   on fire", "Re: Printer on fire [#7]"),
        ("Printer on fire [#3]", "Re: Printer on fire [#7]"),
        ("", "Re: [#7]"),
    ],
)
def test_the_subject_carries_one_re_and_one_ticket_token(subject: str, expected: str) -> None:
    assert outbound.reply_subject(subject, 7) == expected


# --- MIME -------------------------------------------------------------------------------------


def test_a_reply_is_composed_with_threading_headers_signature_and_attachments(
    mailbox: MailboxConnection, alice: Agent, workspace_a: Workspace
) -> None:
    first = ingest_raw_email(
        mailbox=mailbox,
        raw=customer_mail(
            message_id="<first@mail.customer.test>", reply_to="Carol <carol.home@customer.test>"
        ),
    )
    ticket = first.ticket
    # Carol answers once more (threaded by the subject token): the reply answers that mail.
    second = ingest_raw_email(
        mailbox=mailbox,
        raw=customer_mail(
            subject=f"Re: Printer on fire [#{ticket.number}]",
            message_id="<second@mail.customer.test>",
            reply_to="carol.home@customer.test",
        ),
    )
    assert second.ticket_id == ticket.pk
    alice.signature = "<p>Alice Admin<br><b>Acme</b> Support</p>"
    alice.save(update_fields=["signature"])
    attachment = attachment_upload(
        workspace=workspace_a,
        actor=Actor.for_agent(alice),
        file=SimpleUploadedFile("Quote é €.pdf", PDF),
    )
    comment = reply(ticket, alice, "Here is the quote.\nBest regards", attachments=[attachment])

    row = outbound.outbound_for_comment(comment)
    assert row.status == OutboundEmailStatus.PENDING
    msg = email.message_from_bytes(outbound.compose(row).mime, policy=policy.default)

    assert msg["From"].addresses[0].display_name == "Alice Admin via Acme Support"
    assert msg["From"].addresses[0].addr_spec == "support@acme.test"
    assert [a.addr_spec for a in msg["To"].addresses] == ["carol.home@customer.test"]
    assert msg["Subject"] == f"Re: Printer on fire [#{ticket.number}]"
    assert msg["Message-ID"] == f"<{row.message_id}>"
    assert is_own_message_id(msg["Message-ID"])
    assert msg["In-Reply-To"] == "<second@mail.customer.test>"
    assert msg["References"] == "<first@mail.customer.test> <second@mail.customer.test>"
    assert msg["Auto-Submitted"] is None
    assert msg["X-Auto-Response-Suppress"] is None
    assert msg["Date"]

    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(("plain",))
    assert text_of(body).startswith("Here is the quote.\nBest regards\n\n-- \nAlice Admin")
    html_part = msg.get_body(("html",))
    assert html_part.get_content_type() == "text/html"
    assert "<b>Acme</b> Support" in html_part.get_content()
    assert msg.get_body(("related", "html", "plain")).get_content_maintype() == "text"
    [attached] = list(msg.iter_attachments())
    assert attached.get_filename() == "Quote é €.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == PDF
    # Every line fits SMTP's limits: 7-bit transfer encodings only.
    assert all(b < 0x80 for b in outbound.compose(row).mime)


def test_the_workspace_signature_stands_in_and_automatic_mail_says_so(
    mailbox: MailboxConnection, email_ticket: Ticket, workspace_a: Workspace
) -> None:
    workspace_a.default_signature = "The Acme support team"
    workspace_a.save(update_fields=["default_signature"])
    comment = comment_create(
        ticket=email_ticket,
        actor=Actor.for_automation(1),
        body_text="We got your message.",
        via=CommentVia.AUTOMATION,
    )

    row = outbound.outbound_for_comment(comment)
    assert row.is_automatic
    msg = email.message_from_bytes(outbound.compose(row).mime, policy=policy.default)
    assert msg["From"].addresses[0].display_name == "Acme Support"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert text_of(msg.get_body(("plain",))).endswith("-- \nThe Acme support team\n")
    assert "<p>The Acme support team</p>" in msg.get_body(("html",)).get_content()


def test_a_microsoft_mailbox_keeps_large_attachments_out_of_the_mime(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent, workspace_a: Workspace
) -> None:
    mailbox.provider = "microsoft"
    mailbox.save(update_fields=["provider"])
    big = attachment_upload(
        workspace=workspace_a,
        actor=Actor.for_agent(alice),
        file=SimpleUploadedFile("big.bin", b"\x00" * (outbound.GRAPH_MIME_ATTACHMENT_LIMIT + 1)),
    )
    small = attachment_upload(
        workspace=workspace_a, actor=Actor.for_agent(alice), file=SimpleUploadedFile("a.pdf", PDF)
    )
    comment = reply(email_ticket, alice, attachments=[big, small])

    composed = outbound.compose(outbound.outbound_for_comment(comment))
    msg = email.message_from_bytes(composed.mime, policy=policy.default)
    assert [a.get_filename() for a in msg.iter_attachments()] == ["a.pdf"]
    assert composed.large_attachments == [big]


def test_references_keep_the_first_id_and_the_newest_ones(
    mailbox: MailboxConnection, email_ticket: Ticket
) -> None:
    for n in range(30):
        EmailTicketMapping.objects.create(
            workspace_id=email_ticket.workspace_id,
            mailbox=mailbox,
            ticket=email_ticket,
            direction=MailDirection.OUTBOUND,
            message_id=f"ours{n}@enque.local",
        )
    in_reply_to, references = outbound.thread_ids(email_ticket)
    assert in_reply_to == "first@mail.customer.test"  # the customer's newest mail
    assert len(references) == outbound.MAX_REFERENCES
    assert references[0] == "ours0@enque.local"
    assert references[-1] == "first@mail.customer.test"
    assert references[-2] == "ours29@enque.local"


# --- The round trip ---------------------------------------------------------------------------


def test_an_api_reply_is_mailed_once_and_the_answer_threads_back(
    client_for: Callable[[Agent], APIClient],
    alice: Agent,
    email_ticket: Ticket,
    mailbox: MailboxConnection,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
) -> None:
    with hooks_run():
        response = client_for(alice).post(
            f"/v1/tickets/{email_ticket.number}/reply",
            {"body": "Please unplug it and step back."},
            format="json",
        )
    assert response.status_code == 201, response.json()

    [received] = server.messages
    row = OutboundEmail.objects.get(comment_id=response.json()["id"])
    assert row.status == OutboundEmailStatus.SENT
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.provider_message_id.startswith("2.0.0 Ok: queued as")
    assert received.envelope_from == "support@acme.test"
    assert received.recipients == ["carol@customer.test"]
    assert received.login == SMTP_LOGIN[0]
    assert received.tls
    sent = received.parsed
    assert sent["Message-ID"] == f"<{row.message_id}>"
    assert sent["In-Reply-To"] == "<first@mail.customer.test>"
    assert "Please unplug it" in sent.get_body(("plain",)).get_content()
    assert EmailTicketMapping.objects.filter(
        ticket=email_ticket, direction=MailDirection.OUTBOUND, message_id=row.message_id
    ).exists()

    # Carol answers from her mail client: a new subject, only the headers thread it.
    answer = ingest_raw_email(
        mailbox=mailbox,
        raw=customer_mail(
            subject="unplugged",
            text="Done, it stopped.",
            in_reply_to=sent["Message-ID"],
            references=[sent["References"], sent["Message-ID"]],
        ),
    )
    assert answer.status == InboundEmailStatus.PROCESSED
    assert answer.ticket_id == email_ticket.pk
    assert answer.comment.body_text.startswith("Done, it stopped.")
    assert Ticket.objects.filter(workspace=email_ticket.workspace).count() == 1

    # Sending again (a redelivered task, the sweep) sends nothing.
    assert outbound.send_outbound(row.pk) is None
    assert outbound.send_due() == 0
    assert len(server.messages) == 1


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_each_transport_security_delivers(
    security: str, settings: Any, workspace_a: Workspace, customer_a: Customer, alice: Agent
) -> None:
    with smtp_server(security=security, login=SMTP_LOGIN) as running:
        settings.MAIL_ALLOW_PRIVATE_HOSTS = True
        settings.MAIL_TLS_CA_FILE = running.ca_file
        box = MailboxConnection.objects.create(
            workspace=workspace_a,
            provider="imap",
            email_address="support@acme.test",
            smtp_host="127.0.0.1",
            smtp_port=running.port,
            smtp_security=security,
            smtp_username=SMTP_LOGIN[0],
            smtp_password=SMTP_LOGIN[1],
        )
        ticket = ticket_create(
            workspace=workspace_a,
            actor=Actor.for_customer(customer_a),
            subject="Hello",
            customer=customer_a,
            body_text="Hi",
            channel="email",
            mailbox=box,
        )
        row = outbound.outbound_for_comment(reply(ticket, alice))
        assert outbound.send_outbound(row.pk) == OutboundEmailStatus.SENT
        [received] = running.messages
    assert received.login == SMTP_LOGIN[0]
    assert received.tls is (security != "none")
    assert received.parsed["Message-ID"] == f"<{row.message_id}>"


def test_a_certificate_that_does_not_verify_is_a_permanent_failure(
    settings: Any, mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent
) -> None:
    settings.MAIL_TLS_CA_FILE = ""  # the test server's certificate is self-signed
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    assert outbound.send_outbound(row.pk) == OutboundEmailStatus.FAILED
    row.refresh_from_db()
    assert "certificate" in row.last_error


def test_a_private_smtp_host_is_refused_unless_allowed(
    settings: Any, mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent
) -> None:
    settings.MAIL_ALLOW_PRIVATE_HOSTS = False
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    assert outbound.send_outbound(row.pk) == OutboundEmailStatus.FAILED
    row.refresh_from_db()
    assert "private, loopback or link-local" in row.last_error


# --- Failures ---------------------------------------------------------------------------------


def test_backoff_grows_and_honours_retry_after() -> None:
    minutes = [outbound.backoff(n).total_seconds() / 60 for n in range(1, 6)]
    assert minutes == [1, 5, 15, 60, 240]
    assert outbound.backoff(1, retry_after=600) == timedelta(minutes=10)
    assert outbound.backoff(3, retry_after=30) == timedelta(minutes=15)


def test_a_transient_failure_is_retried_with_backoff_then_sent(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
) -> None:
    server.reject_next(451, "4.3.0 Mailbox busy, try later")
    with hooks_run():
        comment = reply(email_ticket, alice)
    row = OutboundEmail.objects.get(comment=comment)
    assert row.status == OutboundEmailStatus.PENDING
    assert row.attempts == 1
    assert "451" in row.last_error
    wait = row.next_attempt_at - row.updated_at
    assert timedelta(seconds=59) < wait <= timedelta(minutes=1, seconds=1)
    assert server.messages == []

    # Not yet due: the sweep leaves it; a stray task does too.
    assert outbound.send_due(now=row.updated_at + timedelta(seconds=30)) == 0
    assert outbound.send_outbound(row.pk) is None
    assert outbound.send_due(now=row.next_attempt_at + timedelta(seconds=1)) == 1

    row.refresh_from_db()
    assert row.status == OutboundEmailStatus.SENT
    assert row.attempts == 2
    assert row.last_error == ""
    assert len(server.messages) == 1
    assert notes(email_ticket) == []


def test_retries_run_out_into_one_visible_failure(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent, server: SMTPServer
) -> None:
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    for _ in range(outbound.MAX_ATTEMPTS):
        server.reject_next(421, "4.7.0 Too many connections")
    now = timezone.now()
    waits = []
    for _ in range(outbound.MAX_ATTEMPTS):
        sent = outbound.send_due(now=now)
        assert sent == 1
        row.refresh_from_db()
        if row.status == OutboundEmailStatus.PENDING:
            waits.append(round((row.next_attempt_at - row.updated_at).total_seconds() / 60))
        now = (row.next_attempt_at or now) + timedelta(seconds=1)
    assert waits == [1, 5, 15, 60, 240]
    assert row.status == OutboundEmailStatus.FAILED
    assert row.attempts == outbound.MAX_ATTEMPTS
    assert f"gave up after {outbound.MAX_ATTEMPTS} attempts" in row.last_error
    assert server.messages == []
    assert outbound.send_due(now=now + timedelta(days=1)) == 0
    [note] = notes(email_ticket)
    assert note.startswith("The reply to carol@customer.test could not be delivered: ")
    assert "421" in note


def test_a_permanent_refusal_fails_at_once_with_one_note(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
) -> None:
    server.reject_next(550, "5.1.1 No such user here")
    with hooks_run():
        comment = reply(email_ticket, alice)
    row = OutboundEmail.objects.get(comment=comment)
    assert row.status == OutboundEmailStatus.FAILED
    assert row.attempts == 1
    assert "550 5.1.1 No such user here" in row.last_error
    assert notes(email_ticket) == [
        f"The reply to carol@customer.test could not be delivered: {row.last_error}"
    ]
    assert outbound.send_due(now=timezone.now() + timedelta(days=1)) == 0
    assert len(notes(email_ticket)) == 1


def test_a_refused_login_marks_the_mailbox_for_reconnection(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
) -> None:
    mailbox.smtp_password = "revoked"
    mailbox.save(update_fields=["smtp_password"])
    with hooks_run():
        comment = reply(email_ticket, alice)
    row = OutboundEmail.objects.get(comment=comment)
    assert row.status == OutboundEmailStatus.FAILED
    assert "refused the login" in row.last_error
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.RECONNECT_NEEDED
    assert "refused the login" in mailbox.last_error
    assert mailbox.last_error_at is not None
    assert len(notes(email_ticket)) == 1
    assert server.messages == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TransientMailError("Graph 503", retry_after=900), OutboundEmailStatus.PENDING),
        (PermanentMailError("Too large"), OutboundEmailStatus.FAILED),
        (ReconnectNeeded("Grant revoked"), OutboundEmailStatus.FAILED),
        (ConnectionResetError("reset by peer"), OutboundEmailStatus.PENDING),
    ],
)
def test_each_error_kind_has_its_outcome(
    error: Exception,
    status: str,
    monkeypatch: pytest.MonkeyPatch,
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
) -> None:
    def failing(outbound_email: OutboundEmail, composed: outbound.Composed) -> str:
        raise error

    monkeypatch.setattr(outbound, "transmit", failing)
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    assert outbound.send_outbound(row.pk) == status
    row.refresh_from_db()
    assert row.status == status
    if isinstance(error, TransientMailError):
        # Retry-After (15 minutes) beats the first backoff step (1 minute).
        assert row.next_attempt_at - row.updated_at >= timedelta(seconds=900)


def test_without_a_mailbox_the_reply_is_recorded_failed(
    ticket_a: Ticket, alice: Agent, hooks_run: Callable[[], AbstractContextManager]
) -> None:
    with hooks_run():
        comment = reply(ticket_a, alice)
    row = OutboundEmail.objects.get(comment=comment)
    assert row.status == OutboundEmailStatus.FAILED
    assert row.last_error == outbound.NO_MAILBOX_REASON
    assert row.to_addresses == ["carol@customer.test"]
    assert row.attempts == 0
    # No note: a workspace that never set up mail would collect one on every reply.
    assert notes(ticket_a) == []
    # The sweep neither retries it nor writes a second row.
    outbound.send_due()
    assert OutboundEmail.objects.count() == 1
    assert OutboundEmail.objects.get().status == OutboundEmailStatus.FAILED


def test_a_mailbox_deactivated_before_the_send_hands_over_to_another(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    workspace_a: Workspace,
) -> None:
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    assert row.mailbox == mailbox
    MailboxConnection.objects.filter(pk=mailbox.pk).update(is_active=False)
    MailboxConnection.objects.create(
        workspace=workspace_a,
        provider="imap",
        email_address="help@acme.test",
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="starttls",
        smtp_username=SMTP_LOGIN[0],
        smtp_password=SMTP_LOGIN[1],
    )
    assert outbound.send_outbound(row.pk) == OutboundEmailStatus.SENT
    row.refresh_from_db()
    assert row.mailbox.email_address == "help@acme.test"
    assert server.messages[0].envelope_from == "help@acme.test"


def test_a_mailbox_deactivated_with_no_other_fails_the_send_visibly(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent, server: SMTPServer
) -> None:
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    MailboxConnection.objects.filter(pk=mailbox.pk).update(is_active=False)
    assert outbound.send_outbound(row.pk) == OutboundEmailStatus.FAILED
    assert notes(email_ticket) == [
        f"The reply to carol@customer.test could not be delivered: {outbound.NO_MAILBOX_REASON}"
    ]
    assert server.messages == []


def test_an_inactive_ticket_mailbox_falls_back_to_another_active_one(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    workspace_a: Workspace,
) -> None:
    spare = MailboxConnection.objects.create(
        workspace=workspace_a,
        provider="imap",
        email_address="help@acme.test",
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="starttls",
        smtp_username=SMTP_LOGIN[0],
        smtp_password=SMTP_LOGIN[1],
    )
    MailboxConnection.objects.filter(pk=mailbox.pk).update(is_active=False)
    email_ticket.refresh_from_db()
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    assert row.mailbox == spare
    assert outbound.send_outbound(row.pk) == OutboundEmailStatus.SENT
    assert server.messages[0].envelope_from == "help@acme.test"


def test_web_tickets_in_a_workspace_without_mailbox_send_nothing(
    workspace_a: Workspace, customer_a: Customer, alice: Agent
) -> None:
    ticket = ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="From the web form",
        customer=customer_a,
        body_text="Hello",
        channel="web",
    )
    assert outbound.outbound_for_comment(reply(ticket, alice)) is None


def test_notes_and_customer_messages_are_never_mailed(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
) -> None:
    with hooks_run():
        reply(email_ticket, alice, "internal only", internal=True)
        comment_create(
            ticket=email_ticket, actor=Actor.for_customer(email_ticket.customer), body_text="Me"
        )
    assert OutboundEmail.objects.count() == 0
    assert server.messages == []


# --- The automatic-mail cap -------------------------------------------------------------------


def test_automatic_mail_is_capped_per_recipient_per_hour(
    settings: Any,
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
    alice: Agent,
) -> None:
    settings.AUTO_REPLY_LIMIT_PER_HOUR = 2
    with hooks_run():
        for n in range(3):
            comment_create(
                ticket=email_ticket,
                actor=Actor.for_automation(1),
                body_text=f"Automatic answer {n}",
                via=CommentVia.AUTOMATION,
            )
    rows = list(OutboundEmail.objects.order_by("pk"))
    assert [r.status for r in rows] == ["sent", "sent", "failed"]
    assert all(r.is_automatic for r in rows)
    assert rows[2].last_error.startswith(outbound.AUTO_LIMIT_REASON)
    assert len(server.messages) == 2
    assert all(m.parsed["Auto-Submitted"] == "auto-replied" for m in server.messages)

    # A person's reply is never capped.
    with hooks_run():
        reply(email_ticket, alice)
    assert len(server.messages) == 3

    # An hour later the address may get automatic mail again.
    OutboundEmail.objects.update(created_at=timezone.now() - timedelta(hours=1, minutes=1))
    with hooks_run():
        comment_create(
            ticket=email_ticket,
            actor=Actor.for_automation(1),
            body_text="Automatic answer 4",
            via=CommentVia.AUTOMATION,
        )
    assert len(server.messages) == 4


# --- The sweep --------------------------------------------------------------------------------


def test_a_send_stuck_in_sending_is_recovered(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent, server: SMTPServer
) -> None:
    row = outbound.outbound_for_comment(reply(email_ticket, alice))
    assert outbound.claim(row.pk)  # a worker claims it, then dies
    assert outbound.send_due() == 0
    OutboundEmail.objects.filter(pk=row.pk).update(
        updated_at=timezone.now() - outbound.STALE_SENDING_AFTER - timedelta(seconds=1)
    )

    assert outbound.send_due() == 1
    row.refresh_from_db()
    assert row.status == OutboundEmailStatus.SENT
    assert row.attempts == 2
    assert len(server.messages) == 1


def test_the_sweep_writes_and_sends_a_reply_whose_listener_never_ran(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent, server: SMTPServer
) -> None:
    # No hooks_run: the process "died" between the commit and the listener.
    comment = reply(email_ticket, alice)
    old = reply(email_ticket, alice, "Yesterday's")
    Comment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert not OutboundEmail.objects.exists()

    assert outbound.send_due() == 1
    row = OutboundEmail.objects.get()
    assert row.comment == comment
    assert row.status == OutboundEmailStatus.SENT
    assert len(server.messages) == 1
    # The ticket's first message (the customer's) and the old reply are not mailed.
    assert outbound.send_due() == 0


def test_the_sweep_leaves_workspaces_without_a_mailbox_alone(
    ticket_a: Ticket, alice: Agent
) -> None:
    # Demo data and workspaces that never set up mail: no row, no failure note per reply.
    reply(ticket_a, alice)
    assert outbound.send_due() == 0
    assert not OutboundEmail.objects.exists()
    assert notes(ticket_a) == []


def test_the_listener_and_the_sweep_write_one_row_per_reply(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent
) -> None:
    comment = reply(email_ticket, alice)
    first = outbound.outbound_for_comment(comment)
    assert outbound.outbound_for_comment(comment) == first
    assert outbound.catch_up_missing() == 0
    assert OutboundEmail.objects.count() == 1
    assert first.message_id != make_message_id()


# --- Scheduled replies ------------------------------------------------------------------------


def test_a_scheduled_reply_is_mailed_once_at_its_time(
    mailbox: MailboxConnection,
    email_ticket: Ticket,
    alice: Agent,
    server: SMTPServer,
    hooks_run: Callable[[], AbstractContextManager],
) -> None:
    send_at = timezone.now() + timedelta(hours=2)
    with hooks_run():
        comment_schedule(
            ticket=email_ticket,
            actor=Actor.for_agent(alice),
            send_at=send_at,
            body_text="Good morning! Any news?",
        )
        assert scheduled_comments_send_due(now=send_at - timedelta(minutes=1)) == 0
    assert server.messages == []

    with hooks_run():
        assert scheduled_comments_send_due(now=send_at + timedelta(seconds=5)) == 1
    with hooks_run():
        assert scheduled_comments_send_due(now=send_at + timedelta(minutes=1)) == 0
        outbound.send_due()
    [received] = server.messages
    assert "Good morning! Any news?" in received.parsed.get_body(("plain",)).get_content()
    assert OutboundEmail.objects.get().status == OutboundEmailStatus.SENT


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_scheduled_replies_go_out_once_under_two_workers(
    mailbox: MailboxConnection, email_ticket: Ticket, alice: Agent, server: SMTPServer
) -> None:
    send_at = timezone.now() + timedelta(minutes=5)
    for n in range(3):
        comment_schedule(
            ticket=email_ticket,
            actor=Actor.for_agent(alice),
            send_at=send_at,
            body_text=f"Scheduled reply {n}",
        )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        # What two beat ticks on two workers do: post due replies (each mailed on commit
        # by the listener), then the outbound sweep — at the same moment.
        try:
            barrier.wait(timeout=10)
            scheduled_comments_send_due(now=send_at + timedelta(seconds=1))
            outbound.send_due(now=send_at + timedelta(seconds=2))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []

    assert Comment.objects.filter(ticket=email_ticket, is_internal=False).count() == 4
    rows = list(OutboundEmail.objects.order_by("pk"))
    assert [r.status for r in rows] == ["sent"] * 3
    assert all(r.attempts == 1 for r in rows)
    messages = server.messages
    assert len(messages) == 3
    bodies = sorted(text_of(m.parsed.get_body(("plain",))).split("\n")[0] for m in messages)
    assert bodies == ["Scheduled reply 0", "Scheduled reply 1", "Scheduled reply 2"]
    assert {m.parsed["Message-ID"] for m in messages} == {f"<{r.message_id}>" for r in rows}
