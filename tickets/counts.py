# SQL built from table and column names of this code only; values are parameters.
# ruff: noqa: S608
"""The maintained ticket counts behind the inbox sidebar (issue #9).

Triggers on ``tickets_ticket`` (migration 0009) append a signed row to
``tickets_ticketcountdelta`` for every change of a live ticket's key — (status, assignee,
team, mailbox) — so a workspace's counts are one small ``GROUP BY`` over its delta rows,
whatever its number of tickets. Live means ``deleted_at IS NULL``.

- ``key_counts``: the live tickets per key (what the sidebar sums its views from).
- ``compact_ticket_counts``: the periodic job's work: each key's rows folded into one, rows
  of deleted workspaces dropped.
- ``rebuild_ticket_counts``: a workspace's rows recomputed from its tickets, for data loaded
  with triggers off (``bench/datagen.py`` loads by ``COPY`` as ``session_replication_role =
  replica``) or a repair.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import Sum

from tickets.models import Ticket, TicketCountDelta
from workspaces.models import Agent, Workspace

DELTAS = TicketCountDelta._meta.db_table
TICKETS = Ticket._meta.db_table
WORKSPACES = Workspace._meta.db_table
KEY = "workspace_id, status, assignee_id, team_id, mailbox_id"


class CountKey(NamedTuple):
    status: str
    assignee_id: int | None
    team_id: int | None
    mailbox_id: int | None


def key_counts(
    *, workspace: Workspace | int, statuses: Iterable[str] | None = None
) -> dict[CountKey, int]:
    """The workspace's live tickets per key (of these statuses, else all), keys with none
    left out. One query, over a few rows per key (one after each compaction), never over
    the tickets."""
    rows = TicketCountDelta.objects.for_workspace(workspace)
    if statuses is not None:
        rows = rows.filter(status__in=list(statuses))
    rows = (
        rows.order_by()
        .values_list("status", "assignee_id", "team_id", "mailbox_id")
        .annotate(total=Sum("n"))
        .exclude(total=0)
    )
    return {CountKey(*row[:4]): row[4] for row in rows}


# The filters (``tickets.api.filters.TicketFilterQuery`` form) a count can be summed from.
COUNTABLE_FILTERS = frozenset({"status", "assignee", "team", "mailbox"})


def _reference_matches(value: Any, key_value: int | None) -> bool:
    if value == "none":
        return key_value is None
    return key_value is not None and int(value) == key_value


def count_for(counts: dict[CountKey, int], *, agent: Agent, filters: dict[str, Any]) -> int:
    """The number of live tickets a view's filters match, summed from ``key_counts``.

    Only status, assignee (an id, ``"me"`` or ``"none"``), team and mailbox can be answered
    from the keys; other filters are a programming error (count those views with
    ``selectors.saved_view_counts``).
    """
    unknown = {name for name, value in filters.items() if value is not None} - COUNTABLE_FILTERS
    if unknown:
        raise ValueError(f"not countable from the maintained counts: {sorted(unknown)}")
    statuses = {str(s) for s in filters["status"]} if filters.get("status") else None
    assignee = filters.get("assignee")
    if assignee == "me":
        assignee = agent.pk
    total = 0
    for key, n in counts.items():
        if statuses is not None and key.status not in statuses:
            continue
        if assignee is not None and not _reference_matches(assignee, key.assignee_id):
            continue
        if filters.get("team") is not None and not _reference_matches(filters["team"], key.team_id):
            continue
        if filters.get("mailbox") is not None and not _reference_matches(
            filters["mailbox"], key.mailbox_id
        ):
            continue
        total += n
    return total


# --- Rebuild -------------------------------------------------------------------------------


def rebuild_sql(*, vendor: str, one_workspace: bool) -> list[str]:
    """Statements that replace the delta rows with one row per key counted from the tickets:
    of one workspace (one ``%s`` parameter each) or of all (the migration's backfill).

    On PostgreSQL the deletion and the count are ONE statement, so they share a snapshot: a
    ticket change committed meanwhile is either in the count and its delta row deleted, or
    in neither. SQLite has one writer at a time, so two statements in a transaction do.
    """
    where_deltas = "WHERE workspace_id = %s" if one_workspace else ""
    where_tickets = "AND workspace_id = %s" if one_workspace else ""
    count = (
        f"SELECT {KEY}, COUNT(*) FROM {TICKETS} "
        f"WHERE deleted_at IS NULL {where_tickets} GROUP BY {KEY}"
    )
    if vendor == "postgresql":
        return [
            # A data-modifying WITH runs whether or not the main statement reads it.
            f"WITH gone AS (DELETE FROM {DELTAS} {where_deltas} RETURNING 1) "
            f"INSERT INTO {DELTAS} ({KEY}, n) {count}"
        ]
    return [f"DELETE FROM {DELTAS} {where_deltas}", f"INSERT INTO {DELTAS} ({KEY}, n) {count}"]


def rebuild_ticket_counts(workspace_id: int) -> None:
    """Recompute a workspace's counts from its tickets (after a load with triggers off)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in rebuild_sql(vendor=connection.vendor, one_workspace=True):
            cursor.execute(statement, [workspace_id] * statement.count("%s"))


# --- Compaction ----------------------------------------------------------------------------

# Rows to rewrite: those of a key with more than one row or a zero total, and every row of
# a workspace that no longer exists (the triggers append -1s while its tickets are deleted).
_DOOMED = f"""
    SELECT id FROM (
        SELECT id, workspace_id,
               COUNT(*) OVER w AS key_rows,
               SUM(n) OVER w AS key_total
        FROM {DELTAS}
        WHERE id <= %s
        WINDOW w AS (PARTITION BY {KEY})
    ) keyed
    WHERE key_rows > 1 OR key_total = 0
       OR NOT EXISTS (SELECT 1 FROM {WORKSPACES} ws WHERE ws.id = keyed.workspace_id)
"""
_LIVE_WORKSPACE = f"EXISTS (SELECT 1 FROM {WORKSPACES} ws WHERE ws.id = {{rows}}.workspace_id)"


def compact_ticket_counts() -> int:
    """Fold each key's delta rows into one; drop zero keys and deleted workspaces' rows.

    Only rows up to the highest id read at the start are touched, so rows the triggers
    append meanwhile wait for the next run. On PostgreSQL the deletion and the insertion of
    the sums are one statement (``DELETE ... RETURNING`` feeding the ``INSERT``): exactly
    the rows deleted are summed, even when a transaction that took a lower id commits
    during the run, or two runs overlap. Returns the number of rows removed.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {DELTAS}")
        (high,) = cursor.fetchone()
        if high is None:
            return 0
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""
                WITH gone AS (
                    DELETE FROM {DELTAS} WHERE id IN ({_DOOMED}) RETURNING {KEY}, n
                ), summed AS (
                    INSERT INTO {DELTAS} ({KEY}, n)
                    SELECT {KEY}, SUM(n) FROM gone
                    WHERE {_LIVE_WORKSPACE.format(rows="gone")}
                    GROUP BY {KEY} HAVING SUM(n) <> 0
                    RETURNING 1
                )
                SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM summed)
                """,
                [high],
            )
            (removed,) = cursor.fetchone()
            return removed
        # SQLite: the first write takes the database's one write lock, so both statements
        # see the same rows up to ``high``; the sums get ids above it and survive the delete.
        cursor.execute(
            f"""
            INSERT INTO {DELTAS} ({KEY}, n)
            SELECT {KEY}, SUM(n) FROM {DELTAS} d
            WHERE id <= %s AND {_LIVE_WORKSPACE.format(rows="d")}
            GROUP BY {KEY} HAVING COUNT(*) > 1 AND SUM(n) <> 0
            """,
            [high],
        )
        added = cursor.rowcount
        cursor.execute(f"DELETE FROM {DELTAS} WHERE id IN ({_DOOMED})", [high])
        return cursor.rowcount - added
