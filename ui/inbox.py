"""The inbox: its views, their counts, and the filters of the ticket list.

A view is a named set of ticket filters in the normalised form of
``tickets.api.filters.TicketFilterQuery`` — the form ``GET /v1/tickets`` and saved views use
— so the list is ``tickets.selectors.ticket_filtered`` and each count is
``tickets.selectors.ticket_filter_q``: the UI has no filter logic of its own.

Counts: every built-in, team and mailbox view counts tickets that still need work by
status, assignee, team and mailbox alone, so all their counts are summed in Python from the
workspace's maintained counts (``tickets.counts.key_counts``: one ``GROUP BY`` over a few
delta rows per key, kept by triggers) — no inbox load counts tickets. "Resolved" and "All
tickets" show no count, as before. Saved views, whose filters can be anything, are counted
by ``selectors.saved_view_counts`` (one aggregate over the tickets, only when the agent has
saved views).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from django.http import QueryDict
from django.utils.dateparse import parse_date

from enque.errors import EnqueError
from integrations.models import MailboxConnection
from tickets import counts, selectors
from tickets.api.filters import DEFAULT_ORDERING, TicketFilterQuery
from tickets.models import ACTIVE_STATUSES, DONE_STATUSES, SavedView, TicketStatus
from workspaces.models import Agent, Team, Workspace

ACTIVE = [str(s) for s in ACTIVE_STATUSES]
DONE = [str(s) for s in DONE_STATUSES]
DEFAULT_VIEW = "mine"
PAGE_SIZE = 25

# The filters the filter bar offers (names of TicketFilterQuery), and the two date fields
# it turns into created_after / created_before.
FILTER_PARAMS = (
    "status",
    "priority",
    "assignee",
    "team",
    "category",
    "tag",
    "customer",
    "company",
    "q",
    "ordering",
)
DATE_PARAMS = ("created_from", "created_to")

ORDERING_LABELS = {
    "-updated_at": "Recently updated",
    "updated_at": "Least recently updated",
    "-created_at": "Newest",
    "created_at": "Oldest",
    "-number": "Highest number",
    "number": "Lowest number",
}


@dataclass
class InboxView:
    key: str
    label: str
    filters: dict[str, Any]
    # Counted from the maintained counts of active tickets (see the module docstring).
    counted: bool = True
    saved: SavedView | None = None
    count: int | None = None


@dataclass
class Sidebar:
    views: list[InboxView]
    teams: list[InboxView]
    mailboxes: list[InboxView]
    saved: list[InboxView]

    def all(self) -> list[InboxView]:
        return [*self.views, *self.teams, *self.mailboxes, *self.saved]

    def get(self, key: str) -> InboxView | None:
        return next((view for view in self.all() if view.key == key), None)

    def counts(self) -> dict[str, int | None]:
        return {view.key: view.count for view in self.all()}


def builtin_views() -> list[InboxView]:
    return [
        InboxView("mine", "My open tickets", {"assignee": "me", "status": ACTIVE}),
        InboxView("unassigned", "Unassigned", {"assignee": "none", "status": ACTIVE}),
        InboxView("open", "All open", {"status": ACTIVE}),
        InboxView("pending", "Pending", {"status": [str(TicketStatus.PENDING)]}),
        InboxView("resolved", "Resolved & closed", {"status": DONE}, counted=False),
        InboxView("all", "All tickets", {}, counted=False),
    ]


def sidebar(
    *, workspace: Workspace, agent: Agent, teams: list[Team], with_counts: bool = True
) -> Sidebar:
    """Every view the agent sees, with counts.

    Queries: the active mailboxes, the saved views, the maintained counts, and the saved
    views' aggregate when there are any (``teams`` are the caller's, already read).
    """
    mailboxes = list(
        MailboxConnection.objects.for_workspace(workspace)
        .filter(is_active=True)
        .order_by("email_address", "id")
        .only("id", "email_address", "display_name")
    )
    saved_views = list(selectors.saved_view_list(workspace=workspace, agent=agent))
    bar = Sidebar(
        views=builtin_views(),
        teams=[
            InboxView(f"team-{team.pk}", team.name, {"team": team.pk, "status": ACTIVE})
            for team in teams
        ],
        mailboxes=[
            InboxView(
                f"mailbox-{mailbox.pk}",
                mailbox.display_name or mailbox.email_address,
                {"mailbox": mailbox.pk, "status": ACTIVE},
            )
            for mailbox in mailboxes
        ],
        saved=[
            InboxView(f"saved-{view.pk}", view.name, dict(view.filters), counted=False, saved=view)
            for view in saved_views
        ],
    )
    if not with_counts:
        return bar
    # Every counted view is of active tickets: the done statuses' keys need not be read.
    totals = counts.key_counts(workspace=workspace, statuses=ACTIVE)
    for view in bar.all():
        if view.counted:
            view.count = counts.count_for(totals, agent=agent, filters=view.filters)
    if saved_views:
        saved_counts = selectors.saved_view_counts(
            workspace=workspace, agent=agent, views=saved_views
        )
        for view in bar.saved:
            view.count = saved_counts[view.saved.pk]
    return bar


# --- Filters -------------------------------------------------------------------------------


@dataclass
class Filters:
    """What the filter bar asked for: the validated filters, what to show back in the
    form, and an error to show when the request named something impossible."""

    values: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The filter bar's values as (name, value) pairs, for hidden inputs."""
        pairs: list[tuple[str, str]] = []
        for name, value in self.form.items():
            values = value if isinstance(value, list) else [value]
            pairs.extend((name, str(v)) for v in values)
        return pairs

    @property
    def active_count(self) -> int:
        return sum(1 for name in self.form if name not in ("q", "ordering"))


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def parse_filters(params: QueryDict, *, workspace: Workspace) -> Filters:
    """The filter bar's query parameters, validated by the API's own filter serializer.

    Dates (``created_from`` / ``created_to``, whole days in the workspace's time zone)
    become ``created_after`` / ``created_before``. Another workspace's team, agent or
    customer is refused like a missing one (``check_filter_references``).
    """
    result = Filters()
    data = QueryDict(mutable=True)
    for name in FILTER_PARAMS:
        values = [v.strip() for v in params.getlist(name) if v.strip()]
        if values:
            data.setlist(name, values)
            result.form[name] = values if name in ("status", "priority", "tag") else values[0]
    try:
        zone = ZoneInfo(workspace.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    for name, target, shift in (
        ("created_from", "created_after", 0),
        ("created_to", "created_before", 1),
    ):
        raw = params.get(name, "").strip()
        if not raw:
            continue
        day = parse_date(raw) if len(raw) == 10 else None
        if day is None:
            result.error = "Dates are written YYYY-MM-DD."
            continue
        result.form[name] = raw
        data[target] = _day_start(day + timedelta(days=shift), zone).isoformat()
    serializer = TicketFilterQuery(
        data=data, context={"request": SimpleNamespace(workspace=workspace)}
    )
    try:
        valid = serializer.is_valid()
    except EnqueError as exc:
        # A reference to another workspace's (or no) object.
        result.error = exc.message
        return result
    if not valid:
        first = next(iter(serializer.errors.items()))
        result.error = f"{first[0].replace('_', ' ').capitalize()}: {first[1][0]}"
        return result
    result.values = dict(serializer.validated_data)
    return result


def effective_filters(view: InboxView, filters: Filters) -> dict[str, Any]:
    """The view's filters, overridden key by key by the filter bar's."""
    merged = {**view.filters, **filters.values}
    merged.setdefault("ordering", DEFAULT_ORDERING)
    return merged


def ordering_parts(ordering: str) -> tuple[str, bool]:
    """("-updated_at") → ("updated_at", descending)."""
    return ordering.lstrip("-"), ordering.startswith("-")
