"""Outbound mail: a public reply becomes an email to the customer, sent once.

The life of one message (an ``OutboundEmail`` row):

1. **Record.** ``on_ticket_change`` listens to ``tickets.hooks`` (after commit). For a public
   reply by an agent, the system or an automation on a ticket that talks by email, it writes
   the row once per comment (a unique constraint; a racing writer gets the winner's row)
   with everything the message needs to thread: our Message-ID, In-Reply-To / References
   from the ticket's ``EmailTicketMapping`` chain, the recipient (the Reply-To of the
   customer's last mail, else their address), the subject with its ``[#123]`` token. An
   email ticket with no usable mailbox, or an automatic message over the hourly cap, gets a
   row that is ``failed`` at once, with its reason in ``last_error``. Otherwise
   ``send_outbound_email`` is enqueued on commit.
2. **Claim.** A sender moves the row ``pending`` → ``sending`` in one compare-and-swap update
   (the sweep: ``select_for_update(skip_locked=True)``) before it talks to any server, so two
   workers, a redelivered task or a re-run never send twice.
3. **Send.** The MIME is built here (``compose``) and handed to SMTP (``integrations.smtp``)
   or to Microsoft Graph (``integrations.microsoft.send.send_mime``).
4. **Record the outcome.** Sent: ``sent`` and an outbound ``EmailTicketMapping``, so the
   customer's answer threads back. A transient failure: back to ``pending`` with the next
   attempt after 1, 5, 15, 60, 240 minutes (or the server's Retry-After, if longer). After the
   last attempt, or at once for a permanent failure: ``failed``, and an internal note on the
   ticket says which address did not get the reply and why — once, since only the one
   ``sending`` → ``failed`` transition writes it.

``send_due_outbound`` (every minute, enque/schedules.py) sends what is due: retries, rows
whose task was lost, and replies of the last 24 hours that never got a row (a crash between
the commit and the listener); it also returns rows a dead worker left in ``sending``.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from enque.errors import EnqueError
from integrations.errors import (
    MailError,
    PermanentMailError,
    ReconnectNeeded,
    TransientMailError,
)
from integrations.inbound.threads import SUBJECT_TOKEN_RE, final_ticket
from integrations.mime import make_message_id, normalise_message_id, parse_address_list
from integrations.models import (
    EmailTicketMapping,
    InboundEmail,
    InboundEmailStatus,
    MailboxConnection,
    MailboxProvider,
    MailDirection,
    OutboundEmail,
    OutboundEmailStatus,
    SyncStatus,
)
from tickets.actors import Actor
from tickets.hooks import TicketChange
from tickets.models import (
    ActorType,
    AuthorType,
    Comment,
    CommentVia,
    Ticket,
    TicketAttachment,
    TicketChannel,
)

logger = logging.getLogger(__name__)

# Waits after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last.
BACKOFF = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 240))
MAX_ATTEMPTS = len(BACKOFF) + 1
# A row in "sending" this long belongs to a worker that died mid-send.
STALE_SENDING_AFTER = timedelta(minutes=15)
# The sweep writes the missing rows of public replies this recent.
CATCH_UP_WINDOW = timedelta(hours=24)
# Rows one sweep sends; the next tick takes the rest.
SWEEP_BATCH = 50
# References carries the thread's first id and its most recent ones, up to this many.
MAX_REFERENCES = 20
# Graph's sendMail takes a MIME message up to 4 MB; larger files go through an upload
# session (integrations.microsoft.send), so they stay out of the MIME.
GRAPH_MIME_ATTACHMENT_LIMIT = 3 * 1024 * 1024
MAX_ERROR_LENGTH = 2000

AUTO_LIMIT_REASON = "automatic reply limit"
NO_MAILBOX_REASON = (
    "No active mailbox to send from: connect a mailbox (or reactivate this ticket's) "
    "in the mail settings."
)
# Mail every client understands: 7-bit transfer encodings (quoted-printable, base64), CRLF.
MIME_POLICY = policy.SMTP.clone(cte_type="7bit")

_REPLY_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|antw|vs|ref)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_TAG_RE = re.compile(r"<[a-z/!][^>]*>", re.I)


# --- 1. Record --------------------------------------------------------------------------


def on_ticket_change(change: TicketChange) -> None:
    """The ``tickets.hooks`` listener: write and enqueue the email of a public reply."""
    if change.type != "comment.created" or change.data.get("internal"):
        return
    if change.data.get("author_type") == AuthorType.CUSTOMER:
        return
    comment = (
        Comment.objects.filter(pk=change.data.get("comment"), workspace_id=change.workspace_id)
        .select_related("ticket__customer", "ticket__mailbox", "workspace")
        .first()
    )
    if comment is None:
        return
    automatic = change.actor.get("type") == ActorType.AUTOMATION
    outbound = outbound_for_comment(comment, is_automatic=automatic or None)
    if outbound is not None and outbound.status == OutboundEmailStatus.PENDING:
        enqueue(outbound)


def enqueue(outbound: OutboundEmail) -> None:
    pk = outbound.pk
    # If the broker is down the row stays pending and due: the minutely sweep sends it.
    transaction.on_commit(lambda: send_outbound_email.delay(pk))


def usable_mailbox(ticket: Ticket) -> MailboxConnection | None:
    """The ticket's own mailbox if it is active, else the workspace's first active one."""
    if ticket.mailbox_id and ticket.mailbox.is_active:
        return ticket.mailbox
    return (
        MailboxConnection.objects.for_workspace(ticket.workspace_id)
        .filter(is_active=True)
        .order_by("pk")
        .first()
    )


def outbound_for_comment(
    comment: Comment, *, is_automatic: bool | None = None
) -> OutboundEmail | None:
    """The email of a public reply, written once; ``None`` when the reply is not mailed
    (a note, a customer's message, a ticket without an address or any mail channel).

    ``is_automatic`` defaults to "the comment came from an automation".
    """
    if comment.is_internal or comment.author_type == AuthorType.CUSTOMER:
        return None
    existing = OutboundEmail.objects.filter(comment=comment).first()
    if existing is not None:
        return existing
    ticket = comment.ticket
    if ticket.deleted_at is not None or not ticket.customer.email:
        return None
    if is_automatic is None:
        is_automatic = comment.via == CommentVia.AUTOMATION
    mailbox = usable_mailbox(ticket)
    if mailbox is None and ticket.channel != TicketChannel.EMAIL:
        # A web or API ticket in a workspace that has no mailbox: nothing to send with,
        # and nobody expects mail.
        return None
    in_reply_to, references = thread_ids(ticket)
    row = OutboundEmail(
        workspace_id=ticket.workspace_id,
        mailbox=mailbox,
        ticket=ticket,
        comment=comment,
        message_id=normalise_message_id(make_message_id()),
        in_reply_to=in_reply_to,
        references=" ".join(references),
        to_addresses=recipients(ticket),
        subject=reply_subject(ticket.subject, ticket.number),
        is_automatic=is_automatic,
        next_attempt_at=timezone.now(),
    )
    if mailbox is None:
        # Recorded, not attempted: the row says why the customer got nothing. No note on
        # the ticket — a workspace that never set up mail would get one on every reply.
        row.status = OutboundEmailStatus.FAILED
        row.last_error = NO_MAILBOX_REASON
    elif is_automatic and over_automatic_limit(ticket.workspace_id, row.to_addresses):
        row.status = OutboundEmailStatus.FAILED
        row.last_error = (
            f"{AUTO_LIMIT_REASON}: {settings.AUTO_REPLY_LIMIT_PER_HOUR} automatic messages "
            f"to {', '.join(row.to_addresses)} in the last hour; this one was not sent."
        )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        # Another worker (the listener and the sweep) wrote this comment's row first.
        existing = OutboundEmail.objects.filter(comment=comment).first()
        if existing is None:
            raise
        return existing
    return row


def recipients(ticket: Ticket) -> list[str]:
    """Where the reply goes: the Reply-To of the customer's last mail on the ticket, else
    the customer's address."""
    customer_email = ticket.customer.email.lower()
    last = (
        InboundEmail.objects.filter(
            workspace_id=ticket.workspace_id,
            ticket=ticket,
            status=InboundEmailStatus.PROCESSED,
            is_auto_reply=False,
        )
        .order_by("-pk")
        .values_list("from_address", "reply_to")
        .first()
    )
    if last is not None and last[0].lower() == customer_email and last[1]:
        addresses = [address for _name, address in parse_address_list(last[1])]
        if addresses:
            return list(dict.fromkeys(addresses))
    return [customer_email]


def thread_ids(ticket: Ticket) -> tuple[str, list[str]]:
    """(In-Reply-To, References) of a new message on the ticket: it answers the newest
    message the customer sent (else our newest), and References lists the chain, oldest
    first — its first id and the most recent ones, MAX_REFERENCES in all."""
    rows = list(
        EmailTicketMapping.objects.filter(workspace_id=ticket.workspace_id, ticket=ticket)
        .order_by("pk")
        .values_list("direction", "message_id")
    )
    if not rows:
        return "", []
    inbound = [mid for direction, mid in rows if direction == MailDirection.INBOUND]
    in_reply_to = inbound[-1] if inbound else rows[-1][1]
    chain = list(dict.fromkeys(mid for _direction, mid in rows if mid))
    # The message we answer ends the chain, as it would in a reply made by a mail client.
    chain = [mid for mid in chain if mid != in_reply_to] + [in_reply_to]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return in_reply_to, chain


def reply_subject(subject: str, number: int) -> str:
    """``Re: <subject> [#<number>]``: one "Re:", one ticket token, whatever came before."""
    clean = SUBJECT_TOKEN_RE.sub("", subject or "")
    clean = _REPLY_PREFIX_RE.sub("", clean)
    clean = " ".join(clean.split())
    return f"Re: {clean} [#{number}]" if clean else f"Re: [#{number}]"


def over_automatic_limit(workspace_id: int, addresses: Iterable[str]) -> bool:
    """Our own automatic mail is capped per recipient per hour (AUTO_REPLY_LIMIT_PER_HOUR),
    so two auto-responders cannot keep answering each other."""
    wanted = {a.lower() for a in addresses}
    since = timezone.now() - timedelta(hours=1)
    # outbound_auto_idx; the address test is in Python (JSON containment differs per
    # database), over at most an hour of one workspace's automatic mail.
    recent = OutboundEmail.objects.filter(
        workspace_id=workspace_id,
        is_automatic=True,
        created_at__gte=since,
        status__in=(
            OutboundEmailStatus.PENDING,
            OutboundEmailStatus.SENDING,
            OutboundEmailStatus.SENT,
        ),
    ).values_list("to_addresses", flat=True)
    limit = settings.AUTO_REPLY_LIMIT_PER_HOUR
    counts = dict.fromkeys(wanted, 0)
    for to in recent:
        for address in {a.lower() for a in to or []} & wanted:
            counts[address] += 1
            if counts[address] >= limit:
                return True
    return False


# --- 2 and 3. Claim, compose, send ---------------------------------------------------------


@dataclass
class Composed:
    mime: bytes
    # Files too large for the MIME of a Graph sendMail; sent through an upload session.
    large_attachments: list[TicketAttachment]


def compose(outbound: OutboundEmail) -> Composed:
    """The message as it leaves: headers, text + HTML with the signature, attachments."""
    mailbox = outbound.mailbox
    ticket = outbound.ticket
    workspace = ticket.workspace
    comment = outbound.comment
    agent = comment.author_agent if comment is not None else None

    msg = EmailMessage(policy=MIME_POLICY)
    if agent is not None:
        from_name = f"{agent.name} via {workspace.name}"
    else:
        from_name = mailbox.display_name or workspace.name
    msg["From"] = Address(display_name=from_name, addr_spec=mailbox.email_address)
    msg["To"] = ", ".join(outbound.to_addresses)
    if outbound.cc_addresses:
        msg["Cc"] = ", ".join(outbound.cc_addresses)
    msg["Subject"] = outbound.subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = f"<{outbound.message_id}>"
    if outbound.in_reply_to:
        msg["In-Reply-To"] = f"<{outbound.in_reply_to}>"
    if outbound.references:
        msg["References"] = " ".join(f"<{mid}>" for mid in outbound.references.split())
    if outbound.is_automatic:
        # RFC 3834: automatic mail says so, and asks Exchange not to answer it.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"

    body_html = comment.body_html if comment is not None else ""
    body_text = comment.body_text if comment is not None else ""
    signature_html, signature_text = signature(agent, workspace.default_signature)
    text = body_text.rstrip()
    if signature_text:
        text += "\n\n-- \n" + signature_text
    msg.set_content(text + "\n")
    html_body = body_html
    if signature_html:
        html_body += f'<div class="signature">{signature_html}</div>'
    msg.add_alternative(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f"<body>{html_body}</body></html>\n",
        subtype="html",
    )

    attachments = (
        list(TicketAttachment.objects.filter(comment=comment).order_by("pk"))
        if comment is not None
        else []
    )
    large: list[TicketAttachment] = []
    for attachment in attachments:
        if (
            mailbox.provider == MailboxProvider.MICROSOFT
            and attachment.size > GRAPH_MIME_ATTACHMENT_LIMIT
        ):
            large.append(attachment)
            continue
        maintype, subtype = _content_type(attachment)
        msg.add_attachment(
            read_attachment(attachment),
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
        )
    return Composed(mime=msg.as_bytes(), large_attachments=large)


def signature(agent: object | None, default: str) -> tuple[str, str]:
    """(HTML, text) of the agent's signature, else the workspace's; stored as HTML (the
    signature API sanitises it), or as plain text when it has no tags."""
    from tickets.services import html_to_text, sanitize_html, text_to_html

    value = (getattr(agent, "signature", "") or "").strip() or (default or "").strip()
    if not value:
        return "", ""
    if _TAG_RE.search(value):
        clean = sanitize_html(value)
        return clean, html_to_text(clean)
    return text_to_html(value), html.unescape(value)


def read_attachment(attachment: TicketAttachment) -> bytes:
    try:
        with attachment.file.open("rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise PermanentMailError(
            f"The attachment {attachment.filename} is missing from storage."
        ) from exc
    except OSError as exc:
        raise TransientMailError(
            f"Could not read the attachment {attachment.filename}: {exc}"
        ) from exc


def _content_type(attachment: TicketAttachment) -> tuple[str, str]:
    value = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    if "/" not in value:
        value = mimetypes.guess_type(attachment.filename)[0] or "application/octet-stream"
    maintype, subtype = value.split("/", 1)
    return maintype or "application", subtype or "octet-stream"


def transmit(outbound: OutboundEmail, composed: Composed) -> str:
    """Hand the message to the mailbox's provider; returns the provider's id or answer."""
    mailbox = outbound.mailbox
    if mailbox.provider == MailboxProvider.MICROSOFT:
        # Imported here: the Graph client (MSAL, HTTP) loads only where a Microsoft
        # mailbox actually sends.
        from integrations.microsoft.send import send_mime

        result = send_mime(mailbox, composed.mime, composed.large_attachments)
        return str(result or "")[:400]
    from integrations.smtp import send_smtp

    return send_smtp(
        mailbox,
        mime=composed.mime,
        sender=mailbox.email_address,
        recipients=[*outbound.to_addresses, *outbound.cc_addresses],
    )


def claim(outbound_id: int, *, now: datetime | None = None) -> bool:
    """``pending`` → ``sending`` for a due row, in one update: True if this caller won it."""
    now = now or timezone.now()
    return bool(
        OutboundEmail.objects.filter(pk=outbound_id, status=OutboundEmailStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=OutboundEmailStatus.SENDING, attempts=F("attempts") + 1, updated_at=now)
    )


def send_outbound(outbound_id: int) -> str | None:
    """Claim, send and record one row; returns its final status, or None when another
    sender holds it (or it is not due, or already done)."""
    if not claim(outbound_id):
        return None
    return deliver(outbound_id)


def deliver(outbound_id: int) -> str:
    """Send a row this caller has claimed (status ``sending``) and record the outcome."""
    outbound = OutboundEmail.objects.select_related(
        "mailbox", "ticket__workspace", "comment__author_agent__user"
    ).get(pk=outbound_id)
    try:
        if outbound.mailbox is None or not outbound.mailbox.is_active:
            _switch_mailbox(outbound)
        provider_id = transmit(outbound, compose(outbound))
    except ReconnectNeeded as exc:
        _mark_reconnect(outbound.mailbox, str(exc))
        return _fail(outbound, str(exc))
    except PermanentMailError as exc:
        return _fail(outbound, str(exc))
    except TransientMailError as exc:
        return _retry_or_fail(outbound, str(exc), retry_after=exc.retry_after)
    except MailError as exc:
        return _retry_or_fail(outbound, str(exc))
    except Exception as exc:
        # A bug or an outage we did not foresee: retried like a transient error, so the row
        # neither sticks in "sending" nor goes out twice, and it ends visibly failed.
        logger.exception("outbound email %s failed unexpectedly", outbound_id)
        return _retry_or_fail(outbound, f"{type(exc).__name__}: {exc}")
    return _sent(outbound, provider_id)


def _switch_mailbox(outbound: OutboundEmail) -> None:
    """The row's mailbox was deleted or deactivated since the row was written: send through
    the one usable now, if any."""
    mailbox = usable_mailbox(outbound.ticket)
    if mailbox is None:
        raise PermanentMailError(NO_MAILBOX_REASON)
    OutboundEmail.objects.filter(pk=outbound.pk).update(mailbox=mailbox)
    outbound.mailbox = mailbox


# --- 4. Outcomes ----------------------------------------------------------------------------


def _sent(outbound: OutboundEmail, provider_id: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        updated = OutboundEmail.objects.filter(
            pk=outbound.pk, status=OutboundEmailStatus.SENDING
        ).update(
            status=OutboundEmailStatus.SENT,
            sent_at=now,
            provider_message_id=provider_id[:400],
            last_error="",
            next_attempt_at=None,
            updated_at=now,
        )
        if updated:
            # The customer's answer carries this id in In-Reply-To: the thread comes home.
            EmailTicketMapping.objects.create(
                workspace_id=outbound.workspace_id,
                mailbox=outbound.mailbox,
                ticket_id=outbound.ticket_id,
                comment_id=outbound.comment_id,
                direction=MailDirection.OUTBOUND,
                message_id=outbound.message_id,
            )
    logger.info("outbound email %s sent to %s", outbound.pk, ", ".join(outbound.to_addresses))
    return OutboundEmailStatus.SENT


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (the server's Retry-After if longer)."""
    wait = BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]
    if retry_after:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


def _retry_or_fail(outbound: OutboundEmail, error: str, *, retry_after: float | None = None) -> str:
    attempts = OutboundEmail.objects.filter(pk=outbound.pk).values_list("attempts", flat=True)[0]
    if attempts >= MAX_ATTEMPTS:
        return _fail(outbound, f"{error} (gave up after {attempts} attempts)")
    now = timezone.now()
    OutboundEmail.objects.filter(pk=outbound.pk, status=OutboundEmailStatus.SENDING).update(
        status=OutboundEmailStatus.PENDING,
        next_attempt_at=now + backoff(attempts, retry_after),
        last_error=error[:MAX_ERROR_LENGTH],
        updated_at=now,
    )
    logger.warning("outbound email %s attempt %s failed: %s", outbound.pk, attempts, error)
    return OutboundEmailStatus.PENDING


def _fail(outbound: OutboundEmail, error: str) -> str:
    now = timezone.now()
    updated = OutboundEmail.objects.filter(
        pk=outbound.pk, status=OutboundEmailStatus.SENDING
    ).update(
        status=OutboundEmailStatus.FAILED,
        last_error=error[:MAX_ERROR_LENGTH],
        next_attempt_at=None,
        updated_at=now,
    )
    logger.warning("outbound email %s failed: %s", outbound.pk, error)
    if updated:
        _note_failure(outbound, error)
    return OutboundEmailStatus.FAILED


def _note_failure(outbound: OutboundEmail, error: str) -> None:
    """Tell the agents, on the ticket, that the customer did not get the reply."""
    from tickets.services import comment_create

    ticket = final_ticket(outbound.workspace_id, outbound.ticket_id)
    if ticket is None:
        return
    addresses = ", ".join(outbound.to_addresses) or "the customer"
    try:
        comment_create(
            ticket=ticket,
            actor=Actor.system(),
            body_text=f"The reply to {addresses} could not be delivered: {error}",
            internal=True,
            via=CommentVia.SYSTEM,
        )
    except EnqueError:
        logger.warning("could not note the failure of outbound email %s", outbound.pk)


def _mark_reconnect(mailbox: MailboxConnection | None, error: str) -> None:
    if mailbox is None:
        return
    MailboxConnection.objects.filter(pk=mailbox.pk).update(
        sync_status=SyncStatus.RECONNECT_NEEDED,
        last_error=error[:MAX_ERROR_LENGTH],
        last_error_at=timezone.now(),
    )


# --- The sweep ------------------------------------------------------------------------------


def recover_stale_sending(*, now: datetime | None = None) -> int:
    """Rows a dead worker left in ``sending`` go back to ``pending`` (or fail, out of
    attempts). The worker may have died after the server took the message: at-least-once
    is the price of never losing a reply."""
    now = now or timezone.now()
    stale = OutboundEmail.objects.filter(
        status=OutboundEmailStatus.SENDING, updated_at__lt=now - STALE_SENDING_AFTER
    )
    recovered = 0
    for outbound in stale.only("pk", "attempts", "workspace_id", "ticket_id", "to_addresses"):
        error = "The worker sending this message stopped before it finished."
        if outbound.attempts >= MAX_ATTEMPTS:
            _fail(outbound, error)
            continue
        recovered += OutboundEmail.objects.filter(
            pk=outbound.pk,
            status=OutboundEmailStatus.SENDING,
            updated_at__lt=now - STALE_SENDING_AFTER,
        ).update(
            status=OutboundEmailStatus.PENDING,
            next_attempt_at=now,
            last_error=error,
            updated_at=now,
        )
    return recovered


def catch_up_missing(*, now: datetime | None = None) -> int:
    """Write the rows of recent public replies on email tickets that have none (the process
    died between the commit and the listener); returns how many were written."""
    now = now or timezone.now()
    missing = (
        Comment.objects.filter(
            created_at__gte=now - CATCH_UP_WINDOW,
            is_internal=False,
            author_type__in=(AuthorType.AGENT, AuthorType.SYSTEM),
            ticket__channel=TicketChannel.EMAIL,
            ticket__deleted_at__isnull=True,
            outbound_emails__isnull=True,
        )
        # Only where mail can go: a workspace without an active mailbox (demo data, mail
        # never set up) would otherwise collect a failure note on every recent reply.
        .filter(
            Exists(
                MailboxConnection.objects.filter(
                    workspace_id=OuterRef("workspace_id"), is_active=True
                )
            )
        )
        # A ticket's first message is the one it was opened with, not a reply.
        .exclude(created_at=F("ticket__created_at"))
        .select_related("ticket__customer", "ticket__mailbox", "workspace")
        .order_by("pk")[:SWEEP_BATCH]
    )
    written = 0
    for comment in missing:
        if outbound_for_comment(comment) is not None:
            written += 1
    return written


def claim_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    """Claim due pending rows in one transaction (locked rows are another sweep's: skipped)."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(status=OutboundEmailStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            OutboundEmail.objects.filter(pk__in=ids, status=OutboundEmailStatus.PENDING).update(
                status=OutboundEmailStatus.SENDING, attempts=F("attempts") + 1, updated_at=now
            )
    return ids


def retry_failed(queryset: QuerySet[OutboundEmail]) -> int:
    """Give failed rows a fresh set of attempts now (an admin fixed the mailbox or address).

    Only ``failed`` rows change, so a row another worker is sending is never touched.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(queryset.filter(status=OutboundEmailStatus.FAILED).values_list("pk", flat=True))
        OutboundEmail.objects.filter(pk__in=ids, status=OutboundEmailStatus.FAILED).update(
            status=OutboundEmailStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            updated_at=now,
        )
        for pk in ids:
            transaction.on_commit(lambda pk=pk: send_outbound_email.delay(pk))
    return len(ids)


def send_due(*, now: datetime | None = None) -> int:
    """The minutely sweep; returns how many rows it tried to send."""
    recover_stale_sending(now=now)
    catch_up_missing(now=now)
    ids = claim_due(now=now)
    for pk in ids:
        deliver(pk)
    return len(ids)


# --- Celery tasks (routed to the mail_out queue by their name, enque/queues.py) -------------


@shared_task(
    name="integrations.outbound.send_outbound_email",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def send_outbound_email(outbound_id: int) -> str | None:
    """Send one row; a duplicate or late delivery of this task finds it claimed or done."""
    return send_outbound(outbound_id)


@shared_task(
    name="integrations.outbound.send_due_outbound",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # Beat ticks every minute; a run still queued after that is superseded by the next one.
    expires=55,
)
def send_due_outbound() -> int:
    return send_due()
