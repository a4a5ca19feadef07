"""Ingest and process received messages.

``ingest_many`` (and ``ingest_raw_email``, its one-message form) stores the raw bytes
first: the files in default storage, then the ``InboundEmail`` rows of the whole batch in
one INSERT and one commit, already claimed (status ``processing``, attempt 1) by the
process that stored them. Only then does processing start, so a crash or a bad message
later loses nothing: a failure leaves the row ``failed`` with its error, a crashed
process leaves it ``processing`` until ``reprocess_email --failed`` takes it as abandoned
(STALE_PROCESSING_AFTER), and either way the raw message is there to replay. The unique
constraints on (mailbox, Message-ID) and (mailbox, provider id) — (workspace, Message-ID)
for mail with no mailbox — dedupe: a message fetched twice, or by two racing workers, is
one row, and the loser of the race gets the winner's row back.

Each message is then processed in ONE transaction of its own: the ticket or comment
through ``tickets.services``, its attachments, its ``EmailTicketMapping`` and the row's
outcome. Any exception rolls all of that back and records ``failed`` with the error; the
next message goes on, and ``reprocess_email`` replays it later (``process_inbound_email``
claims a stored row with a compare-and-swap, ``received``/``failed`` → ``processing``,
so two workers never process one message).

Query budget. What every message of a batch would look up again — the workspace, the
mailbox's defaults, the workspace's mailbox addresses, its agents, the customers already
seen — is read once per batch (``_Lookups``), never across calls, so a change made
between two pages of a sync is seen by the next page. The duplicate check and threading
are one query (``threads.lookup``). A new ticket from a known customer costs, in its
processing transaction: the mapping lookup, the customer, the ticket number (one UPDATE …
RETURNING), the ticket, its body, its first comment, its history row, the mapping and the
outcome — plus what the on-commit listeners (SLA, rules, realtime) do after commit.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, OperationalError, connection, transaction
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
    TicketPriority,
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
from workspaces.models import Agent, Customer, Workspace
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
    """A message the pipeline cannot turn into anything (say, no sender): it is kept as
    ``failed`` with this code as its reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def synthesised_message_id(sha256: str) -> str:
    """A stable Message-ID for a message that has none: the same bytes, the same id."""
    return f"sha256-{sha256[:40]}@missing-message-id.invalid"


# --- Ingest ---------------------------------------------------------------------------------


def ingest_raw_email(
    *,
    mailbox: MailboxConnection | None,
    raw: bytes,
    provider_message_id: str = "",
    workspace: Workspace | None = None,
) -> InboundEmail:
    """Store ``raw`` as received by ``mailbox``, then process it; return its row.

    The returned row has ``was_duplicate`` set when the message was already there (it is
    then processed only if it never was, never re-processed: ``reprocess_email`` does that).
    Mail that came through no mailbox (an uploaded ``.eml``) passes ``mailbox=None`` and
    its ``workspace``; it dedupes on the workspace and Message-ID.
    """
    return ingest_many(mailbox, [(raw, provider_message_id)], workspace=workspace)[0]


def ingest_many(
    mailbox: MailboxConnection | None,
    messages: Iterable[tuple[bytes, str]],
    *,
    workspace: Workspace | None = None,
) -> list[InboundEmail]:
    """Store and process a batch of ``(raw bytes, provider id)`` received by ``mailbox``
    (a page of a mailbox sync); one row per message, in order, as ``ingest_raw_email``
    returns it. The raw rows of the batch are stored, and committed, before any is
    processed. The batch is held in memory: hand it a page at a time, not a mailbox.
    """
    if mailbox is None and workspace is None:
        raise ValueError("Mail with no mailbox needs its workspace.")
    if mailbox is not None and workspace is not None and mailbox.workspace_id != workspace.pk:
        raise ValueError("The mailbox belongs to another workspace.")
    incoming = [_Incoming.read(raw, provider_id) for raw, provider_id in messages]
    if not incoming:
        return []
    lookups = _Lookups(mailbox=mailbox, workspace=workspace)
    _store(lookups, incoming)
    for item in incoming:
        if item.existing is not None:
            # Before the new ones: a message stored by an ingest that died before processing
            # it came in earlier than they did (and may be the one they reply to).
            item.existing = _again(item.existing, lookups)
    fresh = [item for item in incoming if item.row is not None]
    if len(fresh) == 1:
        # One message: its own transaction is the cheapest (no savepoint, no page lock).
        _process(fresh[0].row, fresh[0].raw, lookups)
    elif fresh:
        _process_page(fresh, lookups)
    done: dict[int, InboundEmail] = {}
    results = []
    for item in incoming:
        if item.same_as is not None:
            # The batch itself held this message twice: the first one stands for both.
            again = copy.copy(done[id(item.same_as)])
            again.was_duplicate = True
            results.append(again)
            continue
        row = item.existing if item.existing is not None else item.row
        if item.existing is None:
            row.was_duplicate = False
        item.raw = b""
        done[id(item)] = row
        results.append(row)
    return results


@dataclass
class _Incoming:
    raw: bytes
    sha256: str
    summary: HeaderSummary
    message_id: str
    provider_message_id: str
    # Set by _store: the row stored for it now, or the one there already.
    row: InboundEmail | None = None
    existing: InboundEmail | None = None
    same_as: _Incoming | None = None

    @classmethod
    def read(cls, raw: bytes, provider_message_id: str) -> _Incoming:
        raw = bytes(raw)
        digest = hashlib.sha256(raw).hexdigest()
        summary = _header_summary(raw)
        return cls(
            raw=raw,
            sha256=digest,
            summary=summary,
            message_id=summary.message_id or synthesised_message_id(digest),
            provider_message_id=(provider_message_id or "").strip()[:400],
        )


def _store(lookups: _Lookups, incoming: list[_Incoming]) -> None:
    """Find what is stored already (one query) and store the rest (one INSERT, one
    commit), each row pointing at its raw file written just before."""
    known = _existing_rows(lookups.mailbox, lookups.workspace_id, incoming)
    by_message_id = {row.message_id: row for row in known}
    by_provider_id = {row.provider_message_id: row for row in known if row.provider_message_id}
    firsts: dict[str, _Incoming] = {}
    fresh: list[_Incoming] = []
    for item in incoming:
        found = [by_message_id.get(item.message_id)]
        if item.provider_message_id:
            found.append(by_provider_id.get(item.provider_message_id))
        found = [row for row in found if row is not None]
        if found:
            item.existing = min(found, key=lambda row: row.pk)
            continue
        keys = [f"m:{item.message_id}"]
        if item.provider_message_id:
            keys.append(f"p:{item.provider_message_id}")
        earlier = next((firsts[k] for k in keys if k in firsts), None)
        if earlier is not None:
            item.same_as = earlier
            continue
        for key in keys:
            firsts[key] = item
        item.row = _new_row(lookups, item)
        fresh.append(item)
    if not fresh:
        return
    try:
        with transaction.atomic():
            InboundEmail.objects.bulk_create([item.row for item in fresh])
    except IntegrityError:
        # A racing worker stored one of them first: one at a time, and each loser gets the
        # winner's row.
        for item in fresh:
            _store_one(lookups, item)


def _new_row(lookups: _Lookups, item: _Incoming) -> InboundEmail:
    summary = item.summary
    row = InboundEmail(
        workspace_id=lookups.workspace_id,
        mailbox=lookups.mailbox,
        received_without_mailbox=lookups.mailbox is None,
        size=len(item.raw),
        sha256=item.sha256,
        provider_message_id=item.provider_message_id,
        message_id=item.message_id,
        from_address=summary.from_address,
        reply_to=summary.reply_to,
        subject=summary.subject,
        # Claimed by this process from the start: no second statement to claim it.
        status=InboundEmailStatus.PROCESSING,
        attempts=1,
    )
    # The bytes go to storage before the row: a row never points at a missing file. A
    # losing racer deletes its copy again.
    row.raw.save(f"{item.sha256[:16]}.eml", ContentFile(item.raw), save=False)
    return row


def _store_one(lookups: _Lookups, item: _Incoming) -> None:
    row = item.row
    row.pk = None
    row._state.adding = True
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        default_storage.delete(row.raw.name)
        winners = _existing_rows(lookups.mailbox, lookups.workspace_id, [item])
        if not winners:
            raise
        item.row = None
        item.existing = min(winners, key=lambda found: found.pk)


def _header_summary(raw: bytes) -> HeaderSummary:
    try:
        return read_header_summary(raw)
    except (ValueError, TypeError, LookupError, UnicodeError, IndexError):
        # Storing the message matters more than its headers; processing records the error.
        logger.warning("unreadable header block", exc_info=True)
        return HeaderSummary(message_id="", from_address="", subject="", reply_to="")


def _existing_rows(
    mailbox: MailboxConnection | None, workspace_id: int, incoming: Sequence[_Incoming]
) -> list[InboundEmail]:
    """The stored rows any of these messages matches: one query, on the unique indexes
    the dedupe relies on — (mailbox, Message-ID) and (mailbox, provider id), or for mail
    with no mailbox, inbound_no_mailbox_message_id_unique (workspace, Message-ID)."""
    message_ids = sorted({item.message_id for item in incoming})
    if mailbox is None:
        rows = InboundEmail.objects.filter(
            workspace_id=workspace_id,
            received_without_mailbox=True,
            message_id__in=message_ids,
        )
    else:
        match = Q(message_id__in=message_ids)
        provider_ids = sorted({i.provider_message_id for i in incoming if i.provider_message_id})
        if provider_ids:
            match |= Q(provider_message_id__in=provider_ids)
        rows = InboundEmail.objects.filter(mailbox=mailbox).filter(match)
    return list(rows.order_by("pk"))


def _again(existing: InboundEmail, lookups: _Lookups | None = None) -> InboundEmail:
    if existing.status == InboundEmailStatus.RECEIVED:
        # Stored by an ingest that died before processing it.
        existing = process_inbound_email(existing, lookups=lookups)
    existing.was_duplicate = True
    return existing


class _Lookups:
    """What every message of one batch would read again, read once for the batch.

    Never kept across calls: an agent added or a mailbox connected between two pages of a
    sync is seen by the next page. Customers seen in the batch are kept too, and forgotten
    when a message's transaction rolls back (a customer it created is gone with it).
    """

    def __init__(
        self, *, mailbox: MailboxConnection | None, workspace: Workspace | None = None
    ) -> None:
        self.mailbox = mailbox
        self.workspace_id = mailbox.workspace_id if mailbox is not None else workspace.pk
        self._workspace = workspace
        self._addresses: set[str] | None = None
        self._agents: dict[str, Agent] | None = None
        self._agent_addresses: set[str] = set()
        self.customers: dict[str, Customer] = {}

    @classmethod
    def for_row(cls, inbound: InboundEmail) -> _Lookups:
        # A row with no mailbox (an upload, or its mailbox deleted since) is processed for
        # its workspace, without a mailbox's defaults.
        mailbox = (
            MailboxConnection.objects.select_related(
                "workspace", "default_team", "default_category"
            )
            .filter(pk=inbound.mailbox_id, workspace_id=inbound.workspace_id)
            .first()
            if inbound.mailbox_id
            else None
        )
        if mailbox is not None:
            return cls(mailbox=mailbox, workspace=mailbox.workspace)
        return cls(mailbox=None, workspace=Workspace.objects.get(pk=inbound.workspace_id))

    def serves(self, inbound: InboundEmail) -> bool:
        mailbox_id = self.mailbox.pk if self.mailbox is not None else None
        return (self.workspace_id, mailbox_id) == (inbound.workspace_id, inbound.mailbox_id)

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = self.mailbox.workspace
        return self._workspace

    def mailbox_addresses(self) -> set[str]:
        if self._addresses is None:
            self._addresses = {
                address.lower()
                for address in MailboxConnection.objects.for_workspace(
                    self.workspace_id
                ).values_list("email_address", flat=True)
            }
        return self._addresses

    def _load_agents(self) -> dict[str, Agent]:
        if self._agents is None:
            agents = list(Agent.objects.for_workspace(self.workspace_id).select_related("user"))
            self._agent_addresses = {agent.user.email for agent in agents}
            self._agents = {agent.user.email: agent for agent in agents if agent.is_active}
        return self._agents

    def active_agent(self, address: str) -> Agent | None:
        return self._load_agents().get(address)

    def is_agent_address(self, address: str) -> bool:
        """An agent of the workspace, active or not."""
        self._load_agents()
        return address in self._agent_addresses

    def customer(self, address: str, name: str) -> Customer:
        key = address.strip().lower()
        customer = self.customers.get(key)
        if customer is None or (name and not customer.name):
            customer, _created = customer_get_or_create(
                workspace=self.workspace, email=address, name=name
            )
            self.customers[key] = customer
        return customer

    def prefetch_customers(self, addresses: Iterable[str]) -> None:
        """Read the customers of these addresses at once (one query for a page); an
        address with no customer yet is created by ``customer`` when a message needs it."""
        wanted = sorted({a.strip().lower() for a in addresses if a} - set(self.customers))
        for start in range(0, len(wanted), IN_LIST_CHUNK):
            for customer in (
                Customer.objects.for_workspace(self.workspace_id)
                .filter(email__in=wanted[start : start + IN_LIST_CHUNK])
                .select_related("company")
                .order_by()
            ):
                self.customers[customer.email] = customer

    def forget(self) -> None:
        self.customers.clear()


# --- Process --------------------------------------------------------------------------------


def process_inbound_email(
    inbound: InboundEmail, *, raw: bytes | None = None, lookups: _Lookups | None = None
) -> InboundEmail:
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
        if lookups is None or not lookups.serves(inbound):
            lookups = _Lookups.for_row(inbound)
        _process(inbound, raw, lookups)
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


def _process(inbound: InboundEmail, raw: bytes | None, lookups: _Lookups) -> InboundEmail:
    """Process a row this process holds the claim on, in a transaction of its own; the
    row's fields are set to its outcome as written (no reading back)."""
    written: list[str] = []
    try:
        if raw is None:
            with inbound.raw.open("rb") as handle:
                raw = handle.read()
        result = _Processor(inbound, raw, written, lookups).run()
    except Exception as exc:  # noqa: BLE001 - recorded as failed and logged by _failure
        lookups.forget()
        _discard(written)
        fields = _failure(inbound, exc)
        if InboundEmail.objects.filter(pk=inbound.pk, status=InboundEmailStatus.PROCESSING).update(
            **fields
        ):
            _set(inbound, fields)
        return inbound
    _set(inbound, result)
    return inbound


def _failure(inbound: InboundEmail, exc: Exception) -> dict:
    """The outcome fields of a message that failed with ``exc`` (logged here)."""
    if isinstance(exc, InboundRejected):
        logger.warning("inbound email %s rejected: %s", inbound.pk, exc.code)
    else:
        logger.exception("inbound email %s failed", inbound.pk, exc_info=exc)
    return {
        "status": InboundEmailStatus.FAILED,
        "reason": (getattr(exc, "code", "") or "error")[:200],
        "error": _error_summary(exc),
        "updated_at": timezone.now(),
    }


def _discard(written: list[str]) -> None:
    # Files are not transactional: remove the attachments of rolled-back work.
    for name in written:
        default_storage.delete(name)
    written.clear()


def _set(inbound: InboundEmail, fields: dict) -> None:
    for name, value in fields.items():
        setattr(inbound, name, value)


def _error_summary(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-12)
    text = f"{type(exc).__name__}: {exc}\n\n" + "".join(lines)
    return text[-MAX_ERROR_LENGTH:]


# --- Pages ------------------------------------------------------------------------------------

# The outcome columns a page writes for all of its messages in one UPDATE.
OUTCOME_FIELDS = (
    "status",
    "reason",
    "ticket_id",
    "comment_id",
    "is_auto_reply",
    "processed_at",
    "error",
    "updated_at",
)
# Ids per IN list: a page of 50 messages with long References headers stays well below
# SQLite's limit on bound parameters.
IN_LIST_CHUNK = 2000
# pg_advisory_xact_lock(PAGE_LOCK_CLASS, workspace): one page of a workspace at a time.
PAGE_LOCK_CLASS = 0x456E5175


def _process_page(items: list[_Incoming], lookups: _Lookups) -> None:
    """Process freshly stored rows in ONE transaction, each message in a savepoint of its
    own: a failure rolls back that message alone and is recorded ``failed`` with its
    error, and the others go on. One commit (one fsync) per page instead of one per
    message, and what every message would look up — the mappings its thread ids name,
    its sender's customer — is read once for the page.

    The services' on-commit work (realtime, rules, SLA, notifications) runs after the
    page commits, once for each change of each message that stayed; a message rolled
    back to its savepoint takes its own with it (Django drops the on-commit callbacks of
    a savepoint rolled back). A message that lost a database race (deadlock,
    serialization failure) is processed again on its own after the page commits. If the
    page's transaction fails as a whole (its commit, a broken connection), nothing of it
    stays and every message is processed again one transaction at a time.
    """
    jobs = [_Job(item.row, item.raw) for item in items]
    for job in jobs:
        # Parsing needs no database: done before the transaction, so its locks are held
        # for the writing only.
        job.prepare(lookups)
    committed: list[bool] = []
    page: _Page | None = None
    try:
        with transaction.atomic():
            # Registered first, so it runs first once the page has committed: an exception
            # from a later on-commit callback then cannot pass for a failed page.
            transaction.on_commit(lambda: committed.append(True))
            _lock_page(lookups.workspace_id)
            page = _Page(lookups, _held(jobs))
            page.run()
    except Exception:
        if not committed:
            logger.exception(
                "inbound page of %s messages rolled back whole; processing them one by one",
                len(jobs),
            )
            lookups.forget()
            for job in jobs:
                _discard(job.written)
            for job in jobs:
                _process(job.row, job.raw, lookups)
            return
        logger.exception("an on-commit action failed after an inbound page committed")
    for job in page.jobs:
        if job.retry:
            _process(job.row, job.raw, lookups)
        elif job.fields is not None:
            _set(job.row, job.fields)
            _set(job.row, job.objects)


def _write_outcomes(outcomes: list[tuple[int, list]]) -> None:
    """Write the outcome columns (OUTCOME_FIELDS) of many rows in one UPDATE … FROM
    (VALUES …), which PostgreSQL and SQLite (3.33+) both speak. ``bulk_update`` would do
    it with a CASE per column and row, whose building cost more than the page's inserts."""
    if not outcomes:
        return
    meta = InboundEmail._meta
    fields = [meta.get_field(name.removesuffix("_id")) for name in OUTCOME_FIELDS]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = [quote(f.column) for f in fields]
    postgres = connection.vendor == "postgresql"
    if postgres:
        # Client-side binding sends literals: each column is cast to its type, or a page
        # whose rows all have NULL there would compare text with bigint.
        casts = ["%s::bigint", *(f"%s::{f.db_type(connection)}" for f in fields)]
        source = ", ".join(["id", *(f.column for f in fields)])
        value_names = ["id", *(f.column for f in fields)]
    else:
        casts = ["%s"] * (len(fields) + 1)
        value_names = [f"column{n}" for n in range(1, len(fields) + 2)]
    row_sql = "(" + ", ".join(casts) + ")"
    assignments = ", ".join(
        f"{column} = v.{quote(name)}" for column, name in zip(columns, value_names[1:], strict=True)
    )
    alias = f"v ({source})" if postgres else "v"
    for start in range(0, len(outcomes), IN_LIST_CHUNK // len(casts)):
        chunk = outcomes[start : start + IN_LIST_CHUNK // len(casts)]
        params: list = []
        for pk, values in chunk:
            params.append(pk)
            params += [
                f.get_db_prep_value(v, connection) for f, v in zip(fields, values, strict=True)
            ]
        with connection.cursor() as cursor:
            cursor.execute(
                # Table and column names are the model's; every value is a parameter.
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS {alias} "
                f"WHERE {table}.{quote('id')} = v.{quote(value_names[0])}",
                params,
            )


def _lock_page(workspace_id: int) -> None:
    """Take the workspace's page lock, first thing in the page's transaction.

    Two pages of one workspace would otherwise take the locks their messages need — the
    ticket counter (a new ticket), a ticket row (a reply), a new customer's address — in
    different orders and deadlock, each deadlock costing a message and deadlock_timeout.
    Pages of one workspace go one at a time (the rest of a page's work, parsing included,
    is done outside this lock); single messages, the UI and the API never wait for it.
    SQLite needs none: its IMMEDIATE transactions already write one at a time.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s::integer, %s::integer)",
            [PAGE_LOCK_CLASS, workspace_id % 2**31],
        )


def _held(jobs: list[_Job]) -> list[_Job]:
    """The jobs whose rows this process still holds, their rows locked until the page
    commits (``reprocess_email`` taking one over as abandoned waits, then finds it done)."""
    held = set(
        InboundEmail.objects.select_for_update()
        .filter(pk__in=[job.row.pk for job in jobs], status=InboundEmailStatus.PROCESSING)
        .order_by()
        .values_list("pk", flat=True)
    )
    return [job for job in jobs if job.row.pk in held]


@dataclass
class _Job:
    """One message of a page, from parsing to its outcome."""

    row: InboundEmail
    raw: bytes
    processor: _Processor | None = None
    # Parsing failed: recorded as the message's failure, with no savepoint needed.
    error: Exception | None = None
    written: list[str] = field(default_factory=list)
    # The outcome's columns, once decided (written for the whole page at its end), and
    # the ticket and comment objects to hand the caller.
    fields: dict | None = None
    objects: dict = field(default_factory=dict)
    # Lost a database race inside the page: processed again on its own after the commit.
    retry: bool = False

    def prepare(self, lookups: _Lookups) -> None:
        self.processor = _Processor(self.row, self.raw, self.written, lookups)
        try:
            self.processor.parse()
        except Exception as exc:  # noqa: BLE001 - kept, then recorded and logged by _failure
            self.error = exc

    def thread_ids(self) -> list[str]:
        """Every Message-ID this message may look up: its own, its thread's, and for a
        bounce the ids of the message that bounced."""
        if self.error is not None:
            return []
        parsed = self.processor.parsed
        ids = threads.wanted_ids(
            self.row.message_id, threads.header_thread_ids(parsed.in_reply_to, parsed.references)
        )
        if parsed.report is not None:
            ids += threads.wanted_ids("", parsed.report.original_ids)
        return ids

    def sender(self) -> str:
        if self.error is not None:
            return ""
        return self.processor.parsed.from_address or self.processor.parsed.sender_address


class _Page:
    """A page's transaction: its messages one savepoint each, the lookups they share, and
    the writes gathered for its end (the mappings, the outcomes)."""

    def __init__(self, lookups: _Lookups, jobs: list[_Job]) -> None:
        self.lookups = lookups
        self.jobs = jobs
        self.workspace_id = lookups.workspace_id
        # Mappings made by the page's messages, inserted at its end (or when the page stops
        # sharing lookups); the index holds them beside the stored ones so a reply threads
        # onto a ticket opened earlier in the same page.
        self.pending: list[EmailTicketMapping] = []
        self.index: dict[str, list[EmailTicketMapping]] | None = None
        self.order: dict[int, int] = {}
        # One object per ticket, so what a message changes (comment_create copies the
        # locked row's state back) is what the next message sees.
        self.tickets: dict[int, Ticket] = {}

    def run(self) -> None:
        self.prefetch()
        for job in self.jobs:
            job.processor.page = self
            self.process(job)
            job.processor = None  # the parsed message and its attachments go now
        self.flush_mappings()
        _write_outcomes(
            [
                (
                    job.row.pk,
                    [job.fields.get(name, getattr(job.row, name)) for name in OUTCOME_FIELDS],
                )
                for job in self.jobs
                if job.fields is not None
            ]
        )

    def prefetch(self) -> None:
        wanted = sorted({mid for job in self.jobs for mid in job.thread_ids()})
        self.index = {}
        for start in range(0, len(wanted), IN_LIST_CHUNK):
            for row in threads.mappings(self.workspace_id, wanted[start : start + IN_LIST_CHUNK]):
                row.ticket = self.tickets.setdefault(row.ticket_id, row.ticket)
                self.index_add(row)
        self.lookups.prefetch_customers(job.sender() for job in self.jobs)

    def index_add(self, row: EmailTicketMapping) -> None:
        self.order[id(row)] = len(self.order)
        self.index.setdefault(row.message_id, []).append(row)

    def known(self, message_id: str, thread_ids: list[str]) -> threads.Known:
        if self.index is None:
            return threads.lookup(self.workspace_id, message_id, thread_ids)
        wanted = threads.wanted_ids(message_id, thread_ids)
        rows = [row for mid in wanted for row in self.index.get(mid, ())]
        rows.sort(key=lambda row: self.order[id(row)])
        return threads.resolve(self.workspace_id, message_id, thread_ids, rows)

    def map(self, row: EmailTicketMapping) -> None:
        if self.index is None:
            row.save(force_insert=True)
            return
        row.ticket = self.tickets.setdefault(row.ticket_id, row.ticket)
        self.pending.append(row)
        self.index_add(row)

    def flush_mappings(self) -> None:
        if self.pending:
            EmailTicketMapping.objects.bulk_create(self.pending)
            self.pending = []

    def process(self, job: _Job) -> None:
        processor = job.processor
        if job.error is not None:
            job.fields = _failure(job.row, job.error)
            return
        pending = len(self.pending)
        try:
            # Ignored mail writes nothing: no savepoint for it.
            result = processor.early()
            if result is None:
                with transaction.atomic():
                    result = processor.decide(processor.verdict)
        except Exception as exc:  # noqa: BLE001 - retried, or recorded and logged by _failure
            del self.pending[pending:]
            self.stop_sharing()
            _discard(job.written)
            if isinstance(exc, OperationalError):
                logger.warning("inbound email %s lost a database race; retried alone", job.row.pk)
                job.retry = True
                return
            job.fields = _failure(job.row, exc)
            return
        job.fields = _outcome(result)
        job.objects = {
            name: value
            for name, value in (("ticket", result.ticket), ("comment", result.comment))
            if value is not None
        }

    def stop_sharing(self) -> None:
        """After a message rolled back: what the page read or made for it may be stale
        (a customer it created is gone, a ticket object holds state that was undone). The
        mappings of the messages that stayed are written now, and the rest of the page
        looks everything up in the database, message by message."""
        self.lookups.forget()
        if self.index is not None:
            self.flush_mappings()
            self.index = None
            self.order.clear()
            self.tickets.clear()


def _outcome(result: _Result) -> dict:
    now = timezone.now()
    return {
        "status": result.status,
        "reason": str(result.reason)[:200],
        "ticket_id": result.ticket.pk if result.ticket else result.ticket_id,
        "comment_id": result.comment.pk if result.comment else result.comment_id,
        "is_auto_reply": result.is_auto_reply,
        "processed_at": now,
        "error": "",
        "updated_at": now,
    }


@dataclass
class _Result:
    status: str
    reason: str
    ticket: Ticket | None = None
    comment: Comment | None = None
    is_auto_reply: bool = False
    # A duplicate names what it duplicates by id alone.
    ticket_id: int | None = None
    comment_id: int | None = None


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
    def __init__(
        self, inbound: InboundEmail, raw: bytes, written: list[str], lookups: _Lookups
    ) -> None:
        self.inbound = inbound
        self.raw = raw
        self.written = written
        self.lookups = lookups
        self.mailbox = lookups.mailbox
        self.workspace = lookups.workspace
        # Set when the message is processed as part of a page.
        self.page: _Page | None = None

    def parse(self) -> None:
        self.parsed = parse_email(self.raw, max_size=settings.MAX_INBOUND_EMAIL_SIZE)
        self.verdict = classify(self.parsed, ignore_lists=settings.INBOUND_IGNORE_LISTS)
        self.raw = b""  # parsed: the bytes are the caller's (and storage's) from here on

    def run(self) -> dict:
        """Process the message in one transaction; the outcome's fields as written."""
        self.parse()
        with transaction.atomic():
            result = self.early() or self.decide(self.verdict)
            fields = _outcome(result)
            updated = InboundEmail.objects.filter(
                pk=self.inbound.pk, status=InboundEmailStatus.PROCESSING
            ).update(**fields)
            if not updated:
                # reprocess_email took the row over as abandoned: its run owns the outcome.
                raise RuntimeError("Lost the claim on this message while processing it.")
        # The objects themselves, so a caller reading row.ticket reads no row back.
        if result.ticket is not None:
            fields["ticket"] = result.ticket
        if result.comment is not None:
            fields["comment"] = result.comment
        return fields

    # --- Deciding -------------------------------------------------------------------------

    def early(self) -> _Result | None:
        """The outcome of mail that is dropped without writing anything (or rejected),
        else ``None``: ``decide`` has the rest."""
        parsed, verdict = self.parsed, self.verdict
        if verdict.kind == Kind.IGNORE and verdict.reason == Outcome.OWN_MESSAGE:
            return self.ignored(verdict.reason)
        sender = parsed.from_address or parsed.sender_address
        if sender and sender in self.mailbox_addresses():
            return self.ignored(Outcome.FROM_OWN_MAILBOX)
        if verdict.kind == Kind.BOUNCE:
            return None
        if verdict.kind == Kind.IGNORE:
            return self.ignored(verdict.reason)
        if not sender:
            raise InboundRejected(Outcome.NO_SENDER, "The message has no sender address.")
        return None

    def known(self, message_id: str, thread_ids: list[str]) -> threads.Known:
        if self.page is not None:
            return self.page.known(message_id, thread_ids)
        return threads.lookup(self.workspace.pk, message_id, thread_ids)

    def decide(self, verdict: Verdict) -> _Result:
        """What becomes of a message ``early`` did not settle; writes it."""
        parsed = self.parsed
        sender = parsed.from_address or parsed.sender_address
        if verdict.kind == Kind.BOUNCE:
            return self.bounce()

        ws_id = self.workspace.pk
        known = self.known(
            self.inbound.message_id,
            threads.header_thread_ids(parsed.in_reply_to, parsed.references),
        )
        if known.duplicate is not None:
            # The same message already came in through another mailbox of the workspace
            # (a customer wrote to support@ and sales@ at once): one ticket, not two.
            ticket_id, comment_id = known.duplicate
            return _Result(
                InboundEmailStatus.PROCESSED,
                Outcome.DUPLICATE,
                ticket_id=ticket_id,
                comment_id=comment_id,
            )

        agent = self.lookups.active_agent(sender)
        target = known.ticket or threads.ticket_for_subject(ws_id, parsed.subject, sender)

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
        return self.lookups.mailbox_addresses()

    def customer(self, address: str, name: str) -> Customer:
        customer = self.lookups.customer(address, name[:200])
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
        if address in self.mailbox_addresses() or self.lookups.is_agent_address(address):
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
            priority=mailbox.default_priority if mailbox else TicketPriority.NORMAL,
            team=mailbox.default_team if mailbox else None,
            category=mailbox.default_category if mailbox else None,
            mailbox=mailbox,
            attachments=content.attachments,
            original_html=content.original_html,
            original_text=content.original_text,
        )
        comment = getattr(ticket, "opening_comment", None)
        if comment is None:
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
        customer = self.lookups.customer(sender, self.parsed.from_name[:200])
        content = self.content(strip_quotes=True)
        comment = comment_create(
            ticket=ticket,
            actor=Actor.for_customer(customer),
            body_html=content.body_html,
            body_text=content.body_text,
            via=CommentVia.EMAIL,
            attachments=content.attachments,
            # An out-of-office reply is not the customer getting back to us: it reopens
            # nothing, and rules for customer replies (an auto-response) skip it.
            reopen=False,
            auto_reply=True,
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
        into = f" into {self.mailbox.email_address}" if self.mailbox else ""
        note = f"Forwarded{into} by {agent.name} <{agent.user.email}>."
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
            now = timezone.now()
            Customer.objects.for_workspace(self.workspace).filter(email__in=recipients).update(
                email_bounced_at=now
            )
            for recipient in recipients:
                if recipient in self.lookups.customers:
                    self.lookups.customers[recipient].email_bounced_at = now
        ticket = self.known("", report.original_ids if report else []).ticket
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
        row = EmailTicketMapping(
            workspace=self.workspace,
            mailbox=self.mailbox,
            ticket=ticket,
            comment=comment,
            direction=MailDirection.INBOUND,
            provider_message_id=self.inbound.provider_message_id,
            message_id=self.inbound.message_id,
        )
        if self.page is not None:
            self.page.map(row)
        else:
            row.save(force_insert=True)

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
