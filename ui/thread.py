"""A ticket's thread as the ticket page shows it: comments and history, interleaved.

Comments come from ``selectors.comment_list`` and history from
``selectors.ticket_event_list``; this module only decides how they read. The history rows
that record a comment (replied, note added, customer replied) are left out — the comment
itself is in the thread — and the others become one line each ("Alice changed the status
from Open to Pending"), naming agents, teams and categories from lookups the page has
already read, so the thread costs no query per row.

Comment HTML was sanitised (nh3) when it was written; it is sanitised again here, as the
admin or an old import could have stored something else. Inline images of received mail
point at ``/v1/attachments/<id>/download`` (the API, which wants a token, and always
answers as a download) or at ``cid:`` names: both are pointed at the UI's own attachment
URLs, which serve raster images inline and everything else as a download.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from tickets.models import (
    Category,
    Comment,
    TicketAttachment,
    TicketEvent,
    TicketEventKind,
    TicketPriority,
    TicketStatus,
)
from tickets.services import sanitize_html
from workspaces.models import Agent, Team

# Raster formats a browser shows in an <img>; never SVG (it can carry script) or HTML.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})

# History rows that are the comment itself.
COMMENT_KINDS = frozenset(
    {
        TicketEventKind.REPLIED,
        TicketEventKind.NOTE_ADDED,
        TicketEventKind.CUSTOMER_REPLIED,
        TicketEventKind.CREATED,
    }
)

_API_DOWNLOAD_RE = re.compile(r"/v1/attachments/(\d+)/download")
_CID_RE = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)

FIELD_LABELS = {
    "status": "status",
    "priority": "priority",
    "assignee": "assignee",
    "team": "team",
    "category": "category",
    "subject": "subject",
    "company": "company",
}


def attachment_url(attachment: TicketAttachment) -> str:
    if attachment.content_type in INLINE_IMAGE_TYPES:
        return reverse("ui:attachment_inline", args=[attachment.pk])
    return reverse("ui:attachment_download", args=[attachment.pk])


def render_html(html: str, attachments: Iterable[TicketAttachment]) -> SafeString:
    """Sanitised HTML with its inline images pointing at the UI's attachment URLs."""
    attachments = list(attachments)
    by_id = {a.pk: a for a in attachments}
    by_cid = {a.content_id.strip("<>").lower(): a for a in attachments if a.content_id}

    def from_api(match: re.Match[str]) -> str:
        attachment = by_id.get(int(match.group(1)))
        # An id that is not among these attachments is left pointing nowhere useful
        # rather than at another ticket's file.
        return attachment_url(attachment) if attachment else "#"

    def from_cid(match: re.Match[str]) -> str:
        attachment = by_cid.get(match.group(1).strip("<>").lower())
        return attachment_url(attachment) if attachment else match.group(0)

    if not html:
        return mark_safe("")
    # Rewritten first: nh3 drops "cid:" URLs (not a scheme it allows) but keeps our paths.
    html = _API_DOWNLOAD_RE.sub(from_api, html)
    html = _CID_RE.sub(from_cid, html)
    return mark_safe(sanitize_html(html))  # noqa: S308 -- sanitised by nh3


def comment_html(comment: Comment) -> SafeString:
    """The comment's HTML, safe to show, with its inline images pointing at the UI."""
    return render_html(comment.body_html, comment.attachments.all())


def listed_attachments(comment: Comment, html: str) -> list[TicketAttachment]:
    """The attachments to list under a comment: all but the inline images it shows."""
    return [
        a
        for a in comment.attachments.all()
        if not (a.is_inline and attachment_url(a) in html and a.content_type in INLINE_IMAGE_TYPES)
    ]


@dataclass
class ThreadItem:
    kind: str  # "comment" or "event"
    at: datetime
    comment: Comment | None = None
    html: SafeString | None = None
    attachments: list[TicketAttachment] | None = None
    # The first message's whole email (quoted history included), when it was trimmed.
    original: SafeString | None = None
    event: TicketEvent | None = None
    text: SafeString | None = None
    actor: str = ""


class Names:
    """Display names of the objects history rows refer to by id."""

    def __init__(
        self,
        *,
        agents: Iterable[Agent],
        teams: Iterable[Team],
        categories: Iterable[Category],
        automations: dict[int, str] | None = None,
    ) -> None:
        self.agents = {a.pk: a.name for a in agents}
        self.teams = {t.pk: t.name for t in teams}
        self.categories = {c.pk: c.name for c in categories}
        self.automations = automations or {}

    def value(self, field: str, value: Any) -> str:
        if value in (None, ""):
            return ""
        if field == "status":
            return _choice_label(TicketStatus, value)
        if field == "priority":
            return _choice_label(TicketPriority, value)
        if field == "assignee":
            return self.agents.get(value, "a removed agent")
        if field == "team":
            return self.teams.get(value, "a deleted team")
        if field == "category":
            return self.categories.get(value, "a deleted category")
        if field == "company":
            return "a company"
        return str(value)


def _choice_label(choices: Any, value: Any) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


def actor_name(event: TicketEvent, names: Names) -> str:
    if event.actor_agent_id:
        return event.actor_agent.name if event.actor_agent else "An agent"
    if event.actor_customer_id:
        return event.actor_customer.display_name if event.actor_customer else "The customer"
    automation = (event.data or {}).get("automation")
    if automation:
        name = names.automations.get(automation)
        return f"Automation “{name}”" if name else "An automation"
    if event.actor_type == "customer":
        return "The customer"
    return "Enque"


def describe(event: TicketEvent, names: Names) -> SafeString:
    """One line of history, without the actor (the template puts the name first)."""
    kind = event.kind
    data = event.data or {}
    if kind == TicketEventKind.FIELD_CHANGED:
        field = event.field
        old = names.value(field, event.old_value)
        new = names.value(field, event.new_value)
        label = FIELD_LABELS.get(field, field.replace("_", " "))
        if field == "assignee":
            if not new:
                return format_html("unassigned the ticket (was {})", old)
            return format_html("assigned the ticket to <strong>{}</strong>", new)
        if field == "subject":
            return format_html("renamed the ticket to “{}”", new)
        if not new:
            return format_html("removed the {} <strong>{}</strong>", label, old)
        if not old:
            return format_html("set the {} to <strong>{}</strong>", label, new)
        return format_html("changed the {} from {} to <strong>{}</strong>", label, old, new)
    if kind == TicketEventKind.TAGS_CHANGED:
        old_tags = set(event.old_value or [])
        new_tags = set(event.new_value or [])
        parts = []
        added = sorted(new_tags - old_tags)
        removed = sorted(old_tags - new_tags)
        if added:
            parts.append(format_html("added the tag{} {}", _plural(added), _tag_list(added)))
        if removed:
            parts.append(format_html("removed the tag{} {}", _plural(removed), _tag_list(removed)))
        return mark_safe(" and ".join(parts) or "changed the tags")  # noqa: S308 -- escaped parts
    if kind == TicketEventKind.MERGED:
        number = event.new_value
        url = reverse("ui:ticket", args=[number]) if isinstance(number, int) else "#"
        return format_html('merged this ticket into <a href="{}">#{}</a>', url, number)
    if kind == TicketEventKind.MERGED_FROM:
        number = data.get("from_number")
        url = reverse("ui:ticket", args=[number]) if isinstance(number, int) else "#"
        count = data.get("comments") or 0
        return format_html(
            'merged <a href="{}">#{}</a> into this ticket ({} message{})',
            url,
            number,
            count,
            "" if count == 1 else "s",
        )
    if kind == TicketEventKind.REPLY_SCHEDULED:
        when = parse_datetime(str(data.get("send_at", "")))
        if when is not None:
            return format_html(
                'scheduled a reply for <time datetime="{}">{}</time>',
                when.isoformat(),
                date_format(timezone.localtime(when), "M j, H:i e"),
            )
        return mark_safe("scheduled a reply")
    if kind == TicketEventKind.SLA_BREACHED:
        target = data.get("target") or data.get("metric") or event.field
        if target:
            return format_html("breached the SLA ({})", str(target).replace("_", " "))
        return mark_safe("breached the SLA")
    return escape(event.get_kind_display().lower())


def _plural(items: list[str]) -> str:
    return "" if len(items) == 1 else "s"


def _tag_list(tags: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 -- each tag is escaped by format_html
        " ".join(format_html('<span class="tag">{}</span>', tag) for tag in tags)
    )


def build_thread(
    *,
    comments: Iterable[Comment],
    events: Iterable[TicketEvent],
    names: Names,
    original_html: str = "",
) -> list[ThreadItem]:
    """Comments and history in time order; at the same instant a comment comes first (a
    reply that sets the status reads "replied", then "changed the status").

    ``original_html`` is the ticket's first email whole (``TicketBody``): offered under the
    first message when it differs from what the message shows.
    """
    items: list[tuple[tuple[datetime, int, int], ThreadItem]] = []
    for index, comment in enumerate(comments):
        html = comment_html(comment)
        item = ThreadItem(
            kind="comment",
            at=comment.created_at,
            comment=comment,
            html=html,
            attachments=listed_attachments(comment, html),
        )
        if index == 0 and original_html and original_html != comment.body_html:
            item.original = render_html(original_html, comment.attachments.all())
        items.append(((comment.created_at, 0, comment.pk), item))
    for event in events:
        if event.kind in COMMENT_KINDS:
            continue
        item = ThreadItem(
            kind="event",
            at=event.created_at,
            event=event,
            text=describe(event, names),
            actor=actor_name(event, names),
        )
        items.append(((event.created_at, 1, event.pk), item))
    items.sort(key=lambda pair: pair[0])
    return [item for _, item in items]
