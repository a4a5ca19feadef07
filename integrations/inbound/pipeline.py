"""Ingest and process one received message.

``ingest_raw_email`` stores the raw bytes first — an ``InboundEmail`` row (status
``received``) and the file in default storage, in a transaction of its own — so a crash
or a bad message later loses nothing. The unique constraints on (mailbox, Message-ID) and
(mailbox, provider id) dedupe: a message fetched twice, or by two racing workers, is one
row, and the loser of the race gets the winner's row back.

``process_inbound_email`` claims the row with a compare-and-swap (``received``/``failed``
→ ``processing``), so two workers never process one message, and then, in ONE
transaction, creates the ticket or comment through ``tickets.services``, its attachments,
its ``EmailTicketMapping`` and the row's outcome. Any exception rolls all of that back and
records ``failed`` with the error; the next message goes on, and ``reprocess_email``
replays it later.
"""

from __future__ import annotations

import hashlib
import logging
import re
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from integrations.inbound import threads
from integrations.inbound.automatic import Kind, Outcome, Verdict, classify
from integrations.mime import (
    HeaderSummary,
    ParsedAttachment,
    html_fragment,
    parse_email,
    read_header_summary,
)
from integrations.models import (
    EmailTicketMapping,
    InboundEmail,
    InboundEmailStatus,
    MailboxConnection,
    MailDirection,
)
from integrations.quotes import (
    find_forwarded_sender,
    is_forward_subject,
    strip_forward_prefix,
    strip_quoted_html,
    strip_quoted_text,
)
from tickets.actors import Actor
from tickets.models import (
    Comment,
    CommentVia,
    Ticket,
    TicketAttachment,
    TicketChannel,
    TicketStatus,
)
from tickets.services import (
    SNIFF_BYTES,
    comment_create,
    html_to_text,
    sanitize_filename,
    sanitize_html,
    sniff_content_type,
    text_to_html,
    ticket_create,
)
from workspaces.models import Agent, Customer
from workspaces.services import customer_get_or_create

logger = logging.getLogger(__name__)

CLAIMABLE = (InboundEmailStatus.RECEIVED, InboundEmailStatus.FAILED)
# A row left in "processing" this long was abandoned by a crashed worker.
STALE_PROCESSING_AFTER = timedelta(minutes=15)
# Where the agent UI and API download an attachment; inline images point here.
ATTACHMENT_DOWNLOAD_URL = "/v1/attachments/{id}/download"
NO_TEXT = "(This email had no text.)"
NO_SUBJECT = "(no subject)"
MAX_ERROR_LENGTH = 8000

_CID_RE = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)


class InboundRejected(Exception):
    """A message the pipeline cannot turn into anything (no sender, no mailbox): it is
    kept as ``failed`` with this code as its reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def synthesised_message_id(sha256: str) -> str:
    """A stable Message-ID for a message that has none: the same bytes, the same id."""
    return f"sha256-{sha256[:40]}@missing-message-id.invalid"


# --- Ingest ---------------------------------------------------------------------------------


def ingest_raw_email(
    *, mailbox: MailboxConnection, raw: bytes, provider_message_id: str = ""
) -> InboundEmail:
    """Store ``raw`` as received by ``mailbox``, then process it; return its row.

    The returned row has ``was_duplicate`` set when the message was already there (it is
    then processed only if it never was, never re-processed: ``reprocess_email`` does that).
    """
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    summary = _header_summary(raw)
    message_id = summary.message_id or synthesised_message_id(digest)
    provider_message_id = (provider_message_id or "").strip()[:400]

    existing = _existing(mailbox, message_id, provider_message_id)
    if existing is not None:
        return _again(existing)
    inbound = InboundEmail(
        workspace_id=mailbox.workspace_id,
        mailbox=mailbox,
        size=len(raw),
        sha256=digest,
        provider_message_id=provider_message_id,
        message_id=message_id,
        from_address=summary.from_address,
        reply_to=summary.reply_to,
        subject=summary.subject,
    )
    # The bytes go to storage before the row: a row never points at a missing file. A
    # losing racer deletes its copy again.
    inbound.raw.save(f"{digest[:16]}.eml", ContentFile(raw), save=False)
    try:
        with transaction.atomic():
            inbound.save(force_insert=True)
    except IntegrityError:
        default_storage.delete(inbound.raw.name)
        existing = _existing(mailbox, message_id, provider_message_id)
        if existing is None:
            raise
        return _again(existing)
    inbound.was_duplicate = False
    return process_inbound_email(inbound, raw=raw)


def _header_summary(raw: bytes) -> HeaderSummary:
    try:
        return read_header_summary(raw)
    except (ValueError, TypeError, LookupError, UnicodeError, IndexError):
        # Storing the message matters more than its headers; processing records the error.
        logger.warning("unreadable header block", exc_info=True)
        return HeaderSummary(message_id="", from_address="", subject="", reply_to="")


def _existing(
    mailbox: MailboxConnection, message_id: str, provider_message_id: str
) -> InboundEmail | None:
    match = Q(message_id=message_id)
    if provider_message_id:
        match |= Q(provider_message_id=provider_message_id)
    return InboundEmail.objects.filter(mailbox=mailbox).filter(match).order_by("pk").first()


def _again(existing: InboundEmail) -> InboundEmail:
    if existing.status == InboundEmailStatus.RECEIVED:
        # Stored by an ingest that died before processing it.
        existing = process_inbound_email(existing)
    existing.was_duplicate = True
    return existing


# --- Process --------------------------------------------------------------------------------


def process_inbound_email(inbound: InboundEmail, *, raw: bytes | None = None) -> InboundEmail:
    """Claim and process a stored message; never raises for a bad message.

    Returns the row as it ends: processed, ignored, failed — or unchanged when another
    worker holds the claim or the message was already done.
    """
    claimed = InboundEmail.objects.filter(pk=inbound.pk, status__in=CLAIMABLE).update(
        status=InboundEmailStatus.PROCESSING,
        attempts=F("attempts") + 1,
        error="",
        updated_at=timezone.now(),
    )
    if claimed:
        written: list[str] = []
        try:
            if raw is None:
                with inbound.raw.open("rb") as handle:
                    raw = handle.read()
            _Processor(inbound, raw, written).run()
        except Exception as exc:
            if isinstance(exc, InboundRejected):
                logger.warning("inbound email %s rejected: %s", inbound.pk, exc.code)
            else:
                logger.exception("inbound email %s failed", inbound.pk)
            # Files are not transactional: remove the attachments of the rolled-back work.
            for name in written:
                default_storage.delete(name)
            InboundEmail.objects.filter(pk=inbound.pk, status=InboundEmailStatus.PROCESSING).update(
                status=InboundEmailStatus.FAILED,
                reason=(getattr(exc, "code", "") or "error")[:200],
                error=_error_summary(exc),
                updated_at=timezone.now(),
            )
    was_duplicate = getattr(inbound, "was_duplicate", False)
    inbound.refresh_from_db()
    inbound.was_duplicate = was_duplicate
    return inbound


def reprocess_inbound_email(inbound: InboundEmail) -> InboundEmail:
    """Replay a failed message (or one a crashed worker left in ``processing`` for longer
    than STALE_PROCESSING_AFTER); a processed or ignored one is returned unchanged."""
    cutoff = timezone.now() - STALE_PROCESSING_AFTER
    InboundEmail.objects.filter(
        pk=inbound.pk, status=InboundEmailStatus.PROCESSING, updated_at__lt=cutoff
    ).update(status=InboundEmailStatus.FAILED, error="Abandoned while processing.")
    inbound.was_duplicate = False
    return process_inbound_email(inbound)


def _error_summary(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-12)
    text = f"{type(exc).__name__}: {exc}\n\n" + "".join(lines)
    return text[-MAX_ERROR_LENGTH:]


@dataclass
class _Result:
    status: str
    reason: str
    ticket: Ticket | None = None
    comment: Comment | None = None
    is_auto_reply: bool = False


@dataclass
class _Content:
    """What a ticket or comment is made of."""

    body_html: str = ""
    body_text: str = ""
    original_html: str | None = None
    original_text: str | None = None
    attachments: list[TicketAttachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Processor:
    def __init__(self, inbound: InboundEmail, raw: bytes, written: list[str]) -> None:
        self.inbound = inbound
        self.raw = raw
        self.written = written

    def run(self) -> None:
        if self.inbound.mailbox_id is None:
            raise InboundRejected(Outcome.NO_MAILBOX, "The mailbox of this message is gone.")
        self.mailbox = MailboxConnection.objects.select_related(
            "workspace", "default_team", "default_category"
        ).get(pk=self.inbound.mailbox_id)
        self.workspace = self.mailbox.workspace
        self.parsed = parse_email(self.raw, max_size=settings.MAX_INBOUND_EMAIL_SIZE)
        verdict = classify(self.parsed, ignore_lists=settings.INBOUND_IGNORE_LISTS)
        with transaction.atomic():
            result = self.decide(verdict)
            updated = InboundEmail.objects.filter(
                pk=self.inbound.pk, status=InboundEmailStatus.PROCESSING
            ).update(
                status=result.status,
                reason=str(result.reason)[:200],
                ticket=result.ticket,
                comment=result.comment,
                is_auto_reply=result.is_auto_reply,
                processed_at=timezone.now(),
                error="",
                updated_at=timezone.now(),
            )
            if not updated:
                # reprocess_email took the row over as abandoned: its run owns the outcome.
                raise RuntimeError("Lost the claim on this message while processing it.")

    # --- Deciding -------------------------------------------------------------------------

    def decide(self, verdict: Verdict) -> _Result:
        parsed = self.parsed
        if verdict.kind == Kind.IGNORE and verdict.reason == Outcome.OWN_MESSAGE:
            return self.ignored(verdict.reason)
        sender = parsed.from_address or parsed.sender_address
        if sender and sender in self.mailbox_addresses():
            return self.ignored(Outcome.FROM_OWN_MAILBOX)
        if verdict.kind == Kind.BOUNCE:
            return self.bounce()
        if verdict.kind == Kind.IGNORE:
            return self.ignored(verdict.reason)
        if not sender:
            raise InboundRejected(Outcome.NO_SENDER, "The message has no sender address.")

        duplicate = self.duplicate_mapping()
        if duplicate is not None:
            ticket_id, comment_id = duplicate
            return _Result(
                InboundEmailStatus.PROCESSED,
                Outcome.DUPLICATE,
                ticket=Ticket(pk=ticket_id),
                comment=Comment(pk=comment_id) if comment_id else None,
            )

        agent = (
            Agent.objects.for_workspace(self.workspace)
            .filter(is_active=True, user__email=sender)
            .select_related("user")
            .first()
        )
        ws_id = self.workspace.pk
        target = threads.ticket_for_message_ids(
            ws_id, threads.header_thread_ids(parsed.in_reply_to, parsed.references)
        ) or threads.ticket_for_subject(ws_id, parsed.subject, sender)

        if verdict.kind == Kind.AUTO_REPLY:
            if agent is not None and not verdict.subject_only:
                return self.ignored(Outcome.AUTO_REPLY_FROM_AGENT)
            if target is not None and target.status != TicketStatus.CLOSED:
                return self.auto_reply(target, sender)
            if not verdict.subject_only:
                reason = (
                    Outcome.AUTO_REPLY_UNTHREADED if target is None else Outcome.AUTO_REPLY_CLOSED
                )
                return self.ignored(reason)

        if agent is not None:
            if target is not None:
                return self.agent_note(agent, target)
            forwarded = self.forwarded_sender()
            if forwarded is not None:
                return self.forwarded(agent, *forwarded)

        customer = self.customer(sender, parsed.from_name)
        if target is None:
            return self.new_ticket(customer, Outcome.NEW_TICKET)
        if target.status == TicketStatus.CLOSED:
            return self.new_ticket(customer, Outcome.FOLLOW_UP, follow_up_of=target)
        return self.reply(target, customer)

    def ignored(self, reason: str) -> _Result:
        return _Result(InboundEmailStatus.IGNORED, reason)

    def mailbox_addresses(self) -> set[str]:
        return {
            address.lower()
            for address in MailboxConnection.objects.for_workspace(self.workspace).values_list(
                "email_address", flat=True
            )
        }

    def duplicate_mapping(self) -> tuple[int, int | None] | None:
        """(ticket id, comment id) when the same message already came in through another
        mailbox of the workspace (a customer wrote to support@ and sales@ at once): one
        ticket, not two. One query on mapping_ws_message_id_idx."""
        return (
            EmailTicketMapping.objects.filter(
                workspace_id=self.workspace.pk,
                message_id=self.inbound.message_id,
                direction=MailDirection.INBOUND,
            )
            .order_by("pk")
            .values_list("ticket_id", "comment_id")
            .first()
        )

    def customer(self, address: str, name: str) -> Customer:
        customer, _created = customer_get_or_create(
            workspace=self.workspace, email=address, name=name[:200]
        )
        if customer.email_bounced_at is not None:
            # They wrote again: the address works.
            Customer.objects.filter(pk=customer.pk).update(email_bounced_at=None)
            customer.email_bounced_at = None
        return customer

    def forwarded_sender(self) -> tuple[str, str] | None:
        parsed = self.parsed
        text = parsed.text or (html_to_text(sanitize_html(parsed.html)) if parsed.html else "")
        found = find_forwarded_sender(text)
        if found is None and parsed.attached_senders:
            found = parsed.attached_senders[0]
        if found is None:
            return None
        name, address = found
        if address in self.mailbox_addresses():
            return None
        if Agent.objects.for_workspace(self.workspace).filter(user__email=address).exists():
            return None
        return name, address

    # --- Writing --------------------------------------------------------------------------

    def new_ticket(
        self,
        customer: Customer,
        reason: str,
        *,
        follow_up_of: Ticket | None = None,
        subject: str | None = None,
        strip_quotes: bool = True,
        notes: list[str] | None = None,
    ) -> _Result:
        content = self.content(strip_quotes=strip_quotes)
        subject = subject if subject is not None else self.parsed.subject
        subject = " ".join(subject.split())[:998] or NO_SUBJECT
        mailbox = self.mailbox
        ticket = ticket_create(
            workspace=self.workspace,
            actor=Actor.for_customer(customer),
            subject=subject,
            customer=customer,
            body_html=content.body_html,
            body_text=content.body_text,
            channel=TicketChannel.EMAIL,
            via=CommentVia.EMAIL,
            priority=mailbox.default_priority,
            team=mailbox.default_team,
            category=mailbox.default_category,
            mailbox=mailbox,
            attachments=content.attachments,
            original_html=content.original_html,
            original_text=content.original_text,
        )
        comment = Comment.objects.filter(ticket=ticket).order_by("pk").first()
        self.map(ticket, comment)
        all_notes = list(notes or [])
        if follow_up_of is not None:
            all_notes.insert(
                0,
                f"Follow-up to ticket #{follow_up_of.number} ({follow_up_of.subject}), which "
                "was closed when this reply arrived.",
            )
        self.note(ticket, all_notes + content.notes)
        return _Result(InboundEmailStatus.PROCESSED, reason, ticket=ticket, comment=comment)

    def reply(self, ticket: Ticket, customer: Customer) -> _Result:
        content = self.content(strip_quotes=True)
        comment = comment_create(
            ticket=ticket,
            actor=Actor.for_customer(customer),
            body_html=content.body_html,
            body_text=content.body_text,
            via=CommentVia.EMAIL,
            attachments=content.attachments,
        )
        self.map(ticket, comment)
        self.note(ticket, content.notes)
        return _Result(InboundEmailStatus.PROCESSED, Outcome.REPLY, ticket=ticket, comment=comment)

    def auto_reply(self, ticket: Ticket, sender: str) -> _Result:
        customer, _created = customer_get_or_create(
            workspace=self.workspace, email=sender, name=self.parsed.from_name[:200]
        )
        content = self.content(strip_quotes=True)
        comment = comment_create(
            ticket=ticket,
            actor=Actor.for_customer(customer),
            body_html=content.body_html,
            body_text=content.body_text,
            via=CommentVia.EMAIL,
            attachments=content.attachments,
            # An out-of-office reply is not the customer getting back to us.
            reopen=False,
        )
        self.map(ticket, comment)
        self.note(ticket, content.notes)
        return _Result(
            InboundEmailStatus.PROCESSED,
            Outcome.AUTO_REPLY,
            ticket=ticket,
            comment=comment,
            is_auto_reply=True,
        )

    def agent_note(self, agent: Agent, ticket: Ticket) -> _Result:
        """An agent answered by email (say, to a notification). Kept as their internal
        note: turning it into a public reply would mail the customer a second time."""
        content = self.content(strip_quotes=True)
        comment = comment_create(
            ticket=ticket,
            actor=Actor.for_agent(agent),
            body_html=content.body_html,
            body_text=content.body_text,
            internal=True,
            via=CommentVia.EMAIL,
            attachments=content.attachments,
        )
        self.map(ticket, comment)
        self.note(ticket, content.notes)
        return _Result(
            InboundEmailStatus.PROCESSED, Outcome.AGENT_NOTE, ticket=ticket, comment=comment
        )

    def forwarded(self, agent: Agent, name: str, address: str) -> _Result:
        customer = self.customer(address, name)
        note = f"Forwarded into {self.mailbox.email_address} by {agent.name} <{agent.user.email}>."
        return self.new_ticket(
            customer,
            Outcome.FORWARDED,
            subject=strip_forward_prefix(self.parsed.subject),
            strip_quotes=False,
            notes=[note],
        )

    def bounce(self) -> _Result:
        report = self.parsed.report
        failures = [f for f in (report.failures if report else []) if f.action in ("failed", "")]
        if report and report.failures and not failures:
            return self.ignored(f"{Outcome.DELIVERY_STATUS}:{report.failures[0].action}")
        recipients = sorted({f.recipient for f in failures if "@" in f.recipient})
        if recipients:
            Customer.objects.for_workspace(self.workspace).filter(email__in=recipients).update(
                email_bounced_at=timezone.now()
            )
        ticket = threads.ticket_for_message_ids(
            self.workspace.pk, report.original_ids if report else []
        )
        if ticket is None:
            return self.ignored(Outcome.BOUNCE_UNMATCHED)
        lines = []
        for failure in failures:
            detail = " ".join(x for x in (failure.status, failure.diagnostic) if x)
            lines.append(
                f"Delivery to {failure.recipient} failed" + (f": {detail}" if detail else ".")
            )
        if not lines:
            lines.append(f"A delivery failure report arrived: {self.parsed.subject or NO_SUBJECT}.")
        if recipients:
            lines.append("The address is now flagged as bouncing.")
        comment = comment_create(
            ticket=ticket,
            actor=Actor.system(),
            body_text="\n".join(lines),
            internal=True,
            via=CommentVia.SYSTEM,
        )
        return _Result(InboundEmailStatus.PROCESSED, Outcome.BOUNCE, ticket=ticket, comment=comment)

    def map(self, ticket: Ticket, comment: Comment | None) -> None:
        EmailTicketMapping.objects.create(
            workspace=self.workspace,
            mailbox=self.mailbox,
            ticket=ticket,
            comment=comment,
            direction=MailDirection.INBOUND,
            provider_message_id=self.inbound.provider_message_id,
            message_id=self.inbound.message_id,
        )

    def note(self, ticket: Ticket, lines: list[str]) -> None:
        if lines:
            comment_create(
                ticket=ticket,
                actor=Actor.system(),
                body_text="\n\n".join(lines),
                internal=True,
                via=CommentVia.SYSTEM,
            )

    # --- Content --------------------------------------------------------------------------

    def content(self, *, strip_quotes: bool) -> _Content:
        parsed = self.parsed
        content = _Content()
        strip_quotes = strip_quotes and not is_forward_subject(parsed.subject)
        html = html_fragment(parsed.html) if parsed.html else ""
        if html and not html_to_text(sanitize_html(html)).strip() and parsed.text:
            html = ""  # an empty HTML part beside a real text one
        referenced = {unquote(cid).strip("<>").lower() for cid in _CID_RE.findall(html)}
        content.attachments = self.attachments(referenced, content.notes)
        urls = {
            a.content_id.lower(): ATTACHMENT_DOWNLOAD_URL.format(id=a.pk)
            for a in content.attachments
            if a.content_id
        }
        if html:
            html = _CID_RE.sub(
                lambda m: urls.get(unquote(m.group(1)).strip("<>").lower(), m.group(0)), html
            )
            content.original_html = html
            content.original_text = parsed.text or html_to_text(sanitize_html(html))
            content.body_html = strip_quoted_html(html) if strip_quotes else html
        elif parsed.text:
            content.original_text = parsed.text
            content.original_html = text_to_html(parsed.text)
            content.body_text = strip_quoted_text(parsed.text) if strip_quotes else parsed.text
        if not content.attachments and not (
            content.body_text.strip() or html_to_text(sanitize_html(content.body_html)).strip()
        ):
            content.body_text = NO_TEXT
            content.body_html = ""
        if parsed.truncated:
            limit = filesizeformat(settings.MAX_INBOUND_EMAIL_SIZE).replace("\xa0", " ")
            size = filesizeformat(parsed.size).replace("\xa0", " ")
            content.notes.append(
                f"This email was {size}, over the {limit} limit: it was imported without its "
                f"attachments, and its text may be cut short. The original is kept "
                f"(inbound email #{self.inbound.pk})."
            )
        return content

    def attachments(self, referenced: set[str], notes: list[str]) -> list[TicketAttachment]:
        limit = settings.MAX_ATTACHMENT_SIZE
        saved: list[TicketAttachment] = []
        skipped: list[ParsedAttachment] = []
        for part in self.parsed.attachments:
            if len(part.data) > limit:
                skipped.append(part)
                continue
            saved.append(self.save_attachment(part, referenced))
        if skipped:
            listing = "\n".join(
                f"- {sanitize_filename(p.filename)} ({_size(len(p.data))})" for p in skipped
            )
            notes.append(
                f"Not imported, over the {_size(limit)} attachment limit (the original email "
                f"is kept, inbound email #{self.inbound.pk}):\n{listing}"
            )
        return saved

    def save_attachment(self, part: ParsedAttachment, referenced: set[str]) -> TicketAttachment:
        filename = sanitize_filename(part.filename)
        attachment = TicketAttachment(
            workspace=self.workspace,
            filename=filename,
            content_type=sniff_content_type(part.data[:SNIFF_BYTES], filename),
            size=len(part.data),
            sha256=hashlib.sha256(part.data).hexdigest(),
            content_id=part.content_id[:255],
            is_inline=bool(part.content_id) and part.content_id.lower() in referenced,
        )
        attachment.file.save(filename, ContentFile(part.data), save=False)
        self.written.append(attachment.file.name)
        attachment.save()
        return attachment


def _size(value: int) -> str:
    return filesizeformat(value).replace("\xa0", " ")
