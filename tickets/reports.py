"""Analytics: the numbers a support lead runs the team by, computed in the database.

Every figure is an aggregate query over the stored ticket timestamps (``created_at``,
``first_response_at``, ``resolved_at``), the status history (``TicketEvent``), the thread
(``Comment``) and the SLA clocks (``automation.TicketSLA``); no ticket is loaded into
Python. The number of queries of each report is fixed, whatever the workspace's size.

Definitions (the API and the dashboard say the same):

- The tickets counted: the workspace's, not deleted, and not merged into another ticket (a
  merged ticket lives on in its target, so it counts once), narrowed by the filters.
- A period is a range of local dates in the workspace's time zone, both ends included; a
  day runs from local midnight to local midnight.
- ``created``: tickets created in the period. ``resolved``: tickets whose (current)
  ``resolved_at`` falls in it — reopening clears ``resolved_at``, so a reopened ticket is
  resolved again only when it is resolved again. ``reopened``: tickets moved from resolved
  or closed back to an active status in the period (from the status history).
- ``backlog``: tickets open at the end of the period (or of each day / bucket): created
  before that instant and not resolved by then (``resolved_at`` null or later). A reopened
  ticket counts as open from its creation to its current resolution.
- First response time: ``first_response_at - created_at`` of the tickets first answered in
  the period; resolution time: ``resolved_at - created_at`` of the tickets resolved in the
  period. Median and 90th percentile are ``percentile_cont`` (linear interpolation), the
  average the mean; whole seconds. The business-hours variants count only the open time of
  the workspace's default business hours (null without one).
- Replies per ticket and one-touch rate: over the tickets resolved in the period, the public
  agent replies per ticket, and the share (%) resolved with exactly one.
- SLA: for the tickets created in the period that have a target, per target: ``met``
  (answered / resolved by the due time, no breach recorded), ``in_progress`` (not yet, and
  not overdue), ``breached`` (the rest); compliance is met / (met + breached) in %.
- Heat map: tickets created per local weekday (Monday first) and hour.

Percentiles. PostgreSQL has ``percentile_cont(p) WITHIN GROUP (ORDER BY x)``; SQLite has
no percentile aggregate, so there the same value is computed in SQL with window functions:
each row's rank among its group's ordered durations (``ROW_NUMBER``) and the group's count
(``COUNT(*) OVER``) pick the two neighbours of position ``(n - 1) * p`` and interpolate
between them, which is exactly percentile_cont's definition.

Business hours in SQL. The open time between two instants is ``B(end) - B(start)``, where
``B(t)`` is the open time from a fixed Monday (1970-01-05, local) to ``t``: whole weeks
times the weekly open time, plus the open time of the earlier weekdays of ``t``'s week,
plus the open part of ``t``'s own day before ``t``'s local time, minus the open time of the
holidays before ``t``. Each part is plain arithmetic on the local date and time of day
(``TruncDate`` / ``Extract*`` with the schedule's zone), so it runs inside the aggregate.
It counts wall-clock time: an opening interval that contains a DST change counts its local
length (``automation.business_hours`` counts elapsed time), which matters only for a
schedule open across the night of a clock change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    Exists,
    Expression,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import (
    Coalesce,
    ExtractHour,
    ExtractIsoWeekDay,
    ExtractMinute,
    ExtractSecond,
    Trunc,
    TruncDate,
)
from django.db.models.lookups import Exact
from django.utils import timezone

from automation.business_hours import Schedule
from tickets.models import (
    ACTIVE_STATUSES,
    DONE_STATUSES,
    AuthorType,
    Comment,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketTag,
)
from workspaces.models import Agent, Team, Workspace

INTERVALS = ("day", "week", "month")
METRICS = (
    "created",
    "resolved",
    "reopened",
    "backlog",
    "first_response_median",
    "first_response_p90",
    "resolution_median",
    "resolution_p90",
)
# The longest period each interval may span: a daily series of a year is 366 points; weekly
# and monthly series (and the tables) may look back three years.
MAX_DAYS = {"day": 366, "week": 1100, "month": 1100}
MAX_PERIOD_DAYS = 1100
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# The local day number 0 of the business-hours arithmetic: a Monday.
_ORIGIN = date(1970, 1, 5)
_DAY = 86400


# --- Inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Narrowing of the tickets counted; ids are checked to be the workspace's by the
    caller (the API's query serializer, the dashboard's form)."""

    team_id: int | None = None
    agent_id: int | None = None
    mailbox_id: int | None = None
    channel: str | None = None
    category_id: int | None = None
    tag_id: int | None = None
    priority: str | None = None
    company_id: int | None = None


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` to ``end`` (both included) in ``tz``."""

    start: date
    end: date
    tz: ZoneInfo

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=self.tz)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=self.tz)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "timezone": self.tz.key}


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.timezone or "UTC")
    except (ValueError, KeyError):
        # An unknown zone name in an old row: UTC rather than no report at all.
        return ZoneInfo("UTC")


def default_period(workspace: Workspace, *, days: int = 30) -> Period:
    tz = workspace_zone(workspace)
    today = timezone.now().astimezone(tz).date()
    return Period(start=today - timedelta(days=days - 1), end=today, tz=tz)


def report_schedule(workspace: Workspace) -> Schedule | None:
    """The default business hours of the workspace (three queries), or None."""
    from automation.models import BusinessHours

    hours = (
        BusinessHours.objects.for_workspace(workspace)
        .filter(is_default=True)
        .prefetch_related("slots", "holidays")
        .first()
    )
    if hours is None:
        return None
    schedule = Schedule.from_model(hours)
    return None if schedule.never_opens else schedule


# --- The tickets counted ------------------------------------------------------------------


def report_tickets(workspace: Workspace, filters: Filters) -> QuerySet[Ticket]:
    qs = Ticket.objects.for_workspace(workspace).filter(
        deleted_at__isnull=True, merged_into__isnull=True
    )
    simple = {
        "team_id": filters.team_id,
        "assignee_id": filters.agent_id,
        "mailbox_id": filters.mailbox_id,
        "channel": filters.channel,
        "category_id": filters.category_id,
        "priority": filters.priority,
        "company_id": filters.company_id,
    }
    qs = qs.filter(**{key: value for key, value in simple.items() if value is not None})
    if filters.tag_id is not None:
        qs = qs.filter(
            Exists(TicketTag.objects.filter(ticket=OuterRef("pk"), tag_id=filters.tag_id))
        )
    return qs.order_by()


def _in(field_name: str, period: Period) -> Q:
    return Q(**{f"{field_name}__gte": period.start_at, f"{field_name}__lt": period.end_at})


# --- SQL building blocks ------------------------------------------------------------------


class EpochSeconds(Func):
    """Whole seconds since 1970 of a timestamp (truncated, the same on both databases)."""

    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="FLOOR(EXTRACT(EPOCH FROM %(expressions)s))", **extra
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # "%%%%s": the template's own % formatting leaves "%%s", which the SQLite cursor
        # wrapper turns into strftime's "%s" (a bare "%s" would be taken for a parameter).
        return self.as_sql(
            compiler,
            connection,
            template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)",
            **extra,
        )


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(p) WITHIN GROUP (ORDER BY x)``."""

    function = "percentile_cont"
    output_field = FloatField()
    allow_distinct = False

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        if not 0 <= percentile <= 1:
            raise ValueError("A percentile is between 0 and 1.")
        self.percentile = float(percentile)
        super().__init__(expression, **extra)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        if connection.vendor != "postgresql":
            raise NotImplementedError("percentile_cont is PostgreSQL's; see percentiles().")
        # The fraction is our own float, never user input: safe to write into the SQL.
        template = f"%(function)s({self.percentile!r}) WITHIN GROUP (ORDER BY %(expressions)s)"
        return super().as_sql(compiler, connection, template=template, **extra)


class OpenSecondsBefore(Expression):
    """``B(t)`` of the module docstring: a schedule's open seconds from local Monday
    1970-01-05 to the timestamp ``column`` (NULL when the column is)."""

    def __init__(self, column: str, schedule: Schedule) -> None:
        super().__init__(output_field=FloatField())
        self.column = column
        self.schedule = schedule
        tz = schedule.tz
        self.local_date = TruncDate(column, tzinfo=tz)
        self.hour = ExtractHour(column, tzinfo=tz)
        self.minute = ExtractMinute(column, tzinfo=tz)
        self.second = ExtractSecond(column, tzinfo=tz)

    @property
    def identity(self) -> tuple[Any, ...]:
        # Expressions compare and hash by their constructor arguments; a Schedule holds a
        # dict, so it is described by its plain values instead.
        schedule = self.schedule
        return (
            type(self),
            self.column,
            schedule.tz.key,
            tuple(sorted(schedule.days.items())),
            tuple(sorted(schedule.holidays)),
        )

    def get_source_expressions(self) -> list[Any]:
        return [self.local_date, self.hour, self.minute, self.second]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.local_date, self.hour, self.minute, self.second = exprs

    def _day_intervals(self) -> list[list[tuple[int, int]]]:
        days: list[list[tuple[int, int]]] = []
        for weekday in range(7):
            spans = []
            for opens, closes in self.schedule.days.get(weekday, ()):
                start = opens.hour * 3600 + opens.minute * 60 + opens.second
                end = _DAY if closes is None else closes.hour * 3600 + closes.minute * 60
                if end > start:
                    spans.append((start, end))
            days.append(spans)
        return days

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        date_sql, date_params = compiler.compile(self.local_date)
        parts = [compiler.compile(e) for e in (self.hour, self.minute, self.second)]
        postgres = connection.vendor == "postgresql"
        if postgres:
            n_sql = f"(({date_sql}) - DATE '{_ORIGIN.isoformat()}')"
            s_sql = f"(({parts[0][0]}) * 3600 + ({parts[1][0]}) * 60 + FLOOR({parts[2][0]}))"
            least, greatest = "LEAST", "GREATEST"
        else:
            n_sql = f"CAST(julianday({date_sql}) - julianday('{_ORIGIN.isoformat()}') AS INTEGER)"
            s_sql = f"(({parts[0][0]}) * 3600 + ({parts[1][0]}) * 60 + ({parts[2][0]}))"
            least, greatest = "MIN", "MAX"
        s_params = [*parts[0][1], *parts[1][1], *parts[2][1]]

        days = self._day_intervals()
        totals = [sum(end - start for start, end in spans) for spans in days]
        weekly = sum(totals)

        def open_part(weekday: int) -> str:
            terms = [
                f"{least}({greatest}({{s}} - {start}, 0), {end - start})"
                for start, end in days[weekday]
            ]
            return " + ".join(terms) if terms else "0"

        weekday_sql = "({n} - 7 * ({n} / 7))"
        cases = " ".join(
            f"WHEN {weekday} THEN {sum(totals[:weekday])} + {open_part(weekday)}"
            for weekday in range(7)
        )
        sql = f"(({{n}} / 7) * {weekly} + CASE {weekday_sql} {cases} ELSE 0 END"
        for holiday in sorted(self.schedule.holidays):
            number = (holiday - _ORIGIN).days
            weekday = holiday.weekday()
            if number < 0 or not totals[weekday]:
                continue
            sql += (
                f" - CASE WHEN {{n}} > {number} THEN {totals[weekday]}"
                f" WHEN {{n}} = {number} THEN {open_part(weekday)} ELSE 0 END"
            )
        sql += ")"
        # Expand the placeholders, each time with its own copy of the parameters in order.
        out: list[str] = []
        params: list[Any] = []
        for piece in re.split(r"(\{n\}|\{s\})", sql):
            if piece == "{n}":
                out.append(n_sql)
                params.extend(date_params)
            elif piece == "{s}":
                out.append(s_sql)
                params.extend(s_params)
            else:
                out.append(piece)
        return "".join(out), params


def calendar_seconds(start: str, end: str) -> Any:
    return EpochSeconds(end) - EpochSeconds(start)


def business_seconds(start: str, end: str, schedule: Schedule) -> Any:
    return OpenSecondsBefore(end, schedule) - OpenSecondsBefore(start, schedule)


# --- Percentiles --------------------------------------------------------------------------


@dataclass
class Stats:
    median: float | None = None
    p90: float | None = None
    average: float | None = None
    count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": _round(self.median),
            "p90": _round(self.p90),
            "average": _round(self.average),
            "count": self.count,
        }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def duration_stats(
    qs: QuerySet[Any], measures: dict[str, Any], group: Any = None
) -> dict[Any, dict[str, Stats]]:
    """Median, p90, average and count of each measure (an expression over ``qs``'s rows),
    per value of ``group`` (an expression; None: one group, keyed None). One query."""
    if not measures:
        return {}
    if connection.vendor == "postgresql":
        aggregates: dict[str, Any] = {}
        for index, expression in enumerate(measures.values()):
            aggregates[f"m{index}_p50"] = PercentileCont(expression, 0.5)
            aggregates[f"m{index}_p90"] = PercentileCont(expression, 0.9)
            aggregates[f"m{index}_avg"] = Avg(expression, output_field=FloatField())
            aggregates[f"m{index}_n"] = Count(expression)
        if group is None:
            rows = [{"rg": None, **qs.order_by().aggregate(**aggregates)}]
        else:
            rows = list(qs.order_by().values(rg=group).annotate(**aggregates))
        result: dict[Any, dict[str, Stats]] = {}
        for row in rows:
            result[row["rg"]] = {
                name: Stats(
                    median=row[f"m{index}_p50"],
                    p90=row[f"m{index}_p90"],
                    average=row[f"m{index}_avg"],
                    count=row[f"m{index}_n"] or 0,
                )
                for index, name in enumerate(measures)
            }
        return result
    return _duration_stats_windowed(qs, measures, group)


def _percentile_sql(column: str, rank: str, count: str, p: float) -> str:
    position = f"(({count} - 1) * {p!r})"
    below = f"CAST({position} AS INTEGER)"
    fraction = f"({position} - {below})"
    return (
        f"SUM(CASE WHEN {column} IS NULL THEN NULL"
        f" WHEN {rank} = {below} THEN {column} * (1 - {fraction})"
        f" WHEN {rank} = {below} + 1 THEN {column} * {fraction} END)"
    )


def _duration_stats_windowed(
    qs: QuerySet[Any], measures: dict[str, Any], group: Any
) -> dict[Any, dict[str, Stats]]:
    """The SQLite form of ``duration_stats``: percentile_cont by window functions."""
    annotations = {f"rd{index}": expr for index, expr in enumerate(measures.values())}
    inner = (
        qs.order_by()
        .annotate(rg=group if group is not None else Value(0), **annotations)
        .values("rg", *annotations)
    )
    inner_sql, params = inner.query.sql_with_params()
    windows, selects = [], []
    for index in range(len(measures)):
        column = f"rd{index}"
        windows.append(
            f"ROW_NUMBER() OVER (PARTITION BY rg ORDER BY {column} IS NULL, {column}) - 1"
            f" AS ri{index}, COUNT({column}) OVER (PARTITION BY rg) AS rn{index}"
        )
        selects.append(
            f"{_percentile_sql(column, f'ri{index}', f'rn{index}', 0.5)},"
            f" {_percentile_sql(column, f'ri{index}', f'rn{index}', 0.9)},"
            f" AVG({column}), COUNT({column})"
        )
    # Only our own column names and float literals are written into the text; every value
    # from the request stays a parameter of the inner (ORM-compiled) query.
    sql = (
        f"SELECT rg, {', '.join(selects)} FROM ("  # noqa: S608
        f"SELECT rg, {', '.join(annotations)}, {', '.join(windows)} FROM ({inner_sql}) v"
        f") r GROUP BY rg"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    result: dict[Any, dict[str, Stats]] = {}
    for row in rows:
        key = None if group is None else row[0]
        result[key] = {
            name: Stats(
                median=row[1 + 4 * index],
                p90=row[2 + 4 * index],
                average=row[3 + 4 * index],
                count=row[4 + 4 * index] or 0,
            )
            for index, name in enumerate(measures)
        }
    return result


def percentiles(values_qs: QuerySet[Any], expression: Any) -> Stats:
    """Stats of one expression over a queryset, in one query."""
    return duration_stats(values_qs, {"x": expression}).get(None, {}).get("x", Stats())


# --- SLA ------------------------------------------------------------------------------------


def _sla_aggregates(*, within: Q | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Conditional counts of met / in progress / with a target, per SLA target, among the
    rows that also match ``within``."""
    now = now or timezone.now()
    within = within if within is not None else Q()
    out: dict[str, Any] = {}
    for target, done, due in (
        ("first_response", "first_response_at", "first_response_due_at"),
        ("resolution", "resolved_at", "sla_due_at"),
    ):
        applies = within & Q(**{f"sla__{target}_minutes__isnull": False})
        not_breached = Q(**{f"sla__{target}_breached_at__isnull": True})
        met = (
            applies
            & not_breached
            & Q(**{f"{done}__isnull": False})
            & (Q(**{f"{due}__isnull": True}) | Q(**{f"{done}__lte": F(due)}))
        )
        running = (
            applies
            & not_breached
            & Q(**{f"{done}__isnull": True})
            & (Q(**{f"{due}__isnull": True}) | Q(**{f"{due}__gte": now}))
        )
        out[f"{target}_applies"] = Count("pk", filter=applies)
        out[f"{target}_met"] = Count("pk", filter=met)
        out[f"{target}_running"] = Count("pk", filter=running)
    return out


def _sla_block(row: dict[str, Any]) -> dict[str, Any]:
    block = {}
    for target in ("first_response", "resolution"):
        applies = row.get(f"{target}_applies") or 0
        met = row.get(f"{target}_met") or 0
        running = row.get(f"{target}_running") or 0
        breached = applies - met - running
        block[target] = {
            "met": met,
            "breached": breached,
            "in_progress": running,
            "compliance": _percent(met, met + breached),
        }
    return block


def _sla_compliance_overall(block: dict[str, Any]) -> float | None:
    met = sum(block[t]["met"] for t in block)
    breached = sum(block[t]["breached"] for t in block)
    return _percent(met, met + breached)


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 2)


def _public_replies() -> Q:
    return Q(author_type=AuthorType.AGENT, is_internal=False)


def _replies_subquery() -> Any:
    counted = (
        Comment.objects.filter(_public_replies(), ticket=OuterRef("pk"))
        .order_by()
        .values("ticket")
        .annotate(c=Count("pk"))
        .values("c")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _reopen_events(workspace: Workspace, tickets: QuerySet[Ticket]) -> QuerySet[TicketEvent]:
    was_done = Q()
    for status in DONE_STATUSES:
        was_done |= Q(old_value=str(status))
    now_active = Q()
    for status in ACTIVE_STATUSES:
        now_active |= Q(new_value=str(status))
    return (
        TicketEvent.objects.for_workspace(workspace)
        .filter(kind=TicketEventKind.FIELD_CHANGED, field="status")
        .filter(was_done, now_active, ticket__in=tickets.values("pk"))
        .order_by()
    )


def _duration_measures(
    start: str, end: str, schedule: Schedule | None, *, business: bool = True
) -> dict[str, Any]:
    measures = {"calendar": calendar_seconds(start, end)}
    if business and schedule is not None:
        measures["business"] = business_seconds(start, end, schedule)
    return measures


# --- Reports ------------------------------------------------------------------------------


def overview(
    workspace: Workspace,
    period: Period,
    filters: Filters,
    *,
    schedule: Schedule | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The headline figures of the period. Queries: created/backlog/SLA (1), resolved with
    replies (1), reopened (1), first response times (1), resolution times (1); the caller
    reads the schedule (``report_schedule``, 3 queries)."""
    tickets = report_tickets(workspace, filters)
    end_at = period.end_at
    head = tickets.filter(created_at__lt=end_at).aggregate(
        created=Count("pk", filter=_in("created_at", period)),
        backlog=Count("pk", filter=Q(resolved_at__isnull=True) | Q(resolved_at__gte=end_at)),
        **_sla_aggregates(within=_in("created_at", period), now=now),
    )
    # The replies subquery inlined in both aggregates (Django refuses an aggregate over an
    # annotation holding one); the database evaluates it once per resolved ticket each.
    replies = _replies_subquery()
    resolved = tickets.filter(_in("resolved_at", period)).aggregate(
        resolved=Count("pk"),
        replies=Sum(replies),
        one_touch=Sum(Case(When(Exact(replies, 1), then=Value(1)), default=Value(0))),
    )
    reopened = (
        _reopen_events(workspace, tickets)
        .filter(_in("created_at", period))
        .aggregate(n=Count("ticket", distinct=True))["n"]
    )
    first = duration_stats(
        tickets.filter(_in("first_response_at", period), first_response_at__gte=F("created_at")),
        _duration_measures("created_at", "first_response_at", schedule),
    ).get(None, {})
    resolution = duration_stats(
        tickets.filter(_in("resolved_at", period), resolved_at__gte=F("created_at")),
        _duration_measures("created_at", "resolved_at", schedule),
    ).get(None, {})
    sla = _sla_block(head)
    resolved_count = resolved["resolved"] or 0

    def stats(found: dict[str, Stats], name: str) -> dict[str, Any] | None:
        if name == "business" and schedule is None:
            return None
        return found.get(name, Stats()).as_dict()

    return {
        **period.as_dict(),
        "created": head["created"],
        "resolved": resolved_count,
        "reopened": reopened,
        "backlog": head["backlog"],
        "first_response": stats(first, "calendar"),
        "first_response_business": stats(first, "business"),
        "resolution": stats(resolution, "calendar"),
        "resolution_business": stats(resolution, "business"),
        "replies_per_ticket": (
            round((resolved["replies"] or 0) / resolved_count, 2) if resolved_count else None
        ),
        "one_touch_rate": _percent(resolved["one_touch"], resolved_count),
        "sla": sla,
        "sla_compliance": _sla_compliance_overall(sla),
    }


def buckets(period: Period, interval: str) -> list[date]:
    """The first local date of each bucket overlapping the period (a week starts Monday)."""
    if interval == "day":
        return [period.start + timedelta(days=n) for n in range(period.days)]
    if interval == "week":
        first = period.start - timedelta(days=period.start.weekday())
        out = []
        while first <= period.end:
            out.append(first)
            first += timedelta(days=7)
        return out
    if interval == "month":
        first = period.start.replace(day=1)
        out = []
        while first <= period.end:
            out.append(first)
            first = (first + timedelta(days=32)).replace(day=1)
        return out
    raise ValueError(f"Unknown interval: {interval}")


def _bucket_of(column: str, interval: str, tz: ZoneInfo) -> Any:
    if interval == "day":
        return TruncDate(column, tzinfo=tz)
    from django.db.models import DateField

    return Trunc(column, interval, output_field=DateField(), tzinfo=tz)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _counts_by_bucket(qs: QuerySet[Any], bucket: Any, count: Any) -> dict[date, int]:
    rows = qs.order_by().values(b=bucket).annotate(n=count).values_list("b", "n")
    return {_as_date(b): n for b, n in rows if b is not None}


def timeseries(
    workspace: Workspace,
    period: Period,
    filters: Filters,
    *,
    metric: str,
    interval: str,
) -> list[dict[str, Any]]:
    """One value per bucket (``buckets``), zero-filled for counts, null for durations of
    an empty bucket. One query per metric; backlog two."""
    if metric not in METRICS:
        raise ValueError(f"Unknown metric: {metric}")
    tz = period.tz
    tickets = report_tickets(workspace, filters)
    keys = buckets(period, interval)
    values: dict[date, Any]
    if metric == "created":
        values = _counts_by_bucket(
            tickets.filter(_in("created_at", period)),
            _bucket_of("created_at", interval, tz),
            Count("pk"),
        )
    elif metric == "resolved":
        values = _counts_by_bucket(
            tickets.filter(_in("resolved_at", period)),
            _bucket_of("resolved_at", interval, tz),
            Count("pk"),
        )
    elif metric == "reopened":
        values = _counts_by_bucket(
            _reopen_events(workspace, tickets).filter(_in("created_at", period)),
            _bucket_of("created_at", interval, tz),
            Count("ticket", distinct=True),
        )
    elif metric == "backlog":
        start_at = period.start_at
        opening = (
            tickets.filter(created_at__lt=start_at)
            .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start_at))
            .count()
        )
        # Per bucket: tickets created minus tickets resolved in it (resolved_at is only set
        # on tickets that are resolved now). Both in one grouped query over a UNION would
        # save a query; two small grouped queries read simpler.
        created = _counts_by_bucket(
            tickets.filter(_in("created_at", period)),
            _bucket_of("created_at", interval, tz),
            Count("pk"),
        )
        done = _counts_by_bucket(
            tickets.filter(_in("resolved_at", period)),
            _bucket_of("resolved_at", interval, tz),
            Count("pk"),
        )
        values, running = {}, opening
        for key in keys:
            running += created.get(key, 0) - done.get(key, 0)
            values[key] = running
        return [{"bucket": key, "value": values[key]} for key in keys]
    else:
        kind, stat = metric.rsplit("_", 1)
        column = "first_response_at" if kind == "first_response" else "resolved_at"
        grouped = duration_stats(
            tickets.filter(_in(column, period), **{f"{column}__gte": F("created_at")}),
            {"calendar": calendar_seconds("created_at", column)},
            group=_bucket_of(column, interval, tz),
        )
        values = {}
        for key, found in grouped.items():
            if key is None:
                continue
            chosen = found["calendar"].median if stat == "median" else found["calendar"].p90
            values[_as_date(key)] = _round(chosen)
        return [{"bucket": key, "value": values.get(key)} for key in keys]
    return [{"bucket": key, "value": values.get(key, 0)} for key in keys]


def heatmap(workspace: Workspace, period: Period, filters: Filters) -> list[list[int]]:
    """Tickets created per local weekday (Monday first) by hour: 7 rows of 24. One query."""
    tz = period.tz
    rows = (
        report_tickets(workspace, filters)
        .filter(_in("created_at", period))
        .values(
            wd=ExtractIsoWeekDay("created_at", tzinfo=tz), hr=ExtractHour("created_at", tzinfo=tz)
        )
        .annotate(n=Count("pk"))
        .values_list("wd", "hr", "n")
    )
    grid = [[0] * 24 for _ in range(7)]
    for weekday, hour, count in rows:
        grid[int(weekday) - 1][int(hour)] = count
    return grid


def _table(
    workspace: Workspace,
    period: Period,
    filters: Filters,
    *,
    group: str,
    replies_group: str,
    subjects: Iterable[tuple[int, str]],
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Shared by the agent and team tables: four grouped queries."""
    tickets = report_tickets(workspace, filters)
    sla = _sla_aggregates(now=now)
    created = {
        row["g"]: row
        for row in tickets.filter(_in("created_at", period))
        .values(g=F(group))
        .annotate(tickets=Count("pk"), **sla)
    }
    resolved = dict(
        tickets.filter(_in("resolved_at", period))
        .values(g=F(group))
        .annotate(n=Count("pk"))
        .values_list("g", "n")
    )
    replies = dict(
        Comment.objects.for_workspace(workspace)
        .filter(_public_replies(), _in("created_at", period), ticket__in=tickets.values("pk"))
        .order_by()
        .values(g=F(replies_group))
        .annotate(n=Count("pk"))
        .values_list("g", "n")
    )
    first = duration_stats(
        tickets.filter(_in("first_response_at", period), first_response_at__gte=F("created_at")),
        {"calendar": calendar_seconds("created_at", "first_response_at")},
        group=F(group),
    )
    out = []
    for key, name in subjects:
        row = created.get(key, {})
        block = _sla_block(row)
        median = first.get(key, {}).get("calendar")
        out.append(
            {
                "id": key,
                "name": name,
                "tickets": row.get("tickets", 0),
                "resolved": resolved.get(key, 0),
                "replies": replies.get(key, 0),
                "median_first_response": _round(median.median) if median else None,
                "sla_compliance": _sla_compliance_overall(block),
            }
        )
    return out


def agent_table(
    workspace: Workspace, period: Period, filters: Filters, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per active agent (or the filtered one): tickets assigned among those created in the
    period, resolved, public replies written, median first response of their tickets, SLA
    compliance. Five queries."""
    agents = Agent.objects.for_workspace(workspace).select_related("user")
    if filters.agent_id is not None:
        agents = agents.filter(pk=filters.agent_id)
    else:
        agents = agents.filter(is_active=True)
    subjects = sorted(((a.pk, a.name) for a in agents), key=lambda s: (s[1].lower(), s[0]))
    return _table(
        workspace,
        period,
        filters,
        group="assignee_id",
        replies_group="author_agent_id",
        subjects=subjects,
        now=now,
    )


def team_table(
    workspace: Workspace, period: Period, filters: Filters, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per team (or the filtered one): tickets created, resolved, public replies on the
    team's tickets, median first response, SLA compliance. Five queries."""
    teams = Team.objects.for_workspace(workspace)
    if filters.team_id is not None:
        teams = teams.filter(pk=filters.team_id)
    subjects = [(t.pk, t.name) for t in teams.order_by("name", "id")]
    return _table(
        workspace,
        period,
        filters,
        group="team_id",
        replies_group="ticket__team_id",
        subjects=subjects,
        now=now,
    )
