"""Every change to a ticket goes through here.

The REST API, the agent UI, the email pipeline, automations and scheduled jobs all call
these functions. Each one takes the acting party explicitly, validates (another workspace's
objects are refused here, whatever the caller checked), writes inside one transaction,
records ``TicketEvent`` rows, and announces the change through ``tickets.hooks.emit`` so
realtime, automations and outbound mail react only after the commit.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import nh3
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from enque.errors import Conflict, EnqueError, Forbidden, InvalidInput, NotFound
from tickets import hooks, search
from tickets.actors import Actor
from tickets.models import (
    ActorType,
    AuthorType,
    CannedReply,
    Category,
    Comment,
    CommentVia,
    SavedView,
    ScheduledComment,
    ScheduledCommentStatus,
    Tag,
    Ticket,
    TicketAttachment,
    TicketBody,
    TicketChannel,
    TicketCounter,
    TicketEvent,
    TicketEventKind,
    TicketPriority,
    TicketStatus,
    TicketTag,
)
from tickets.placeholders import PlaceholderContext, Rendered, render_placeholders
from workspaces.models import Agent, Customer, Team, Workspace
from workspaces.services import ensure_same_workspace

logger = logging.getLogger(__name__)

# Marks "argument not given" where None is a meaningful value (unassign).
UNSET: Any = object()

MAX_TAG_LENGTH = 64
MAX_SUBJECT_LENGTH = 998
# Status moves that a customer's message causes: waiting or done tickets need an agent again.
REOPENED_BY_CUSTOMER = (TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.ON_HOLD)


# --- Helpers -----------------------------------------------------------------------------


def sanitize_html(value: str) -> str:
    """HTML safe to show agents: no script, no event handlers, links kept and made safe."""
    return nh3.clean(value, link_rel="noopener noreferrer nofollow")


_TAG_RE = re.compile(r"<[^>]+>")
_BLOCK_END_RE = re.compile(r"</(p|div|li|tr|h[1-6]|blockquote)>|<br\s*/?>", re.IGNORECASE)


def html_to_text(value: str) -> str:
    text = _BLOCK_END_RE.sub("\n", value)
    text = html.unescape(_TAG_RE.sub("", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def text_to_html(value: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", value.strip()) if p]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def _bodies(body_html: str, body_text: str) -> tuple[str, str]:
    body_html = sanitize_html(body_html) if body_html else ""
    if body_html and not body_text:
        body_text = html_to_text(body_html)
    elif body_text and not body_html:
        body_html = text_to_html(body_text)
    return body_html, body_text


def _event(
    ticket: Ticket,
    actor: Actor,
    kind: str,
    *,
    field: str = "",
    old: Any = None,
    new: Any = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TicketEvent:
    return TicketEvent(
        workspace_id=ticket.workspace_id,
        ticket=ticket,
        kind=kind,
        actor_type=actor.type,
        actor_agent=actor.agent,
        actor_customer=actor.customer,
        field=field,
        old_value=old,
        new_value=new,
        data={
            **(data or {}),
            **({"automation": actor.automation_id} if actor.automation_id else {}),
        },
        created_at=at or timezone.now(),
    )


def _emit(type_: str, ticket: Ticket, actor: Actor, data: dict[str, Any] | None = None) -> None:
    hooks.emit(
        hooks.TicketChange(
            type=type_,
            workspace_id=ticket.workspace_id,
            ticket_id=ticket.pk,
            ticket_number=ticket.number,
            actor=actor.as_payload(),
            data=data or {},
        )
    )


def _check_actor(workspace_id: int, actor: Actor) -> None:
    if actor.workspace_id is not None and actor.workspace_id != workspace_id:
        raise NotFound("Ticket not found.", code="not_found")
    if actor.agent is not None and not actor.agent.is_active:
        raise Forbidden("This agent is deactivated.", code="agent_inactive")


def _check_can_change(actor: Actor) -> None:
    if actor.is_customer:
        raise Forbidden("Customers cannot change tickets.", code="forbidden")
    if actor.agent is not None and not actor.agent.can_reply:
        raise Forbidden(
            "Light agents can read tickets and add internal notes only.", code="light_agent"
        )


def _check_assignee(workspace: Workspace | int, assignee: Agent | None) -> None:
    ws_id = workspace if isinstance(workspace, int) else workspace.pk
    if assignee is None:
        return
    if assignee.workspace_id != ws_id:
        raise InvalidInput(
            "Unknown assignee in this workspace.", code="invalid_reference", field="assignee"
        )
    if not assignee.is_active:
        raise InvalidInput("That agent is deactivated.", code="agent_inactive", field="assignee")


def allocate_ticket_number(workspace: Workspace | int) -> int:
    """The next number of the workspace's sequence; call inside the ticket's transaction.

    The UPDATE takes the counter row's lock until the transaction ends, so concurrent
    creations in one workspace queue here; a rollback returns the number (no gaps).
    """
    ws_id = workspace if isinstance(workspace, int) else workspace.pk
    # One statement on the hot path (every new ticket): UPDATE … RETURNING, which
    # PostgreSQL and SQLite (3.35+) both speak; the ORM's update() cannot return a value.
    table = connection.ops.quote_name(TicketCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            # The table name is ours; the value is a parameter.
            f"UPDATE {table} SET last_number = last_number + 1 "  # noqa: S608
            "WHERE workspace_id = %s RETURNING last_number",
            [ws_id],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    counter = TicketCounter.objects.filter(workspace_id=ws_id)
    if not counter.update(last_number=F("last_number") + 1):
        # Workspaces made by workspace_create have a counter; older or hand-made ones get it
        # here. Two creators racing to make it: the loser's insert fails and it retries.
        try:
            with transaction.atomic():
                TicketCounter.objects.create(workspace_id=ws_id, last_number=0)
        except IntegrityError:
            pass
        counter.update(last_number=F("last_number") + 1)
    return counter.values_list("last_number", flat=True).get()


def _tags_by_name(workspace_id: int, names: Iterable[str]) -> list[Tag]:
    cleaned: dict[str, str] = {}
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        if len(name) > MAX_TAG_LENGTH:
            raise InvalidInput(
                f"Tags are at most {MAX_TAG_LENGTH} characters.", code="invalid", field="tags"
            )
        cleaned.setdefault(name.lower(), name)
    if not cleaned:
        return []
    # The names that exist, in one query (the common case: a ticket's tags plus one more);
    # any other goes through the case-insensitive lookup, then is created.
    found = {
        tag.name.lower(): tag
        for tag in Tag.objects.for_workspace(workspace_id)
        .annotate(lowered=Lower("name"))
        .filter(lowered__in=list(cleaned))
    }
    tags = []
    for lowered, name in cleaned.items():
        tag = found.get(lowered)
        if tag is None:
            tag = Tag.objects.for_workspace(workspace_id).filter(name__iexact=lowered).first()
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(workspace_id=workspace_id, name=name)
            except IntegrityError:
                tag = Tag.objects.for_workspace(workspace_id).get(name__iexact=lowered)
        tags.append(tag)
    return tags


def _claim_attachments(
    workspace_id: int,
    attachments: Sequence[TicketAttachment],
    *,
    ticket: Ticket,
    comment: Comment | None = None,
    scheduled: ScheduledComment | None = None,
) -> list[int]:
    ids = [a.pk for a in attachments]
    if not ids:
        return []
    for attachment in attachments:
        if attachment.workspace_id != workspace_id:
            raise InvalidInput(
                "Unknown attachment.", code="invalid_reference", field="attachment_ids"
            )
    # Unused uploads only: not yet on a comment or a scheduled reply, nor on another ticket.
    claimed = (
        TicketAttachment.objects.for_workspace(workspace_id)
        .filter(pk__in=ids, comment__isnull=True, scheduled_comment__isnull=True)
        .filter(Q(ticket__isnull=True) | Q(ticket=ticket))
    )
    updated = claimed.update(ticket=ticket, comment=comment, scheduled_comment=scheduled)
    if updated != len(set(ids)):
        raise Conflict(
            "An attachment is already used elsewhere.",
            code="attachment_in_use",
            field="attachment_ids",
        )
    return ids


def _validate_choice(value: str, choices: type, field: str) -> str:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise InvalidInput(f"{field} must be one of {allowed}.", code="invalid_choice", field=field)
    return value


def _apply_status(ticket: Ticket, status: str, now: datetime) -> list[str]:
    """Set status and keep resolved_at / closed_at true to it; return the changed fields."""
    changed = ["status"]
    ticket.status = status
    if status == TicketStatus.RESOLVED:
        ticket.resolved_at = now
        ticket.closed_at = None
        changed += ["resolved_at", "closed_at"]
    elif status == TicketStatus.CLOSED:
        if ticket.resolved_at is None:
            ticket.resolved_at = now
            changed.append("resolved_at")
        ticket.closed_at = now
        changed.append("closed_at")
    elif ticket.resolved_at or ticket.closed_at:
        # Reopened: the clocks start again.
        ticket.resolved_at = None
        ticket.closed_at = None
        changed += ["resolved_at", "closed_at"]
    return changed


# --- Tickets -------------------------------------------------------------------------------


def ticket_create(
    *,
    workspace: Workspace,
    actor: Actor,
    subject: str,
    customer: Customer,
    body_html: str = "",
    body_text: str = "",
    channel: str = TicketChannel.WEB,
    priority: str = TicketPriority.NORMAL,
    status: str | None = None,
    assignee: Agent | None = None,
    team: Team | None = None,
    category: Category | None = None,
    mailbox: Any = None,
    tags: Iterable[str] = (),
    attachments: Sequence[TicketAttachment] = (),
    via: str | None = None,
    original_html: str | None = None,
    original_text: str | None = None,
) -> Ticket:
    """Open a ticket with its first message.

    The first message is the customer's when a customer (or the email pipeline on their
    behalf) writes in, and the agent's public message when an agent opens the ticket.
    ``original_html``/``original_text`` keep a received email whole in ``TicketBody`` when
    the displayed comment is trimmed of quoted history.
    """
    _check_actor(workspace.pk, actor)
    if actor.agent is not None and not actor.agent.can_reply:
        raise Forbidden("Light agents cannot open tickets.", code="light_agent")
    subject = " ".join(subject.split())
    if not subject:
        raise InvalidInput("A ticket needs a subject.", code="required", field="subject")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidInput("The subject is too long.", code="max_length", field="subject")
    _validate_choice(channel, TicketChannel, "channel")
    _validate_choice(priority, TicketPriority, "priority")
    status = status or (TicketStatus.OPEN if assignee else TicketStatus.NEW)
    _validate_choice(status, TicketStatus, "status")
    ensure_same_workspace(workspace, customer, field="customer")
    _check_assignee(workspace, assignee)
    ensure_same_workspace(workspace, team, field="team")
    ensure_same_workspace(workspace, category, field="category")
    ensure_same_workspace(workspace, mailbox, field="mailbox")
    body_html, body_text = _bodies(body_html, body_text)
    if not body_text.strip() and not attachments:
        raise InvalidInput("The first message needs a body.", code="required", field="body")

    now = timezone.now()
    with transaction.atomic():
        ticket = Ticket.objects.create(
            workspace=workspace,
            number=allocate_ticket_number(workspace),
            subject=subject,
            status=status,
            priority=priority,
            channel=channel,
            customer=customer,
            company=customer.company,
            assignee=assignee,
            team=team,
            category=category,
            mailbox=mailbox,
            created_at=now,
            last_customer_reply_at=now if not actor.is_agent else None,
            last_agent_reply_at=now if actor.is_agent else None,
            resolved_at=now if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) else None,
            closed_at=now if status == TicketStatus.CLOSED else None,
            search_document=search.initial_document(subject, body_text),
        )
        # Written by the INSERT itself; then treated as not loaded, so that a later save()
        # of this instance cannot write the expression again over appended comments.
        ticket.__dict__.pop("search_document", None)
        TicketBody.objects.create(
            workspace=workspace,
            ticket=ticket,
            html=sanitize_html(original_html) if original_html else body_html,
            text=original_text if original_text is not None else body_text,
        )
        if actor.is_agent:
            author = {"author_type": AuthorType.AGENT, "author_agent": actor.agent}
        elif actor.type == ActorType.SYSTEM and via != CommentVia.EMAIL:
            author = {"author_type": AuthorType.SYSTEM}
        else:
            author = {"author_type": AuthorType.CUSTOMER, "author_customer": customer}
        comment = Comment.objects.create(
            workspace=workspace,
            ticket=ticket,
            is_internal=False,
            via=via or _via_for_channel(channel),
            body_html=body_html,
            body_text=body_text,
            created_at=now,
            **author,
        )
        _claim_attachments(workspace.pk, attachments, ticket=ticket, comment=comment)
        # For callers that need the first message (the email pipeline maps its Message-ID
        # to it) without reading it back.
        ticket.opening_comment = comment
        tag_objects = _tags_by_name(workspace.pk, tags)
        TicketTag.objects.bulk_create(
            [TicketTag(workspace=workspace, ticket=ticket, tag=tag) for tag in tag_objects]
        )
        _event(
            ticket,
            actor,
            TicketEventKind.CREATED,
            data={
                "subject": subject,
                "status": status,
                "priority": priority,
                "channel": channel,
                "assignee": assignee.pk if assignee else None,
                "team": team.pk if team else None,
                "category": category.pk if category else None,
                "tags": [t.name for t in tag_objects],
                "comment": comment.pk,
            },
            at=now,
        ).save()
        _emit("ticket.created", ticket, actor, {"comment": comment.pk, "status": status})
        if assignee:
            _emit("ticket.assigned", ticket, actor, {"assignee": assignee.pk, "previous": None})
    return ticket


def _via_for_channel(channel: str) -> str:
    return {
        TicketChannel.EMAIL: CommentVia.EMAIL,
        TicketChannel.API: CommentVia.API,
    }.get(channel, CommentVia.WEB)


def _lock(ticket: Ticket) -> Ticket:
    """Re-read the ticket under a row lock so concurrent changes serialise."""
    try:
        return Ticket.objects.select_for_update().get(
            pk=ticket.pk, workspace_id=ticket.workspace_id, deleted_at__isnull=True
        )
    except Ticket.DoesNotExist:
        raise NotFound("Ticket not found.") from None


def _copy_state(source: Ticket, target: Ticket) -> Ticket:
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


def ticket_update(
    *,
    ticket: Ticket,
    actor: Actor,
    subject: str = UNSET,
    status: str = UNSET,
    priority: str = UNSET,
    assignee: Agent | None = UNSET,
    team: Team | None = UNSET,
    category: Category | None = UNSET,
    tags: Iterable[str] = UNSET,
) -> list[str]:
    """Change any of a ticket's fields at once; returns the names of the fields that changed.

    One ``TicketEvent`` per changed field; ``ticket.updated`` carries them all, and
    ``ticket.assigned`` follows an assignment change.
    """
    _check_actor(ticket.workspace_id, actor)
    _check_can_change(actor)
    ws_id = ticket.workspace_id
    if subject is not UNSET:
        subject = " ".join(str(subject).split())
        if not subject:
            raise InvalidInput("A ticket needs a subject.", code="required", field="subject")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise InvalidInput("The subject is too long.", code="max_length", field="subject")
    if status is not UNSET:
        _validate_choice(status, TicketStatus, "status")
    if priority is not UNSET:
        _validate_choice(priority, TicketPriority, "priority")
    if assignee is not UNSET:
        _check_assignee(ws_id, assignee)
    for name, value in (("team", team), ("category", category)):
        if value is not UNSET and value is not None and value.workspace_id != ws_id:
            raise InvalidInput(
                f"Unknown {name} in this workspace.", code="invalid_reference", field=name
            )

    now = timezone.now()
    with transaction.atomic():
        locked = _lock(ticket)
        if locked.merged_into_id:
            raise Conflict("This ticket was merged into another one.", code="ticket_merged")
        events: list[TicketEvent] = []
        update_fields: set[str] = set()
        changes: dict[str, dict[str, Any]] = {}

        def record(field: str, old: Any, new: Any) -> None:
            events.append(
                _event(
                    locked,
                    actor,
                    TicketEventKind.FIELD_CHANGED,
                    field=field,
                    old=old,
                    new=new,
                    at=now,
                )
            )
            changes[field] = {"old": old, "new": new}

        if subject is not UNSET and subject != locked.subject:
            record("subject", locked.subject, subject)
            locked.subject = subject
            update_fields.add("subject")
        if status is not UNSET and status != locked.status:
            record("status", locked.status, status)
            update_fields.update(_apply_status(locked, status, now))
        if priority is not UNSET and priority != locked.priority:
            record("priority", locked.priority, priority)
            locked.priority = priority
            update_fields.add("priority")
        previous_assignee = locked.assignee_id
        for name, value in (("assignee", assignee), ("team", team), ("category", category)):
            if value is UNSET:
                continue
            new_id = value.pk if value is not None else None
            old_id = getattr(locked, f"{name}_id")
            if new_id != old_id:
                record(name, old_id, new_id)
                setattr(locked, name, value)
                update_fields.add(name)
        if (
            assignee is not UNSET
            and assignee is not None
            and "assignee" in changes
            and locked.status == TicketStatus.NEW
            and "status" not in changes
        ):
            # Someone owns it now: it is being worked on.
            record("status", locked.status, TicketStatus.OPEN)
            update_fields.update(_apply_status(locked, TicketStatus.OPEN, now))
        if tags is not UNSET:
            tag_change = _set_tags(locked, tags)
            if tag_change:
                events.append(
                    _event(
                        locked,
                        actor,
                        TicketEventKind.TAGS_CHANGED,
                        field="tags",
                        old=tag_change[0],
                        new=tag_change[1],
                        at=now,
                    )
                )
                changes["tags"] = {"old": tag_change[0], "new": tag_change[1]}
        if not changes:
            return []
        locked.updated_at = now
        update_fields.add("updated_at")
        locked.save(update_fields=sorted(update_fields))
        if "subject" in update_fields:
            search.rebuild([locked.pk])
        TicketEvent.objects.bulk_create(events)
        _copy_state(locked, ticket)
        _emit("ticket.updated", locked, actor, {"changes": changes})
        if "assignee" in changes:
            _emit(
                "ticket.assigned",
                locked,
                actor,
                {"assignee": locked.assignee_id, "previous": previous_assignee},
            )
    return list(changes)


def _set_tags(ticket: Ticket, names: Iterable[str]) -> tuple[list[str], list[str]] | None:
    wanted = _tags_by_name(ticket.workspace_id, names)
    current = list(Tag.objects.filter(ticket_tags__ticket=ticket).order_by("name"))
    wanted_ids = {t.pk for t in wanted}
    current_ids = {t.pk for t in current}
    if wanted_ids == current_ids:
        return None
    TicketTag.objects.filter(ticket=ticket).exclude(tag_id__in=wanted_ids).delete()
    TicketTag.objects.bulk_create(
        [
            TicketTag(workspace_id=ticket.workspace_id, ticket=ticket, tag=tag)
            for tag in wanted
            if tag.pk not in current_ids
        ]
    )
    return sorted(t.name for t in current), sorted(t.name for t in wanted)


def ticket_set_status(*, ticket: Ticket, actor: Actor, status: str) -> list[str]:
    return ticket_update(ticket=ticket, actor=actor, status=status)


def ticket_assign(
    *, ticket: Ticket, actor: Actor, assignee: Agent | None = UNSET, team: Team | None = UNSET
) -> list[str]:
    return ticket_update(ticket=ticket, actor=actor, assignee=assignee, team=team)


def ticket_add_tags(*, ticket: Ticket, actor: Actor, tags: Iterable[str]) -> list[str]:
    current = list(ticket.tags.values_list("name", flat=True))
    return ticket_update(ticket=ticket, actor=actor, tags=[*current, *tags])


def ticket_remove_tags(*, ticket: Ticket, actor: Actor, tags: Iterable[str]) -> list[str]:
    drop = {t.strip().lower() for t in tags}
    keep = [name for name in ticket.tags.values_list("name", flat=True) if name.lower() not in drop]
    return ticket_update(ticket=ticket, actor=actor, tags=keep)


# --- The thread ----------------------------------------------------------------------------


def comment_create(
    *,
    ticket: Ticket,
    actor: Actor,
    body_html: str = "",
    body_text: str = "",
    internal: bool = False,
    via: str = CommentVia.WEB,
    attachments: Sequence[TicketAttachment] = (),
    status: str | None = None,
    reopen: bool = True,
    auto_reply: bool = False,
) -> Comment:
    """Add a public reply or an internal note, and keep the ticket's clocks true.

    - an agent's public reply sets ``last_agent_reply_at`` (and ``first_response_at`` the
      first time one answers a customer) and moves a new ticket to open;
    - a customer's message sets ``last_customer_reply_at`` and, unless ``reopen`` is off
      (an out-of-office reply), puts a pending, on-hold or resolved ticket back to open;
    - ``auto_reply`` marks a customer's message as automatic (out-of-office): it never
      reopens, and its history row and ``comment.created`` change say so, so rules for
      customer replies (an auto-response) leave it alone;
    - ``status`` sets the ticket's status in the same step ("reply and set pending").
    """
    _check_actor(ticket.workspace_id, actor)
    if actor.is_customer and internal:
        raise InvalidInput(
            "Customers cannot write internal notes.", code="invalid", field="internal"
        )
    if actor.agent is not None and not internal and not actor.agent.can_reply:
        raise Forbidden("Light agents can add internal notes only.", code="light_agent")
    if status is not None:
        _check_can_change(actor)
        _validate_choice(status, TicketStatus, "status")
    _validate_choice(via, CommentVia, "via")
    body_html, body_text = _bodies(body_html, body_text)
    if not body_text.strip() and not attachments:
        raise InvalidInput("A reply needs a body.", code="required", field="body")

    now = timezone.now()
    with transaction.atomic():
        locked = _lock(ticket)
        if locked.merged_into_id:
            raise Conflict("This ticket was merged into another one.", code="ticket_merged")
        if actor.is_agent:
            author = {"author_type": AuthorType.AGENT, "author_agent": actor.agent}
        elif actor.is_customer:
            author = {"author_type": AuthorType.CUSTOMER, "author_customer": actor.customer}
        else:
            author = {"author_type": AuthorType.SYSTEM}
        comment = Comment.objects.create(
            workspace_id=locked.workspace_id,
            ticket=locked,
            is_internal=internal,
            via=via,
            body_html=body_html,
            body_text=body_text,
            created_at=now,
            **author,
        )
        _claim_attachments(locked.workspace_id, attachments, ticket=locked, comment=comment)
        search.append(locked.pk, body_text)

        update_fields = {"updated_at"}
        events: list[TicketEvent] = []
        new_status: str | None = status
        if internal:
            kind = TicketEventKind.NOTE_ADDED
        elif actor.is_customer:
            kind = TicketEventKind.CUSTOMER_REPLIED
            locked.last_customer_reply_at = now
            update_fields.add("last_customer_reply_at")
            if (
                new_status is None
                and reopen
                and not auto_reply
                and locked.status in REOPENED_BY_CUSTOMER
            ):
                new_status = TicketStatus.OPEN
        elif actor.is_agent or actor.type == ActorType.AUTOMATION:
            kind = TicketEventKind.REPLIED
            locked.last_agent_reply_at = now
            update_fields.add("last_agent_reply_at")
            # An automatic acknowledgement is not a response: only a person's reply stops
            # the first-response clock.
            if (
                actor.is_agent
                and locked.first_response_at is None
                and locked.last_customer_reply_at is not None
            ):
                locked.first_response_at = now
                update_fields.add("first_response_at")
            if new_status is None and locked.status == TicketStatus.NEW:
                new_status = TicketStatus.OPEN
        else:
            kind = TicketEventKind.REPLIED
        flagged = {"auto_reply": True} if auto_reply and actor.is_customer else {}
        events.append(_event(locked, actor, kind, data={"comment": comment.pk, **flagged}, at=now))
        changes: dict[str, dict[str, Any]] = {}
        if new_status is not None and new_status != locked.status:
            events.append(
                _event(
                    locked,
                    actor,
                    TicketEventKind.FIELD_CHANGED,
                    field="status",
                    old=locked.status,
                    new=new_status,
                    at=now,
                )
            )
            changes["status"] = {"old": locked.status, "new": new_status}
            update_fields.update(_apply_status(locked, new_status, now))
        locked.updated_at = now
        locked.save(update_fields=sorted(update_fields))
        TicketEvent.objects.bulk_create(events)
        _copy_state(locked, ticket)
        _emit(
            "comment.created",
            locked,
            actor,
            {
                "comment": comment.pk,
                "internal": internal,
                "author_type": comment.author_type,
                **flagged,
            },
        )
        if changes:
            _emit("ticket.updated", locked, actor, {"changes": changes})
    return comment


def comment_schedule(
    *,
    ticket: Ticket,
    actor: Actor,
    send_at: datetime,
    body_html: str = "",
    body_text: str = "",
    internal: bool = False,
    attachments: Sequence[TicketAttachment] = (),
) -> ScheduledComment:
    """Write a reply now, to be posted (and mailed) at ``send_at`` by the beat task."""
    _check_actor(ticket.workspace_id, actor)
    if not actor.is_agent:
        raise Forbidden("Only agents schedule replies.", code="forbidden")
    if not internal and not actor.agent.can_reply:
        raise Forbidden("Light agents can add internal notes only.", code="light_agent")
    if timezone.is_naive(send_at):
        raise InvalidInput("send_at needs a time zone.", code="invalid", field="send_at")
    if send_at <= timezone.now():
        raise InvalidInput("send_at must be in the future.", code="invalid", field="send_at")
    body_html, body_text = _bodies(body_html, body_text)
    if not body_text.strip() and not attachments:
        raise InvalidInput("A reply needs a body.", code="required", field="body")
    with transaction.atomic():
        locked = _lock(ticket)
        if locked.merged_into_id:
            raise Conflict("This ticket was merged into another one.", code="ticket_merged")
        scheduled = ScheduledComment.objects.create(
            workspace_id=locked.workspace_id,
            ticket=locked,
            author=actor.agent,
            is_internal=internal,
            body_html=body_html,
            body_text=body_text,
            send_at=send_at,
        )
        _claim_attachments(locked.workspace_id, attachments, ticket=locked, scheduled=scheduled)
        _event(
            locked,
            actor,
            TicketEventKind.REPLY_SCHEDULED,
            data={"scheduled_comment": scheduled.pk, "send_at": send_at.isoformat()},
        ).save()
    return scheduled


def scheduled_comment_cancel(*, scheduled: ScheduledComment, actor: Actor) -> ScheduledComment:
    _check_actor(scheduled.workspace_id, actor)
    is_author = actor.agent is not None and actor.agent.pk == scheduled.author_id
    if not is_author:
        _check_can_change(actor)
    with transaction.atomic():
        cancelled = ScheduledComment.objects.filter(
            pk=scheduled.pk, status=ScheduledCommentStatus.PENDING
        ).update(status=ScheduledCommentStatus.CANCELLED, updated_at=timezone.now())
        if not cancelled:
            raise Conflict("This reply is no longer waiting to be sent.", code="not_pending")
    scheduled.status = ScheduledCommentStatus.CANCELLED
    return scheduled


def scheduled_comments_send_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Post every scheduled reply that is due; returns how many went out.

    Each reply is claimed and posted in one transaction: the row is locked with
    ``skip_locked`` (a second worker passes over it) and re-checked as pending, and its
    status becomes ``sent`` in the same commit as the comment, so it goes out exactly once.
    """
    now = now or timezone.now()
    due_ids = list(
        ScheduledComment.objects.filter(status=ScheduledCommentStatus.PENDING, send_at__lte=now)
        .order_by("send_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in due_ids:
        try:
            with transaction.atomic():
                # Lock the scheduled row alone: PostgreSQL refuses FOR UPDATE on the nullable
                # side of the LEFT JOIN to the author, and the ticket is locked by comment_create.
                scheduled = (
                    ScheduledComment.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("ticket", "author")
                    .filter(pk=pk, status=ScheduledCommentStatus.PENDING, send_at__lte=now)
                    .first()
                )
                if scheduled is None:
                    continue
                ticket = scheduled.ticket
                if ticket.merged_into_id:
                    # The conversation moved: the reply follows it.
                    ticket = Ticket.objects.get(
                        pk=ticket.merged_into_id, workspace_id=ticket.workspace_id
                    )
                attachments = list(scheduled.attachments.all())
                scheduled.attachments.update(scheduled_comment=None)
                comment = comment_create(
                    ticket=ticket,
                    actor=Actor.for_agent(scheduled.author) if scheduled.author else Actor.system(),
                    body_html=scheduled.body_html,
                    body_text=scheduled.body_text,
                    internal=scheduled.is_internal,
                    attachments=attachments,
                )
                scheduled.status = ScheduledCommentStatus.SENT
                scheduled.comment = comment
                scheduled.sent_at = timezone.now()
                scheduled.attempts += 1
                scheduled.save(
                    update_fields=["status", "comment", "sent_at", "attempts", "updated_at"]
                )
            sent += 1
        except (InvalidInput, Forbidden, Conflict, NotFound) as exc:
            # The reply can never go out as written (ticket deleted, author deactivated...):
            # record why, visibly, instead of retrying every minute.
            logger.warning("scheduled comment %s failed: %s", pk, exc.message)
            ScheduledComment.objects.filter(pk=pk, status=ScheduledCommentStatus.PENDING).update(
                status=ScheduledCommentStatus.FAILED,
                last_error=exc.message,
                attempts=F("attempts") + 1,
                updated_at=timezone.now(),
            )
    return sent


# --- Merge and delete ----------------------------------------------------------------------


def ticket_merge(*, source: Ticket, target: Ticket, actor: Actor) -> Ticket:
    """Merge ``source`` into ``target``: every comment, attachment, mail mapping, pending
    scheduled reply and tag moves to the target; the source is closed and points at it."""
    from integrations.models import EmailTicketMapping

    _check_actor(source.workspace_id, actor)
    _check_can_change(actor)
    if target.workspace_id != source.workspace_id:
        raise InvalidInput(
            "Unknown ticket in this workspace.", code="invalid_reference", field="into"
        )
    if target.pk == source.pk:
        raise InvalidInput("A ticket cannot be merged into itself.", code="invalid", field="into")
    now = timezone.now()
    with transaction.atomic():
        # Lock both rows in primary-key order so two opposite merges cannot deadlock.
        locked = {
            t.pk: t
            for t in Ticket.objects.select_for_update()
            .filter(
                pk__in=[source.pk, target.pk],
                workspace_id=source.workspace_id,
                deleted_at__isnull=True,
            )
            .order_by("pk")
        }
        if len(locked) != 2:
            raise NotFound("Ticket not found.")
        src, dst = locked[source.pk], locked[target.pk]
        if src.merged_into_id:
            raise Conflict("This ticket was already merged.", code="ticket_merged")
        if dst.merged_into_id:
            raise Conflict(
                "The target ticket was itself merged into another.", code="target_merged"
            )

        moved_comments = Comment.objects.filter(ticket=src).update(ticket=dst)
        TicketAttachment.objects.filter(ticket=src).update(ticket=dst)
        ScheduledComment.objects.filter(ticket=src, status=ScheduledCommentStatus.PENDING).update(
            ticket=dst
        )
        EmailTicketMapping.objects.filter(ticket=src).update(ticket=dst)
        source_tags = list(Tag.objects.filter(ticket_tags__ticket=src))
        existing = set(TicketTag.objects.filter(ticket=dst).values_list("tag_id", flat=True))
        TicketTag.objects.bulk_create(
            [
                TicketTag(workspace_id=dst.workspace_id, ticket=dst, tag=t)
                for t in source_tags
                if t.pk not in existing
            ]
        )
        # The merged conversation keeps the earliest clocks of both.
        for field in ("first_response_at", "last_customer_reply_at", "last_agent_reply_at"):
            values = [v for v in (getattr(src, field), getattr(dst, field)) if v]
            if field == "first_response_at":
                setattr(dst, field, min(values) if values else None)
            else:
                setattr(dst, field, max(values) if values else None)
        dst.updated_at = now
        dst.save(
            update_fields=[
                "first_response_at",
                "last_customer_reply_at",
                "last_agent_reply_at",
                "updated_at",
            ]
        )

        old_status = src.status
        src.merged_into = dst
        src.updated_at = now
        events = [
            _event(
                src,
                actor,
                TicketEventKind.MERGED,
                field="merged_into",
                old=None,
                new=dst.number,
                data={"into": dst.pk},
                at=now,
            ),
        ]
        src_fields = {"merged_into", "updated_at"}
        # An already closed source keeps its closing time, and gets no "closed → closed" row.
        if old_status != TicketStatus.CLOSED:
            src_fields.update(_apply_status(src, TicketStatus.CLOSED, now))
            events.append(
                _event(
                    src,
                    actor,
                    TicketEventKind.FIELD_CHANGED,
                    field="status",
                    old=old_status,
                    new=TicketStatus.CLOSED,
                    at=now,
                )
            )
        src.save(update_fields=sorted(src_fields))
        # The thread moved: the target's words now include the source's, and the source
        # keeps only its subject.
        search.rebuild([src.pk, dst.pk])
        events.append(
            _event(
                dst,
                actor,
                TicketEventKind.MERGED_FROM,
                data={"from": src.pk, "from_number": src.number, "comments": moved_comments},
                at=now,
            )
        )
        TicketEvent.objects.bulk_create(events)
        _copy_state(src, source)
        _copy_state(dst, target)
        _emit("ticket.merged", src, actor, {"into": dst.pk, "into_number": dst.number})
        _emit("ticket.updated", dst, actor, {"changes": {}, "merged_from": src.number})
    return target


def ticket_delete(*, ticket: Ticket, actor: Actor) -> Ticket:
    """Soft delete (admins): hidden everywhere, restorable with ``ticket_restore``."""
    _check_actor(ticket.workspace_id, actor)
    if actor.agent is not None and not actor.agent.is_admin:
        raise Forbidden("Only admins delete tickets.", code="forbidden")
    if actor.is_customer:
        raise Forbidden("Customers cannot delete tickets.", code="forbidden")
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(ticket)
        locked.deleted_at = now
        locked.updated_at = now
        locked.save(update_fields=["deleted_at", "updated_at"])
        _event(locked, actor, TicketEventKind.DELETED, at=now).save()
        _copy_state(locked, ticket)
        _emit(
            "ticket.updated", locked, actor, {"changes": {"deleted": {"old": False, "new": True}}}
        )
    return ticket


def ticket_restore(*, ticket: Ticket, actor: Actor) -> Ticket:
    _check_actor(ticket.workspace_id, actor)
    if actor.agent is not None and not actor.agent.is_admin:
        raise Forbidden("Only admins restore tickets.", code="forbidden")
    if actor.is_customer:
        raise Forbidden("Customers cannot restore tickets.", code="forbidden")
    now = timezone.now()
    with transaction.atomic():
        try:
            locked = Ticket.objects.select_for_update().get(
                pk=ticket.pk, workspace_id=ticket.workspace_id, deleted_at__isnull=False
            )
        except Ticket.DoesNotExist:
            raise Conflict("This ticket is not deleted.", code="not_deleted") from None
        locked.deleted_at = None
        locked.updated_at = now
        locked.save(update_fields=["deleted_at", "updated_at"])
        _event(locked, actor, TicketEventKind.RESTORED, at=now).save()
        _copy_state(locked, ticket)
        _emit(
            "ticket.updated", locked, actor, {"changes": {"deleted": {"old": True, "new": False}}}
        )
    return ticket


# --- Bulk changes --------------------------------------------------------------------------

MAX_BULK_TICKETS = 100


def tickets_bulk_update(
    *,
    workspace: Workspace,
    actor: Actor,
    numbers: Sequence[int],
    status: str = UNSET,
    priority: str = UNSET,
    assignee: Agent | None = UNSET,
    team: Team | None = UNSET,
    category: Category | None = UNSET,
    add_tags: Iterable[str] = (),
    remove_tags: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Apply the same changes to many tickets, each through ``ticket_update``.

    Each ticket is its own transaction: one that cannot change (missing, merged...) is
    reported with its error and the others still change. Returns one result per number, in
    the order given: ``{"number", "ok", "changed"}`` or ``{"number", "ok", "error"}``.
    The actor and the references are checked once, up front: they are the request's errors,
    not a ticket's.
    """
    _check_actor(workspace.pk, actor)
    _check_can_change(actor)
    unique_numbers = list(dict.fromkeys(numbers))
    if not unique_numbers:
        raise InvalidInput("Name at least one ticket.", code="required", field="ids")
    if len(unique_numbers) > MAX_BULK_TICKETS:
        raise InvalidInput(
            f"At most {MAX_BULK_TICKETS} tickets at once.", code="max_length", field="ids"
        )
    if assignee is not UNSET:
        _check_assignee(workspace, assignee)
    for name, value in (("team", team), ("category", category)):
        if value is not UNSET:
            ensure_same_workspace(workspace, value, field=name)
    add = [str(name).strip() for name in add_tags if str(name).strip()]
    drop = {str(name).strip().lower() for name in remove_tags}
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("status", status),
            ("priority", priority),
            ("assignee", assignee),
            ("team", team),
            ("category", category),
        )
        if value is not UNSET
    }
    if not changes and not add and not drop:
        raise InvalidInput("Name at least one change.", code="required", field="changes")

    tickets = {
        t.number: t
        for t in Ticket.objects.for_workspace(workspace).filter(
            number__in=unique_numbers, deleted_at__isnull=True
        )
    }
    results: list[dict[str, Any]] = []
    for number in unique_numbers:
        ticket = tickets.get(number)
        if ticket is None:
            error = NotFound("Ticket not found.")
            results.append({"number": number, "ok": False, "error": error.as_dict()})
            continue
        try:
            with transaction.atomic():
                tag_change: dict[str, Any] = {}
                if add or drop:
                    # Read the tags under the ticket's lock, so a concurrent tag change is
                    # not overwritten with a stale list.
                    locked = _lock(ticket)
                    current = list(
                        Tag.objects.filter(ticket_tags__ticket=locked).values_list(
                            "name", flat=True
                        )
                    )
                    kept = [name for name in current if name.lower() not in drop]
                    tag_change["tags"] = [
                        *kept,
                        *(name for name in add if name.lower() not in drop),
                    ]
                changed = ticket_update(ticket=ticket, actor=actor, **changes, **tag_change)
        except EnqueError as exc:
            results.append({"number": number, "ok": False, "error": exc.as_dict()})
            continue
        results.append({"number": number, "ok": True, "changed": changed})
    return results


# --- Attachments ---------------------------------------------------------------------------


class AttachmentTooLarge(EnqueError):
    """The file is over settings.MAX_ATTACHMENT_SIZE (413)."""

    status_code = 413
    default_code = "file_too_large"


MAX_FILENAME_LENGTH = 150
# Enough of the file's start for every signature below, and for the text check.
SNIFF_BYTES = 8192
# Magic numbers of the types we recognise. The client's Content-Type is never trusted: a
# stored file is served with the type found here, so an upload cannot pass itself off as
# HTML or SVG (and every download is an attachment with nosniff anyway).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),  # an empty archive
    (b"\x1f\x8b", "application/gzip"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc, .xls, .msg
)
# Office Open XML documents are zip archives; within that family alone the extension picks
# the precise type (it cannot turn a zip into anything a browser would render).
_ZIP_FAMILY = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
_OLE_FAMILY = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".msg": "application/vnd.ms-outlook",
}
_UNSAFE_FILENAME_CHARS = re.compile(r'[<>:"|?*\\/]')


def sanitize_filename(name: str) -> str:
    """A filename safe to store and to send back in Content-Disposition: the last path
    component only (either slash), no control or format characters, no characters Windows
    refuses, NFC, at most MAX_FILENAME_LENGTH characters with the extension kept."""
    name = unicodedata.normalize("NFC", str(name))
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(
        ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    name = _UNSAFE_FILENAME_CHARS.sub("_", name)
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "attachment"
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def sniff_content_type(head: bytes, filename: str = "") -> str:
    """The content type of a file from its first bytes (see _SIGNATURES); text that decodes
    as UTF-8 is text/plain; anything else application/octet-stream."""
    extension = ("." + filename.rpartition(".")[2].lower()) if "." in filename else ""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            if content_type == "application/zip":
                return _ZIP_FAMILY.get(extension, content_type)
            if content_type == "application/x-ole-storage":
                return _OLE_FAMILY.get(extension, "application/octet-stream")
            return content_type
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end inside a multi-byte character; only an error before that counts.
        if exc.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain"


def attachment_upload(*, workspace: Workspace, actor: Actor, file: File) -> TicketAttachment:
    """Store an uploaded file as an attachment of the workspace, on no ticket yet (a ticket
    or reply claims it through ``attachment_ids``).

    The file is read once, in chunks, for its size, SHA-256 and first bytes, and never held
    in memory whole; over settings.MAX_ATTACHMENT_SIZE it is refused (413) as soon as the
    count passes the limit. The name is sanitised and the type sniffed from the bytes.
    """
    _check_actor(workspace.pk, actor)
    limit = settings.MAX_ATTACHMENT_SIZE
    too_large = AttachmentTooLarge(
        f"The file is larger than the limit of {limit} bytes.", field="file"
    )
    declared = getattr(file, "size", None)
    if declared is not None and declared > limit:
        raise too_large
    digest = hashlib.sha256()
    size = 0
    head = b""
    for chunk in file.chunks():
        size += len(chunk)
        if size > limit:
            raise too_large
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        digest.update(chunk)
    filename = sanitize_filename(getattr(file, "name", "") or "")
    attachment = TicketAttachment(
        workspace=workspace,
        filename=filename,
        content_type=sniff_content_type(head, filename),
        size=size,
        sha256=digest.hexdigest(),
        uploaded_by=actor.agent,
    )
    file.seek(0)
    # Storages that keep a type (S3's ContentType) take it from here: the sniffed type, not
    # the one the client claimed.
    file.content_type = attachment.content_type
    # The bytes go to storage first; a failed INSERT removes them again, so no row points at
    # a missing file and (almost) no file is left without a row.
    attachment.file.save(filename, file, save=False)
    try:
        attachment.save()
    except BaseException:
        attachment.file.storage.delete(attachment.file.name)
        raise
    return attachment


# --- Saved views ---------------------------------------------------------------------------

# Filters that name another object, and the model each one names ("none" and "me" aside).
_FILTER_REFERENCES = {
    "assignee": ("workspaces", "Agent"),
    "team": ("workspaces", "Team"),
    "category": ("tickets", "Category"),
    "customer": ("workspaces", "Customer"),
    "company": ("workspaces", "Company"),
    "mailbox": ("integrations", "MailboxConnection"),
}


def check_filter_references(
    workspace_id: int, filters: dict[str, Any], *, field_prefix: str = ""
) -> None:
    """Refuse a ticket filter naming another workspace's (or no) object: one EXISTS query
    per reference given. ``field_prefix`` places the error ("filters." in a saved view)."""
    from django.apps import apps

    for name, (app_label, model_name) in _FILTER_REFERENCES.items():
        value = filters.get(name)
        if value is None or value in ("none", "me"):
            continue
        model = apps.get_model(app_label, model_name)
        if not model.objects.filter(workspace_id=workspace_id, pk=value).exists():
            raise InvalidInput(
                f"Unknown {name} in this workspace.",
                code="invalid_reference",
                field=f"{field_prefix}{name}",
            )


def _check_view_access(view: SavedView, agent: Agent) -> None:
    if view.workspace_id != agent.workspace_id or (
        view.owner_id is not None and view.owner_id != agent.pk
    ):
        # Another agent's personal view is as invisible as a missing one.
        raise NotFound("View not found.")
    if view.owner_id is None and not agent.is_admin:
        raise Forbidden("Only admins change shared views.", code="admin_required")


def _save_view(view: SavedView, update_fields: list[str] | None = None) -> SavedView:
    try:
        with transaction.atomic():
            view.save(update_fields=update_fields)
    except IntegrityError:
        raise Conflict("A view with this name exists.", code="name_taken", field="name") from None
    return view


def saved_view_create(
    *,
    workspace: Workspace,
    agent: Agent,
    name: str,
    filters: dict[str, Any],
    shared: bool = False,
    position: int | None = None,
) -> SavedView:
    """A personal view of ``agent``, or (admins only) a view shared with the workspace.
    ``filters`` is the normalised output of the ticket list's filter serializer."""
    _check_actor(workspace.pk, Actor.for_agent(agent))
    if shared and not agent.is_admin:
        raise Forbidden("Only admins create shared views.", code="admin_required")
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A view needs a name.", code="required", field="name")
    check_filter_references(workspace.pk, filters, field_prefix="filters.")
    owner = None if shared else agent
    if position is None:
        position = SavedView.objects.for_workspace(workspace).filter(owner=owner).count()
    view = SavedView(
        workspace=workspace, owner=owner, name=name, filters=filters, position=position
    )
    return _save_view(view)


def saved_view_update(
    *,
    view: SavedView,
    agent: Agent,
    name: str = UNSET,
    filters: dict[str, Any] = UNSET,
    position: int = UNSET,
) -> SavedView:
    _check_actor(view.workspace_id, Actor.for_agent(agent))
    _check_view_access(view, agent)
    update_fields = ["updated_at"]
    if name is not UNSET:
        name = " ".join(name.split())
        if not name:
            raise InvalidInput("A view needs a name.", code="required", field="name")
        view.name = name
        update_fields.append("name")
    if filters is not UNSET:
        check_filter_references(view.workspace_id, filters, field_prefix="filters.")
        view.filters = filters
        update_fields.append("filters")
    if position is not UNSET:
        view.position = position
        update_fields.append("position")
    return _save_view(view, update_fields)


def saved_view_delete(*, view: SavedView, agent: Agent) -> None:
    _check_actor(view.workspace_id, Actor.for_agent(agent))
    _check_view_access(view, agent)
    view.delete()


# --- Detaching deleted settings from tickets ----------------------------------------------


def tickets_clear_reference(
    *, workspace_id: int, actor: Actor, field: str, value_id: int, reason: str
) -> int:
    """Unset ``field`` (team, category or company) on every ticket pointing at ``value_id``,
    before that object is deleted; returns how many tickets changed.

    Each ticket gets a history row and ``ticket.updated`` after commit, and a fresh
    ``updated_at``, so inboxes and the incremental export see the change that the
    database's SET NULL alone would make silently. Tickets are locked in primary-key order,
    like every multi-ticket write.
    """
    if field not in ("team", "category", "company"):
        raise ValueError(f"Cannot clear {field!r} on tickets.")
    now = timezone.now()
    with transaction.atomic():
        tickets = list(
            Ticket.objects.for_workspace(workspace_id)
            .filter(**{f"{field}_id": value_id})
            .select_for_update()
            .order_by("pk")
            .only("pk", "number", "workspace_id")
        )
        if not tickets:
            return 0
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(
            **{field: None, "updated_at": now}
        )
        TicketEvent.objects.bulk_create(
            [
                _event(
                    t,
                    actor,
                    TicketEventKind.FIELD_CHANGED,
                    field=field,
                    old=value_id,
                    new=None,
                    data={"reason": reason},
                    at=now,
                )
                for t in tickets
            ],
            batch_size=500,
        )
        for t in tickets:
            _emit("ticket.updated", t, actor, {"changes": {field: {"old": value_id, "new": None}}})
    return len(tickets)


def _tickets_drop_tag(*, tag: Tag, actor: Actor, now: datetime) -> int:
    """Take ``tag`` off its tickets with a ``tags_changed`` history row each (see above)."""
    ticket_ids = list(
        Ticket.objects.filter(workspace_id=tag.workspace_id, ticket_tags__tag=tag)
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ticket_ids:
        return 0
    names: dict[int, list[str]] = {pk: [] for pk in ticket_ids}
    for ticket_id, name in (
        TicketTag.objects.filter(ticket_id__in=ticket_ids)
        .order_by("tag__name")
        .values_list("ticket_id", "tag__name")
    ):
        names[ticket_id].append(name)
    tickets = list(
        Ticket.objects.filter(pk__in=ticket_ids).order_by("pk").only("pk", "number", "workspace_id")
    )
    TicketTag.objects.filter(tag=tag).delete()
    Ticket.objects.filter(pk__in=ticket_ids).update(updated_at=now)
    events = []
    for t in tickets:
        old = names[t.pk]
        new = [name for name in old if name != tag.name]
        events.append(
            _event(
                t,
                actor,
                TicketEventKind.TAGS_CHANGED,
                field="tags",
                old=old,
                new=new,
                data={"reason": "tag_deleted"},
                at=now,
            )
        )
        _emit("ticket.updated", t, actor, {"changes": {"tags": {"old": old, "new": new}}})
    TicketEvent.objects.bulk_create(events, batch_size=500)
    return len(tickets)


# --- Settings: categories, tags, canned replies (the /v1 settings API) ---------------------
# Each function takes the workspace and the acting agent and checks the role rule itself:
# categories, tags and shared canned replies are the admins'; a personal canned reply is
# its owner's alone (to anyone else it does not exist). Names are unique per workspace
# without regard to case: a clash is a 409 ``duplicate`` on ``name``.

MAX_CANNED_REPLY_BODY = 20_000
_HEX_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _settings_actor(workspace: Workspace, actor: Agent, *, admin: bool) -> None:
    if actor.workspace_id != workspace.pk or not actor.is_active:
        raise NotFound("Not found.")
    if admin and not actor.is_admin:
        raise Forbidden(
            "Only an owner or admin of the workspace may do this.", code="admin_required"
        )
    if not actor.can_reply:
        raise Forbidden(
            "Light agents can read tickets and add internal notes only.", code="light_agent"
        )


def _own(workspace: Workspace, obj: Any) -> None:
    if obj.workspace_id != workspace.pk:
        raise NotFound("Not found.")


def _setting_name(value: str, *, max_length: int) -> str:
    name = " ".join(str(value).split())
    if not name:
        raise InvalidInput("A name is required.", code="required", field="name")
    if len(name) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", code="max_length", field="name")
    return name


def _check_name_free(
    model: type[Category] | type[Tag],
    workspace: Workspace,
    name: str,
    exclude_pk: int | None = None,
) -> None:
    taken = model.objects.for_workspace(workspace).filter(name__iexact=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise Conflict(
            f"A {model._meta.verbose_name} with this name exists.", code="duplicate", field="name"
        )


def _save_named(
    obj: Category | Tag, *, create: bool, update_fields: list[str] | None = None
) -> None:
    try:
        with transaction.atomic():
            if create:
                obj.save(force_insert=True)
            else:
                obj.save(update_fields=update_fields)
    except IntegrityError:
        # Created or renamed by someone else since the check.
        raise Conflict(
            f"A {obj._meta.verbose_name} with this name exists.", code="duplicate", field="name"
        ) from None


def category_create(
    *, workspace: Workspace, actor: Agent, name: str, description: str = ""
) -> Category:
    _settings_actor(workspace, actor, admin=True)
    name = _setting_name(name, max_length=120)
    _check_name_free(Category, workspace, name)
    category = Category(workspace=workspace, name=name, description=description.strip())
    _save_named(category, create=True)
    return category


def category_update(
    *,
    workspace: Workspace,
    actor: Agent,
    category: Category,
    name: str = UNSET,
    description: str = UNSET,
) -> Category:
    _settings_actor(workspace, actor, admin=True)
    _own(workspace, category)
    fields = []
    if name is not UNSET:
        category.name = _setting_name(name, max_length=120)
        _check_name_free(Category, workspace, category.name, exclude_pk=category.pk)
        fields.append("name")
    if description is not UNSET:
        category.description = description.strip()
        fields.append("description")
    if fields:
        _save_named(category, create=False, update_fields=[*fields, "updated_at"])
    return category


def category_delete(*, workspace: Workspace, actor: Agent, category: Category) -> None:
    """Delete a category (admins): its tickets lose it with a history row each, and canned
    replies filed under it stay, uncategorised."""
    _settings_actor(workspace, actor, admin=True)
    _own(workspace, category)
    with transaction.atomic():
        tickets_clear_reference(
            workspace_id=workspace.pk,
            actor=Actor.for_agent(actor),
            field="category",
            value_id=category.pk,
            reason="category_deleted",
        )
        category.delete()


def _tag_colour(color: str) -> str:
    color = color.strip()
    if color and not _HEX_COLOUR_RE.match(color):
        raise InvalidInput("A colour is a hex code such as #3b82f6.", code="invalid", field="color")
    return color.lower()


def tag_create(*, workspace: Workspace, actor: Agent, name: str, color: str = "") -> Tag:
    _settings_actor(workspace, actor, admin=True)
    name = _setting_name(name, max_length=MAX_TAG_LENGTH)
    _check_name_free(Tag, workspace, name)
    tag = Tag(workspace=workspace, name=name, color=_tag_colour(color))
    _save_named(tag, create=True)
    return tag


def tag_update(
    *, workspace: Workspace, actor: Agent, tag: Tag, name: str = UNSET, color: str = UNSET
) -> Tag:
    """Rename or recolour a tag (admins). A rename applies to every ticket wearing it."""
    _settings_actor(workspace, actor, admin=True)
    _own(workspace, tag)
    fields = []
    if name is not UNSET:
        tag.name = _setting_name(name, max_length=MAX_TAG_LENGTH)
        _check_name_free(Tag, workspace, tag.name, exclude_pk=tag.pk)
        fields.append("name")
    if color is not UNSET:
        tag.color = _tag_colour(color)
        fields.append("color")
    if fields:
        _save_named(tag, create=False, update_fields=[*fields, "updated_at"])
    return tag


def tag_delete(*, workspace: Workspace, actor: Agent, tag: Tag) -> None:
    """Delete a tag (admins): it comes off every ticket, with a history row each."""
    _settings_actor(workspace, actor, admin=True)
    _own(workspace, tag)
    now = timezone.now()
    with transaction.atomic():
        _tickets_drop_tag(tag=tag, actor=Actor.for_agent(actor), now=now)
        tag.delete()


def _canned_reply_text(value: str, *, field: str, max_length: int) -> str:
    value = str(value).strip()
    if not value:
        raise InvalidInput(f"A {field} is required.", code="required", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", code="max_length", field=field)
    return value


def _check_canned_reply_access(workspace: Workspace, actor: Agent, canned: CannedReply) -> None:
    """Visible: shared ones, and the actor's own. Anyone else's personal reply is a 404."""
    _own(workspace, canned)
    if canned.owner_id is not None and canned.owner_id != actor.pk:
        raise NotFound("Not found.")


def canned_reply_create(
    *,
    workspace: Workspace,
    actor: Agent,
    title: str,
    body: str,
    category: Category | None = None,
    shared: bool = False,
) -> CannedReply:
    """A shared canned reply (admins) or a personal one (any full agent, owned by them)."""
    _settings_actor(workspace, actor, admin=shared)
    ensure_same_workspace(workspace, category, field="category_id")
    return CannedReply.objects.create(
        workspace=workspace,
        title=_canned_reply_text(title, field="title", max_length=200),
        body=_canned_reply_text(body, field="body", max_length=MAX_CANNED_REPLY_BODY),
        category=category,
        owner=None if shared else actor,
    )


def canned_reply_update(
    *,
    workspace: Workspace,
    actor: Agent,
    canned_reply: CannedReply,
    title: str = UNSET,
    body: str = UNSET,
    category: Category | None = UNSET,
    shared: bool = UNSET,
) -> CannedReply:
    """Edit a canned reply: a shared one (or making one shared or personal) takes an
    admin; a personal one only its owner."""
    _check_canned_reply_access(workspace, actor, canned_reply)
    is_shared = canned_reply.owner_id is None
    _settings_actor(
        workspace, actor, admin=is_shared or (shared is not UNSET and shared != is_shared)
    )
    fields = []
    if title is not UNSET:
        canned_reply.title = _canned_reply_text(title, field="title", max_length=200)
        fields.append("title")
    if body is not UNSET:
        canned_reply.body = _canned_reply_text(body, field="body", max_length=MAX_CANNED_REPLY_BODY)
        fields.append("body")
    if category is not UNSET:
        ensure_same_workspace(workspace, category, field="category_id")
        canned_reply.category = category
        fields.append("category")
    if shared is not UNSET and shared != is_shared:
        canned_reply.owner = None if shared else actor
        fields.append("owner")
    if fields:
        with transaction.atomic():
            canned_reply.save(update_fields=[*fields, "updated_at"])
    return canned_reply


def canned_reply_delete(*, workspace: Workspace, actor: Agent, canned_reply: CannedReply) -> None:
    _check_canned_reply_access(workspace, actor, canned_reply)
    _settings_actor(workspace, actor, admin=canned_reply.owner_id is None)
    with transaction.atomic():
        canned_reply.delete()


def canned_reply_render(
    *, workspace: Workspace, actor: Agent, canned_reply: CannedReply, ticket: Ticket
) -> Rendered:
    """Fill a canned reply's placeholders for a reply by ``actor`` on ``ticket``, and count
    the use (an F() update: concurrent renders each count). Light agents may render (for
    internal notes); what they may post is decided when they post it."""
    if actor.workspace_id != workspace.pk or not actor.is_active:
        raise NotFound("Not found.")
    _check_canned_reply_access(workspace, actor, canned_reply)
    if ticket.workspace_id != workspace.pk or ticket.deleted_at is not None:
        raise InvalidInput(
            "Unknown ticket in this workspace.", code="invalid_reference", field="ticket"
        )
    rendered = render_placeholders(
        canned_reply.body, PlaceholderContext.for_ticket(ticket, agent=actor)
    )
    CannedReply.objects.filter(pk=canned_reply.pk).update(usage_count=F("usage_count") + 1)
    return rendered
