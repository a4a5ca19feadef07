"""The dashboard page and its CSV downloads, on the hand-built week of
``tickets.tests.analytics_data`` (its answers are worked out there)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enque.tests.factories import TeamFactory
from tickets.tests.analytics_data import Week, build_noise, build_week
from workspaces.models import Agent, Workspace

pytestmark = pytest.mark.django_db

PERIOD = {"start": "2026-01-05", "end": "2026-01-11"}
SignedIn = Callable[[Agent], Client]


@pytest.fixture
def week(workspace_a: Workspace, workspace_b: Workspace, alice: Agent, bob: Agent) -> Week:
    built = build_week(workspace_a, alice, bob)
    build_noise(workspace_b)
    return built


def tile(html: str, key: str) -> str:
    match = re.search(
        rf'data-tile="{key}"><span class="tile-label">[^<]*</span>'
        r'<strong class="tile-value">([^<]*)</strong>',
        html,
    )
    assert match, key
    return match.group(1)


def test_the_dashboard_shows_the_weeks_figures(week: Week, signed_in: SignedIn) -> None:
    response = signed_in(week.alice).get(reverse("ui:dashboard"), PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert (tile(html, "created"), tile(html, "resolved"), tile(html, "backlog")) == ("4", "3", "3")
    assert tile(html, "first_response") == "30 min"
    assert tile(html, "resolution") == "1 d 19 h"  # 154800 s
    assert tile(html, "one_touch") == "66.67 %"
    assert tile(html, "reopened") == "1"
    # In business hours: 1800 s and 10800 s.
    assert "median first response 30 min, median resolution 3 h" in html
    # The chart and its numbers: Monday 2, Tuesday 1, ... Sunday 1.
    assert 'data-chart="created"' in html
    assert "<figcaption>Tickets created, daily, Jan 5 \u2013 Jan 11, 2026.</figcaption>" in html
    cells = re.findall(
        r'<time datetime="(2026-01-\d\d)">[^<]*</time></th><td class="num-col">(\d+)<', html
    )
    assert cells == [
        ("2026-01-05", "2"),
        ("2026-01-06", "1"),
        ("2026-01-07", "0"),
        ("2026-01-08", "0"),
        ("2026-01-09", "0"),
        ("2026-01-10", "0"),
        ("2026-01-11", "1"),
    ]
    assert "<title>Sunday 23:00: 1</title>" in html  # T3, in New York time
    assert 'id="agent-table"' in html and 'id="team-table"' in html
    assert 'href="/dashboard"' in html and 'aria-current="page">Dashboard' in html


def test_agents_see_no_agent_or_team_table(week: Week, signed_in: SignedIn) -> None:
    html = signed_in(week.bob).get(reverse("ui:dashboard"), PERIOD).content.decode()
    assert tile(html, "created") == "4"
    assert 'id="agent-table"' not in html and 'id="team-table"' not in html
    assert "/dashboard/agents.csv" not in html
    response = signed_in(week.bob).get(reverse("ui:dashboard_csv_agents"), PERIOD)
    assert response.status_code == 403


def test_a_duration_metric_by_week(week: Week, signed_in: SignedIn) -> None:
    html = (
        signed_in(week.alice)
        .get(
            reverse("ui:dashboard"),
            {**PERIOD, "metric": "resolution_median", "interval": "week"},
        )
        .content.decode()
    )
    assert 'data-chart="resolution_median"' in html
    assert re.search(r'datetime="2026-01-05">Jan 5</time></th><td class="num-col">1 d 19 h<', html)


def test_filters_apply_and_bad_ones_are_form_errors(
    week: Week, workspace_b: Workspace, signed_in: SignedIn
) -> None:
    client = signed_in(week.alice)
    html = client.get(
        reverse("ui:dashboard"), {**PERIOD, "team": week.support.pk, "agent": ""}
    ).content.decode()
    assert tile(html, "created") == "2"
    foreign = TeamFactory(workspace=workspace_b)
    response = client.get(reverse("ui:dashboard"), {**PERIOD, "team": foreign.pk})
    assert response.status_code == 400
    assert "No team with this id in the workspace." in response.content.decode()
    response = client.get(reverse("ui:dashboard"), {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400
    assert "The start is after the end." in response.content.decode()


def test_csv_downloads(week: Week, signed_in: SignedIn) -> None:
    client = signed_in(week.alice)
    response = client.get(reverse("ui:dashboard_csv_timeseries"), PERIOD)
    assert response["Content-Type"].startswith("text/csv")
    assert "enque-timeseries-2026-01-05-2026-01-11.csv" in response["Content-Disposition"]
    assert response.content.decode().splitlines()[:3] == [
        "bucket,created",
        "2026-01-05,2",
        "2026-01-06,1",
    ]
    overview = client.get(reverse("ui:dashboard_csv_overview"), PERIOD)
    assert "first_response_median,1800.0" in overview.content.decode()
    teams = client.get(reverse("ui:dashboard_csv_teams"), PERIOD).content.decode()
    assert teams.splitlines()[2].split(",")[1:5] == ["Support", "2", "2", "3"]
    assert client.get("/dashboard/secrets.csv", PERIOD).status_code == 404
    bad = client.get(reverse("ui:dashboard_csv_overview"), {"start": "soon"})
    assert bad.status_code == 400


def test_the_pages_query_count_does_not_grow(week: Week, signed_in: SignedIn) -> None:
    client = signed_in(week.alice)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("ui:dashboard"), PERIOD).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    build_noise(week.workspace)
    assert count() == before
