"""Reads of tickets and their thread, scoped to one workspace.

Every function takes the workspace (or an object already fetched inside it) and returns a
queryset carrying the ``select_related`` / ``prefetch_related`` its callers' serializers
need, so a list's query count does not grow with its length.

Filters: ``ticket_filter_q`` turns the normalised filters of ``GET /v1/tickets`` (and of a
saved view, which stores the same dict) into one ``Q``. Being a single expression, it serves
a list (``.filter(q)``) and the live counts of many saved views in one aggregate query
(``saved_view_counts``).

Search (``q``): on PostgreSQL, full-text over each ticket's search document — its subject
and every comment, internal notes included (only agents search) — each word matched as a
prefix ("print" finds "printer"); see tickets/search.py. On SQLite, ``LIKE`` over the same
columns.
"""

from __future__ import annotations

import functools
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
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.utils.dateparse import parse_datetime

from enque.errors import NotFound
from tickets import search
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
# Searches matching at most this many tickets are resolved to their ids (ticket_search_q).
RARE_SEARCH_LIMIT = 1000
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_NUMBER_RE = re.compile(r"^#?(\d{1,9})$")


# --- Tickets -------------------------------------------------------------------------------


def _tickets_with_embeds(workspace: Workspace | int) -> QuerySet[Ticket]:
    # customer, company, team and category joined into the one query, the merge target's
    # number as a subquery of it; the assignee with their user in a second query, tags in a
    # third. PostgreSQL's planning time grows steeply with the relations joined: with all
    # seven (the assignee, their user and the merge target too) it spent 35-130 ms planning
    # a page it then read in 1 ms (1,000,000 tickets, bench/run.py); with these four, ~2 ms.
    return (
        Ticket.objects.for_workspace(workspace)
        .select_related("customer", "company", "team", "category")
        .annotate(
            merged_into_number=Subquery(
                Ticket.objects.filter(pk=OuterRef("merged_into_id")).values("number")[:1]
            )
        )
        .prefetch_related(
            Prefetch("assignee", queryset=Agent.objects.select_related("user")),
            Prefetch("tags", queryset=Tag.objects.only("id", "name")),
        )
    )


def ticket_list(*, workspace: Workspace | int) -> QuerySet[Ticket]:
    """A workspace's tickets that are not deleted, with everything a list item embeds."""
    return _tickets_with_embeds(workspace).filter(deleted_at__isnull=True)


# What a list item (TicketOutput) reads of each joined relation: a customer's notes, a
# team's webhook and every relation's timestamps stay in the database (fewer columns to
# send and to parse, the timestamps the costliest).
_LIST_ITEM_RELATED_FIELDS = {
    "customer": ("id", "name", "email"),
    "company": ("id", "name"),
    "team": ("id", "name"),
    "category": ("id", "name"),
}


@functools.cache
def _list_item_deferred_fields() -> tuple[str, ...]:
    return tuple(
        f"{relation}__{field.name}"
        for relation, shown in _LIST_ITEM_RELATED_FIELDS.items()
        for field in Ticket._meta.get_field(relation).related_model._meta.concrete_fields
        if field.name not in shown
    )


def ticket_list_item_columns(queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """``queryset`` (of ``ticket_list``) loading only the columns a list item shows of the
    joined customer, company, team and category; the assignee and the tags are left to
    ``ticket_list_embeds``, run on the page (``tickets.api.views.paginated_tickets`` pairs
    the two)."""
    return queryset.defer(*_list_item_deferred_fields()).prefetch_related(None)


def ticket_list_embeds(tickets: list[Ticket]) -> list[Ticket]:
    """Give each ticket of a page its assignee's name (``assignee_name``) and its tag
    names (``tag_names``), in two flat queries of values: what the list item shows. Both
    read within the tickets' workspace only.

    Django's prefetch of the same objects (an Agent with its User, Tag instances) cost
    about 5 ms of Python on every 25-row page (bench/run.py); this, about a fifth."""
    workspace_ids = {ticket.workspace_id for ticket in tickets}
    assignee_ids = {ticket.assignee_id for ticket in tickets if ticket.assignee_id}
    names = (
        {
            pk: Agent.name_from(display_name, user_name, email)
            for pk, display_name, user_name, email in Agent.objects.filter(
                workspace_id__in=workspace_ids, pk__in=assignee_ids
            )
            .order_by()
            .values_list("pk", "display_name", "user__name", "user__email")
        }
        if assignee_ids
        else {}
    )
    tag_names: dict[int, list[str]] = {ticket.pk: [] for ticket in tickets}
    if tickets:
        rows = (
            TicketTag.objects.filter(workspace_id__in=workspace_ids, ticket_id__in=tag_names)
            # Tag's own ordering, as ``ticket.tags.all()`` gives them.
            .order_by("tag__name", "tag_id")
            .values_list("ticket_id", "tag__name")
        )
        for ticket_id, name in rows:
            tag_names[ticket_id].append(name)
    for ticket in tickets:
        ticket.assignee_name = names.get(ticket.assignee_id)
        ticket.tag_names = tag_names[ticket.pk]
    return tickets


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


def ticket_filter_q(
    *,
    workspace: Workspace | int,
    agent: Agent,
    filters: dict[str, Any],
    resolve_rare_search: bool = True,
) -> Q:
    """The normalised filters (``tickets.api.filters.TicketFilterQuery``) as one ``Q``.

    ``resolve_rare_search``: see ``ticket_search_q``; off for counts, which read every
    matching ticket anyway and would otherwise spend a query per counted view.

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
        q &= ticket_search_q(filters["q"], workspace=workspace, resolve_rare=resolve_rare_search)
    return q


def search_terms(text: str) -> list[str]:
    return [word.lower() for word in _WORD_RE.findall(text)][:MAX_SEARCH_TERMS]


class _PrefixTsQuery(Func):
    template = "to_tsquery('simple'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


class _Matches(Func):
    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


def _tsquery_text(terms: list[str]) -> str:
    """``to_tsquery`` input of every term as a prefix. Terms are ``\\w+`` only
    (search_terms), so the raw query syntax needs no escaping."""
    return " & ".join(f"{term}:*" for term in terms)


def ticket_search_q(text: str, *, workspace: Workspace | int, resolve_rare: bool = True) -> Q:
    """Tickets whose subject and thread together hold every word of ``text`` (``#123`` or
    ``123`` also finds ticket #123).

    PostgreSQL: a condition on the ticket's own search document (tickets/search.py).
    SQLite: each word, by ``LIKE``, in the subject or in one of the comments.
    """
    terms = search_terms(text)
    number = _NUMBER_RE.match(text.strip())
    by_number = Q(number=int(number.group(1))) if number else Q(pk__in=[])
    if not terms:
        return by_number
    if connection.vendor == "postgresql":
        query = _tsquery_text(terms)
        matches = _Matches(F("search_document"), _PrefixTsQuery(Value(query)))
        if not resolve_rare:
            return Q(matches) | by_number
        # A rare search is resolved to its tickets first (through the GIN index), so the
        # list never walks the workspace in list order looking for matches that are not
        # there: the planner's estimate for a word it has no statistics on (0.5% of the
        # tickets) made a word found nowhere walk all 1,000,000 tickets (6 s). A frequent
        # one stays a condition on the list, which finds its page in the first rows.
        workspace_id = workspace if isinstance(workspace, int) else workspace.pk
        found = search.matching_ids(workspace_id, query, RARE_SEARCH_LIMIT + 1)
        if len(found) <= RARE_SEARCH_LIMIT:
            return Q(pk__in=found) | by_number
        return Q(matches) | by_number
    comments = Comment.objects.for_workspace(workspace).order_by()
    every_word = Q()
    for term in terms:
        every_word &= Q(subject__icontains=term) | Q(
            pk__in=comments.filter(body_text__icontains=term).values("ticket_id")
        )
    return every_word | by_number


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
            "pk",
            filter=ticket_filter_q(
                workspace=workspace,
                agent=agent,
                filters=view.filters,
                resolve_rare_search=False,
            ),
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
