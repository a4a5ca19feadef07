"""Reads of tickets and their thread, scoped to one workspace.

Every function takes the workspace (or an object already fetched inside it) and returns a
queryset carrying the ``select_related`` / ``prefetch_related`` its callers' serializers
need, so a list's query count does not grow with its length.

Filters: ``ticket_filter_q`` turns the normalised filters of ``GET /v1/tickets`` (and of a
saved view, which stores the same dict) into one ``Q``. Being a single expression, it serves
a list (``.filter(q)``) and the live counts of many saved views in one aggregate query
(``saved_view_counts``).

Search (``q``): on PostgreSQL, full-text over the subject and every comment (internal notes
included: only agents search) with the GIN indexes of migration 0004, each word matched as
a prefix ("print" finds "printer"); on SQLite, ``LIKE`` over the same columns. Either way a
ticket matches when its subject, or one of its comments, holds every word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.postgres.search import SearchVectorField
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.utils.dateparse import parse_datetime

from enque.errors import NotFound
from tickets.models import (
    Comment,
    SavedView,
    ScheduledComment,
    Tag,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketTag,
)
from workspaces.models import Agent, Workspace

# "none" in a reference filter: the field is empty (unassigned, no team...).
NONE = "none"
# "me" in the assignee filter: the agent making the request (or opening the saved view).
ME = "me"

# The most words of a search that count; the rest are ignored (each one is a GIN probe).
MAX_SEARCH_TERMS = 8
# Comment bodies are searchable on their first characters (see migration 0004).
COMMENT_SEARCH_CHARS = 100_000
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_NUMBER_RE = re.compile(r"^#?(\d{1,9})$")


# --- Tickets -------------------------------------------------------------------------------


def _tickets_with_embeds(workspace: Workspace | int) -> QuerySet[Ticket]:
    # customer, company, assignee (and user, for the name), team, category and the merge
    # target's number in the one query; tags in one more.
    return (
        Ticket.objects.for_workspace(workspace)
        .select_related("customer", "company", "assignee__user", "team", "category")
        .annotate(merged_into_number=F("merged_into__number"))
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")))
    )


def ticket_list(*, workspace: Workspace | int) -> QuerySet[Ticket]:
    """A workspace's tickets that are not deleted, with everything a list item embeds."""
    return _tickets_with_embeds(workspace).filter(deleted_at__isnull=True)


def ticket_detail_list(
    *, workspace: Workspace | int, include_deleted: bool = False
) -> QuerySet[Ticket]:
    """``ticket_list`` plus what one ticket's page shows: the first message (TicketBody) and
    the thread's counts, each a subquery of the same SELECT."""
    queryset = (
        _tickets_with_embeds(workspace) if include_deleted else ticket_list(workspace=workspace)
    )

    def count_of(model: Any, **conditions: Any) -> Coalesce:
        subquery = (
            model.objects.filter(ticket=OuterRef("pk"), **conditions)
            .order_by()
            .values("ticket")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(subquery, output_field=IntegerField()), 0)

    return queryset.select_related("body").annotate(
        public_reply_count=count_of(Comment, is_internal=False),
        internal_note_count=count_of(Comment, is_internal=True),
        attachment_count=count_of(TicketAttachment),
    )


def ticket_get(*, workspace: Workspace | int, number: int, include_deleted: bool = False) -> Ticket:
    """Ticket #number of the workspace; ``NotFound`` when missing, deleted or another
    workspace's (the three are indistinguishable)."""
    ticket = (
        ticket_detail_list(workspace=workspace, include_deleted=include_deleted)
        .filter(number=number)
        .first()
    )
    if ticket is None:
        raise NotFound("Ticket not found.")
    return ticket


# --- Filters and search --------------------------------------------------------------------


def _as_datetime(value: datetime | str) -> datetime:
    # Saved views store filters as JSON, so their times come back as ISO strings.
    if isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"Not a datetime: {value!r}")
    return parsed


def _reference_q(field: str, value: Any) -> Q:
    if value == NONE:
        return Q(**{f"{field}__isnull": True})
    return Q(**{f"{field}_id": value})


def ticket_filter_q(*, workspace: Workspace | int, agent: Agent, filters: dict[str, Any]) -> Q:
    """The normalised filters (``tickets.api.filters.TicketFilterQuery``) as one ``Q``.

    Values are already validated: references are ids of this workspace's objects (a saved
    view whose team was deleted since simply matches nothing), ``"none"`` or ``"me"``.
    """
    q = Q()
    for name in ("status", "priority", "channel"):
        if filters.get(name):
            q &= Q(**{f"{name}__in": list(filters[name])})
    assignee = filters.get("assignee")
    if assignee is not None:
        q &= Q(assignee_id=agent.pk) if assignee == ME else _reference_q("assignee", assignee)
    for name in ("team", "category", "company", "mailbox"):
        if filters.get(name) is not None:
            q &= _reference_q(name, filters[name])
    if filters.get("customer") is not None:
        q &= Q(customer_id=filters["customer"])
    if filters.get("tag"):
        names = [str(name).lower() for name in filters["tag"]]
        tagged = (
            TicketTag.objects.filter(ticket=OuterRef("pk"))
            .annotate(tag_name=Lower("tag__name"))
            .filter(tag_name__in=names)
        )
        q &= Q(Exists(tagged))
    for name, lookup in (
        ("created_after", "created_at__gte"),
        ("created_before", "created_at__lt"),
        ("updated_after", "updated_at__gte"),
        ("updated_before", "updated_at__lt"),
    ):
        if filters.get(name):
            q &= Q(**{lookup: _as_datetime(filters[name])})
    if filters.get("q"):
        q &= ticket_search_q(filters["q"], workspace=workspace)
    return q


def search_terms(text: str) -> list[str]:
    return [word.lower() for word in _WORD_RE.findall(text)][:MAX_SEARCH_TERMS]


class _SimpleTsVector(Func):
    """``to_tsvector('simple', COALESCE(<expr>, ''))``, written out so that it is exactly the
    expression of the GIN indexes in migration 0004 (no stemming: names, codes and error
    messages are searched as typed)."""

    template = "to_tsvector('simple'::regconfig, COALESCE(%(expressions)s, ''))"
    output_field = SearchVectorField()


class _Head(Func):
    # LEFT(text, n) with n in the SQL text itself: a bind parameter would not match the index.
    template = f"LEFT(%(expressions)s, {COMMENT_SEARCH_CHARS})"
    output_field = TextField()


class _PrefixTsQuery(Func):
    template = "to_tsquery('simple'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


class _Matches(Func):
    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


def subject_search_vector() -> Func:
    return _SimpleTsVector(F("subject"))


def comment_search_vector() -> Func:
    return _SimpleTsVector(_Head(F("body_text")))


def search_tsquery(terms: list[str]) -> Func:
    """``to_tsquery`` of every term as a prefix. Terms are ``\\w+`` only (search_terms), so
    the raw query syntax needs no escaping."""
    return _PrefixTsQuery(Value(" & ".join(f"{term}:*" for term in terms)))


def search_matches(vector: Func, query: Func) -> Func:
    return _Matches(vector, query)


def ticket_search_q(text: str, *, workspace: Workspace | int) -> Q:
    """Tickets whose subject, or one of whose comments, holds every word of ``text``
    (``#123`` or ``123`` also finds ticket #123).

    Both arms are uncorrelated ``id IN (SELECT ...)`` subqueries: PostgreSQL runs each once
    through its GIN index (a bitmap scan) and probes the hashed result while it walks the
    workspace's tickets in list order. A correlated EXISTS, or the subject condition OR-ed
    in directly, would instead recompute ``to_tsvector`` for every comment of every ticket.
    """
    terms = search_terms(text)
    number = _NUMBER_RE.match(text.strip())
    by_number = Q(number=int(number.group(1))) if number else Q(pk__in=[])
    if not terms:
        return by_number
    tickets = Ticket.objects.for_workspace(workspace)
    comments = Comment.objects.for_workspace(workspace)
    if connection.vendor == "postgresql":
        query = search_tsquery(terms)
        tickets = tickets.filter(search_matches(subject_search_vector(), query))
        comments = comments.filter(search_matches(comment_search_vector(), query))
    else:
        for term in terms:
            tickets = tickets.filter(subject__icontains=term)
            comments = comments.filter(body_text__icontains=term)
    return (
        Q(pk__in=tickets.order_by().values("pk"))
        | Q(pk__in=comments.order_by().values("ticket_id"))
        | by_number
    )


def ticket_filtered(
    *, workspace: Workspace | int, agent: Agent, filters: dict[str, Any]
) -> QuerySet[Ticket]:
    return ticket_list(workspace=workspace).filter(
        ticket_filter_q(workspace=workspace, agent=agent, filters=filters)
    )


# --- Saved views ---------------------------------------------------------------------------


def saved_view_list(*, workspace: Workspace | int, agent: Agent) -> QuerySet[SavedView]:
    """The views an agent sees: the workspace's shared ones and their own."""
    return SavedView.objects.for_workspace(workspace).filter(
        Q(owner__isnull=True) | Q(owner_id=agent.pk)
    )


def saved_view_counts(
    *, workspace: Workspace | int, agent: Agent, views: list[SavedView]
) -> dict[int, int]:
    """Each view's live ticket count, all in one aggregate query (``COUNT(*) FILTER (WHERE
    ...)`` per view on PostgreSQL, ``SUM(CASE ...)`` on SQLite)."""
    if not views:
        return {}
    aggregates = {
        f"view_{view.pk}": Count(
            "pk", filter=ticket_filter_q(workspace=workspace, agent=agent, filters=view.filters)
        )
        for view in views
    }
    totals = (
        Ticket.objects.for_workspace(workspace)
        .filter(deleted_at__isnull=True)
        .order_by()
        .aggregate(**aggregates)
    )
    return {view.pk: totals[f"view_{view.pk}"] for view in views}


# --- The thread and history ----------------------------------------------------------------


def comment_list(*, ticket: Ticket) -> QuerySet[Comment]:
    """A ticket's thread (internal notes included) with authors and attachments."""
    return (
        Comment.objects.for_workspace(ticket.workspace_id)
        .filter(ticket_id=ticket.pk)
        .select_related("author_agent__user", "author_customer")
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=TicketAttachment.objects.order_by("created_at", "id"),
            )
        )
    )


def ticket_event_list(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return (
        TicketEvent.objects.for_workspace(ticket.workspace_id)
        .filter(ticket_id=ticket.pk)
        .select_related("actor_agent__user", "actor_customer")
    )


def scheduled_comment_list(*, workspace: Workspace | int) -> QuerySet[ScheduledComment]:
    """Scheduled replies of the workspace's tickets that are not deleted."""
    return (
        ScheduledComment.objects.for_workspace(workspace)
        .filter(ticket__deleted_at__isnull=True)
        .select_related("ticket", "author__user")
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=TicketAttachment.objects.order_by("created_at", "id"),
            )
        )
    )


# --- Attachments ---------------------------------------------------------------------------


def attachment_list(*, workspace: Workspace | int) -> QuerySet[TicketAttachment]:
    """Attachments of the workspace, except those of deleted tickets (a deleted ticket's
    files are as hidden as the ticket until an admin restores it)."""
    return (
        TicketAttachment.objects.for_workspace(workspace)
        .filter(Q(ticket__isnull=True) | Q(ticket__deleted_at__isnull=True))
        .annotate(ticket_number=F("ticket__number"))
    )


def attachments_for_ids(
    *, workspace: Workspace | int, ids: list[int]
) -> tuple[list[TicketAttachment], list[int]]:
    """The workspace's attachments with these ids, and the ids that are not among them."""
    found = list(TicketAttachment.objects.for_workspace(workspace).filter(pk__in=ids))
    known = {a.pk for a in found}
    return found, [pk for pk in ids if pk not in known]


# --- Incremental export --------------------------------------------------------------------


@dataclass(frozen=True)
class ExportPosition:
    """Where an export stream stands: after the row (updated_at, id)."""

    updated_at: datetime
    id: int


def ticket_export_page(
    *, workspace: Workspace | int, after: ExportPosition, until: datetime, limit: int
) -> list[Ticket]:
    """The next ``limit`` tickets changed after ``after``, in (updated_at, id) order, that
    changed no later than ``until``. Deleted tickets are included (with ``deleted_at``) so a
    mirror learns of the deletion; every write bumps ``updated_at``, so a ticket changed
    while a client pages moves past the client's position and comes again later."""
    return list(
        _tickets_with_embeds(workspace)
        .filter(
            Q(updated_at__gt=after.updated_at) | Q(updated_at=after.updated_at, id__gt=after.id),
            updated_at__lte=until,
        )
        .order_by("updated_at", "id")[:limit]
    )
