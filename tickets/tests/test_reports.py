"""tickets.reports on the hand-built week of ``analytics_data`` (answers worked out there),
on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation.business_hours import business_seconds_between
from enque.tests.factories import TicketFactory
from tickets import reports
from tickets.models import Ticket
from tickets.reports import Filters, Period
from tickets.tests.analytics_data import (
    EXPECTED,
    NOW,
    NY,
    Week,
    all_days,
    build_noise,
    build_week,
    local,
    period,
)
from workspaces.models import Agent, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def week(workspace_a: Workspace, workspace_b: Workspace, alice: Agent, bob: Agent) -> Week:
    built = build_week(workspace_a, alice, bob)
    build_noise(workspace_b)
    return built


def overview(week: Week, filters: Filters | None = None, **kwargs: Any) -> dict[str, Any]:
    return reports.overview(
        week.workspace,
        kwargs.pop("period", period()),
        filters or Filters(),
        schedule=reports.report_schedule(week.workspace),
        now=NOW,
        **kwargs,
    )


def test_overview_matches_the_hand_worked_answers(week: Week) -> None:
    result = overview(week)
    for key, value in EXPECTED.items():
        assert result[key] == value, key
    assert result["start"] == date(2026, 1, 5)
    assert result["timezone"] == "America/New_York"


def test_a_ticket_created_at_2330_local_counts_on_that_local_day(week: Week) -> None:
    # T3 is Monday 04:30 in UTC, outside the period there; Sunday 23:30 in New York.
    assert week.tickets["T3"].created_at.astimezone(UTC).date() == date(2026, 1, 12)
    sunday = Period(start=date(2026, 1, 11), end=date(2026, 1, 11), tz=NY)
    assert reports.overview(week.workspace, sunday, Filters(), now=NOW)["created"] == 1
    monday = Period(start=date(2026, 1, 12), end=date(2026, 1, 12), tz=NY)
    assert reports.overview(week.workspace, monday, Filters(), now=NOW)["created"] == 0
    # Read in UTC, the same instant is Monday's.
    utc_monday = Period(start=date(2026, 1, 12), end=date(2026, 1, 12), tz=ZoneInfo("UTC"))
    assert reports.overview(week.workspace, utc_monday, Filters(), now=NOW)["created"] == 1


def test_daily_series(week: Week) -> None:
    def series(metric: str) -> list[Any]:
        points = reports.timeseries(
            week.workspace, period(), Filters(), metric=metric, interval="day"
        )
        assert [p["bucket"] for p in points] == all_days()
        return [p["value"] for p in points]

    #                               Mon Tue Wed Thu Fri Sat Sun
    assert series("created") == [2, 1, 0, 0, 0, 0, 1]
    assert series("resolved") == [1, 1, 1, 0, 0, 0, 0]
    assert series("reopened") == [0, 0, 0, 1, 0, 0, 0]
    # Opening backlog T4 T5; then +T1 +T2 -T1, +T6 -T5, -T2, ..., +T3.
    assert series("backlog") == [3, 3, 2, 2, 2, 2, 3]
    # Monday: T1 alone; Tuesday: T6; Wednesday: T2.
    assert series("first_response_median") == [1800.0, 600.0, 151200.0, None, None, None, None]
    assert series("resolution_median") == [7200.0, 430200.0, 154800.0, None, None, None, None]
    assert series("resolution_p90") == [7200.0, 430200.0, 154800.0, None, None, None, None]


def test_weekly_and_monthly_series(week: Week) -> None:
    weekly = reports.timeseries(
        week.workspace, period(), Filters(), metric="created", interval="week"
    )
    assert weekly == [{"bucket": date(2026, 1, 5), "value": 4}]
    two_weeks = Period(start=date(2025, 12, 29), end=date(2026, 1, 11), tz=NY)
    weekly = reports.timeseries(
        week.workspace, two_weeks, Filters(), metric="created", interval="week"
    )
    # T4 and T5 were created on Thursday 1 January.
    assert weekly == [
        {"bucket": date(2025, 12, 29), "value": 2},
        {"bucket": date(2026, 1, 5), "value": 4},
    ]
    monthly = reports.timeseries(
        week.workspace, two_weeks, Filters(), metric="first_response_median", interval="month"
    )
    # December: nothing; January: T5 3600, T1 1800, T6 600, T2 151200 -> (1800 + 3600) / 2.
    assert monthly == [
        {"bucket": date(2025, 12, 1), "value": None},
        {"bucket": date(2026, 1, 1), "value": 2700.0},
    ]


def test_heatmap_uses_local_weekday_and_hour(week: Week) -> None:
    grid = reports.heatmap(week.workspace, period(), Filters())
    cells = {(d, h): n for d, row in enumerate(grid) for h, n in enumerate(row) if n}
    assert cells == {(0, 10): 1, (0, 16): 1, (1, 9): 1, (6, 23): 1}


def test_agent_table(week: Week) -> None:
    rows = reports.agent_table(week.workspace, period(), Filters(), now=NOW)
    by_name = {row["name"]: row for row in rows}
    assert [row["name"] for row in rows] == ["Alice Admin", "Bob Agent", "Olivia Owner"]
    assert by_name["Alice Admin"] == {
        "id": week.alice.pk,
        "name": "Alice Admin",
        "tickets": 2,  # T1 T6 (T7 merged, T8 deleted)
        "resolved": 2,  # T1 T5
        "replies": 2,  # on T1 and T6 (T5's was on 1 January)
        "median_first_response": 1200.0,  # T1 1800, T6 600
        "sla_compliance": 75.0,  # T1 2 met; T6 first response met, resolution breached
    }
    assert by_name["Bob Agent"] == {
        "id": week.bob.pk,
        "name": "Bob Agent",
        "tickets": 1,
        "resolved": 1,
        "replies": 2,  # the internal note is not a reply
        "median_first_response": 151200.0,
        "sla_compliance": 0.0,
    }
    olivia = by_name["Olivia Owner"]
    assert (olivia["tickets"], olivia["median_first_response"], olivia["sla_compliance"]) == (
        0,
        None,
        None,
    )


def test_team_table(week: Week) -> None:
    rows = reports.team_table(week.workspace, period(), Filters(), now=NOW)
    assert rows == [
        {
            "id": week.billing.pk,
            "name": "Billing",
            "tickets": 1,
            "resolved": 0,
            "replies": 1,
            "median_first_response": 600.0,
            "sla_compliance": 50.0,
        },
        {
            "id": week.support.pk,
            "name": "Support",
            "tickets": 2,
            "resolved": 2,
            "replies": 3,
            "median_first_response": 76500.0,  # (1800 + 151200) / 2
            "sla_compliance": 50.0,
        },
    ]


@pytest.mark.parametrize(
    ("filters", "created", "resolved"),
    [
        (lambda w: Filters(team_id=w.support.pk), 2, 2),
        (lambda w: Filters(agent_id=w.alice.pk), 2, 2),
        (lambda w: Filters(tag_id=w.vip_tag_id), 1, 1),
        (lambda w: Filters(channel="email"), 1, 1),
        (lambda w: Filters(priority="high"), 1, 1),
        (lambda w: Filters(team_id=w.billing.pk, agent_id=w.bob.pk), 0, 0),
    ],
)
def test_filters_narrow_every_figure(week: Week, filters: Any, created: int, resolved: int) -> None:
    result = overview(week, filters(week))
    assert (result["created"], result["resolved"]) == (created, resolved)


def test_merged_and_deleted_tickets_never_count(week: Week) -> None:
    before = overview(week)
    # Another merged source and another deleted ticket, in the middle of the period.
    for extra in ({"merged_into": week.tickets["T1"]}, {"deleted_at": local(8, 12)}):
        ticket = TicketFactory(workspace=week.workspace, **extra)
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=local(8, 10), first_response_at=local(8, 11), resolved_at=local(8, 12)
        )
    assert overview(week) == before


def test_another_workspace_never_changes_a_number(
    workspace_a: Workspace, workspace_b: Workspace, alice: Agent, bob: Agent
) -> None:
    week = build_week(workspace_a, alice, bob)
    alone = overview(week)
    tables = (
        reports.agent_table(workspace_a, period(), Filters(), now=NOW),
        reports.team_table(workspace_a, period(), Filters(), now=NOW),
        reports.heatmap(workspace_a, period(), Filters()),
    )
    build_noise(workspace_b)
    assert overview(week) == alone
    assert (
        reports.agent_table(workspace_a, period(), Filters(), now=NOW),
        reports.team_table(workspace_a, period(), Filters(), now=NOW),
        reports.heatmap(workspace_a, period(), Filters()),
    ) == tables


def test_business_seconds_in_sql_agree_with_the_sla_arithmetic(week: Week) -> None:
    # Pairs of instants across nights, the weekend, the holiday and the period's edges.
    schedule = reports.report_schedule(week.workspace)
    assert schedule is not None
    instants = [
        local(1, 8),
        local(2, 16, 45),
        local(3, 12),
        local(5, 9),
        local(5, 23, 59),
        local(6, 12),
        local(7, 8, 59),
        local(7, 17),
        local(9, 10, 15),
        local(12, 4),
    ]
    expected = {}
    for offset, start in enumerate(instants):
        ticket = TicketFactory(workspace=week.workspace, deleted_at=local(1, 1))
        end = instants[(offset + 3) % len(instants)]
        if end < start:
            start, end = end, start
        Ticket.objects.filter(pk=ticket.pk).update(created_at=start, resolved_at=end)
        expected[ticket.pk] = business_seconds_between(start, end, schedule)
    rows = (
        Ticket.objects.filter(pk__in=expected)
        .annotate(open_seconds=reports.business_seconds("created_at", "resolved_at", schedule))
        .values_list("pk", "open_seconds")
    )
    assert {pk: int(seconds) for pk, seconds in rows} == expected


@pytest.mark.parametrize(
    ("durations", "median", "p90", "average"),
    [
        ([100], 100.0, 100.0, 100.0),
        ([100, 400], 250.0, 370.0, 250.0),
        ([300, 100, 200], 200.0, 280.0, 200.0),
        ([40, 10, 30, 20], 25.0, 37.0, 25.0),
        ([5, 1, 4, 2, 3], 3.0, 4.6, 3.0),
    ],
)
def test_percentiles_for_odd_and_even_counts(
    workspace_a: Workspace, durations: list[int], median: float, p90: float, average: float
) -> None:
    created = datetime(2026, 3, 1, tzinfo=UTC)
    for seconds in durations:
        ticket = TicketFactory(workspace=workspace_a)
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=created, resolved_at=created + timedelta(seconds=seconds)
        )
    stats = reports.percentiles(
        Ticket.objects.filter(workspace=workspace_a),
        reports.calendar_seconds("created_at", "resolved_at"),
    )
    assert stats.count == len(durations)
    assert stats.median == pytest.approx(median)
    assert stats.p90 == pytest.approx(p90)
    assert stats.average == pytest.approx(average)


def test_percentiles_ignore_missing_values_and_empty_sets(workspace_a: Workspace) -> None:
    TicketFactory(workspace=workspace_a)  # never resolved: no duration
    stats = reports.percentiles(
        Ticket.objects.filter(workspace=workspace_a),
        reports.calendar_seconds("created_at", "resolved_at"),
    )
    assert (stats.median, stats.p90, stats.average, stats.count) == (None, None, None, 0)


def test_query_counts_do_not_grow_with_the_data(week: Week) -> None:
    def counts() -> list[int]:
        out = []
        for call in (
            lambda: overview(week),
            lambda: reports.timeseries(
                week.workspace, period(), Filters(), metric="backlog", interval="day"
            ),
            lambda: reports.timeseries(
                week.workspace, period(), Filters(), metric="resolution_p90", interval="week"
            ),
            lambda: reports.heatmap(week.workspace, period(), Filters()),
            lambda: reports.agent_table(week.workspace, period(), Filters(), now=NOW),
            lambda: reports.team_table(week.workspace, period(), Filters(), now=NOW),
        ):
            with CaptureQueriesContext(connection) as ctx:
                call()
            out.append(len(ctx.captured_queries))
        return out

    before = counts()
    # overview: schedule (3: hours, slots, holidays) + created/backlog/SLA, resolved,
    # reopened, first response, resolution; backlog series: opening, created, resolved;
    # one query for a percentile series and for the heat map; tables: the agents or
    # teams, then created/SLA, resolved, replies, first response.
    assert before == [8, 3, 1, 1, 5, 5]
    # Three times as many tickets, replies, SLA clocks and reopenings.
    for n in range(12):
        ticket = TicketFactory(
            workspace=week.workspace,
            assignee=week.bob if n % 2 else week.alice,
            team=week.support if n % 3 else week.billing,
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=local(5 + n % 7, 9 + n % 8),
            first_response_at=local(5 + n % 7, 10 + n % 7),
            resolved_at=local(5 + n % 7, 18),
        )
        week.tickets["T6"].events.first().__class__.objects.create(
            workspace=week.workspace,
            ticket=ticket,
            kind="field_changed",
            actor_type="agent",
            field="status",
            old_value="closed",
            new_value="open",
        )
    assert counts() == before
