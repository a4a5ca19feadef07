"""/v1/analytics: the hand-built week through the API, CSV, validation, roles, tenancy."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from enque.tests.factories import AgentFactory, TagFactory, TeamFactory, UserFactory
from tickets.tests.analytics_data import Week, build_noise, build_week
from workspaces.models import Agent, AgentRole, Workspace

pytestmark = pytest.mark.django_db

PERIOD = {"start": "2026-01-05", "end": "2026-01-11"}
Client = Callable[[Agent], APIClient]


@pytest.fixture
def week(workspace_a: Workspace, workspace_b: Workspace, alice: Agent, bob: Agent) -> Week:
    built = build_week(workspace_a, alice, bob)
    build_noise(workspace_b)
    return built


def error_fields(response: Any) -> dict[str, Any]:
    return response.json()["error"].get("fields", {})


def test_overview(week: Week, client_for: Client) -> None:
    response = client_for(week.bob).get("/v1/analytics/overview", PERIOD)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["start"] == "2026-01-05"
    assert body["timezone"] == "America/New_York"
    assert (body["created"], body["resolved"], body["reopened"], body["backlog"]) == (4, 3, 1, 3)
    assert body["first_response"] == {
        "median": 1800.0,
        "p90": 121320.0,
        "average": 51200.0,
        "count": 3,
    }
    assert body["resolution_business"]["median"] == 10800.0
    assert (body["replies_per_ticket"], body["one_touch_rate"]) == (1.33, 66.67)
    # SLA in progress depends on "now": T3's and T6's due times are long past today.
    assert body["sla"]["first_response"]["met"] == 2


def test_overview_csv(week: Week, client_for: Client) -> None:
    response = client_for(week.bob).get("/v1/analytics/overview", {**PERIOD, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "enque-overview-2026-01-05-2026-01-11.csv" in response["Content-Disposition"]
    rows = dict(csv.reader(io.StringIO(response.content.decode())))
    assert rows["metric"] == "value"
    assert (rows["created"], rows["backlog"], rows["first_response_p90"]) == ("4", "3", "121320.0")
    assert rows["first_response_business_average"] == "3000.0"


def test_timeseries(week: Week, client_for: Client) -> None:
    api = client_for(week.bob)
    response = api.get("/v1/analytics/timeseries", {**PERIOD, "metric": "created"})
    assert response.status_code == 200, response.content
    points = response.json()["points"]
    assert [p["bucket"] for p in points][:2] == ["2026-01-05", "2026-01-06"]
    assert [p["value"] for p in points] == [2, 1, 0, 0, 0, 0, 1]
    response = api.get(
        "/v1/analytics/timeseries",
        {**PERIOD, "metric": "backlog", "interval": "week", "format": "csv"},
    )
    assert response.content.decode().splitlines() == ["bucket,backlog", "2026-01-05,3"]


def test_heatmap(week: Week, client_for: Client) -> None:
    response = client_for(week.bob).get("/v1/analytics/heatmap", PERIOD)
    body = response.json()
    assert body["weekdays"][0] == "Monday"
    assert body["cells"][0][10] == body["cells"][6][23] == 1
    assert sum(map(sum, body["cells"])) == 4
    assert body["max"] == 1
    lines = (
        client_for(week.bob)
        .get("/v1/analytics/heatmap", {**PERIOD, "format": "csv"})
        .content.decode()
        .splitlines()
    )
    assert lines[0].startswith("weekday,00:00,01:00")
    assert lines[7].split(",")[24] == "1"  # Sunday 23:00


def test_agent_and_team_tables_are_for_admins(week: Week, client_for: Client) -> None:
    for path in ("/v1/analytics/agents", "/v1/analytics/teams"):
        response = client_for(week.bob).get(path, PERIOD)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "admin_required"
    agents = client_for(week.alice).get("/v1/analytics/agents", PERIOD).json()["results"]
    alice = next(row for row in agents if row["id"] == week.alice.pk)
    assert (alice["tickets"], alice["resolved"], alice["replies"]) == (2, 2, 2)
    assert alice["median_first_response"] == 1200.0
    teams = client_for(week.alice).get("/v1/analytics/teams", PERIOD).json()["results"]
    assert [(t["name"], t["tickets"], t["replies"]) for t in teams] == [
        ("Billing", 1, 1),
        ("Support", 2, 3),
    ]
    text = client_for(week.alice).get("/v1/analytics/teams", {**PERIOD, "format": "csv"})
    assert text.content.decode().splitlines()[0] == (
        "id,name,tickets,resolved,replies,median_first_response,sla_compliance"
    )


def test_csv_cells_never_start_a_formula(week: Week, client_for: Client) -> None:
    TeamFactory(workspace=week.workspace, name="=HYPERLINK(1)")
    lines = (
        client_for(week.alice)
        .get("/v1/analytics/teams", {**PERIOD, "format": "csv"})
        .content.decode()
    )
    assert ",'=HYPERLINK(1)," in lines


def test_filters(week: Week, client_for: Client) -> None:
    api = client_for(week.bob)
    for params, created in (
        ({"team": week.support.pk}, 2),
        ({"agent": week.alice.pk}, 2),
        ({"tag": week.vip_tag_id}, 1),
        ({"channel": "email", "priority": "high"}, 1),
    ):
        response = api.get("/v1/analytics/overview", {**PERIOD, **params})
        assert response.status_code == 200, response.content
        assert response.json()["created"] == created, params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-02-01", "end": "2026-01-01"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"start": "0001-01-01"}, "start"),
        ({"end": "9999-12-31"}, "end"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "start"),
        ({"team": "abc"}, "team"),
        ({"agent": "0"}, "agent"),
        ({"agent": str(2**70)}, "agent"),
        ({"channel": "pigeon"}, "channel"),
        ({"priority": "whenever"}, "priority"),
        ({"format": "xml"}, "format"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_parameters_are_400(
    week: Week, client_for: Client, params: dict[str, str], field: str
) -> None:
    response = client_for(week.bob).get("/v1/analytics/overview", params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert field in error_fields(response)


def test_timeseries_parameters(week: Week, client_for: Client) -> None:
    api = client_for(week.bob)
    default = api.get("/v1/analytics/timeseries", PERIOD).json()
    assert (default["metric"], default["interval"]) == ("created", "day")
    bad = api.get("/v1/analytics/timeseries", {"metric": "happiness"})
    assert "metric" in error_fields(bad)
    bad = api.get("/v1/analytics/timeseries", {"metric": "created", "interval": "hour"})
    assert "interval" in error_fields(bad)
    # A daily series of more than 366 days is refused; the same period by week is fine.
    year_and_more = {"start": "2025-01-01", "end": "2026-01-05", "metric": "created"}
    assert "start" in error_fields(api.get("/v1/analytics/timeseries", year_and_more))
    weekly = api.get("/v1/analytics/timeseries", {**year_and_more, "interval": "week"})
    assert weekly.status_code == 200
    # And a CSV request with a bad parameter still answers the JSON envelope.
    bad = api.get("/v1/analytics/timeseries", {"metric": "nope", "format": "csv"})
    assert bad.status_code == 400
    assert bad["Content-Type"].startswith("application/json")


def test_another_workspaces_ids_are_refused(
    week: Week, workspace_b: Workspace, charlie: Agent, client_for: Client
) -> None:
    foreign = {
        "team": TeamFactory(workspace=workspace_b).pk,
        "tag": TagFactory(workspace=workspace_b).pk,
        "agent": charlie.pk,
    }
    api = client_for(week.alice)
    for name, pk in foreign.items():
        for path in ("/v1/analytics/overview", "/v1/analytics/agents"):
            response = api.get(path, {**PERIOD, name: pk})
            assert response.status_code == 400, (path, name)
            assert name in error_fields(response)


def test_another_workspace_sees_only_its_own_numbers(
    week: Week, charlie: Agent, client_for: Client
) -> None:
    body = client_for(charlie).get("/v1/analytics/overview", PERIOD).json()
    # Workspace B (UTC): its noise tickets of 5 to 11 January, each answered in a minute.
    assert (body["created"], body["resolved"], body["backlog"]) == (7, 7, 0)
    assert body["first_response"]["median"] == 60.0
    assert body["first_response_business"] is None  # B has no business hours
    names = [r["name"] for r in client_for(charlie).get("/v1/analytics/agents").json()["results"]]
    assert "Alice Admin" not in names


def test_defaults_to_the_last_30_days(week: Week, client_for: Client) -> None:
    body = client_for(week.bob).get("/v1/analytics/overview").json()
    from datetime import date

    start, end = date.fromisoformat(body["start"]), date.fromisoformat(body["end"])
    assert (end - start).days == 29


def test_light_agents_read_the_overview(week: Week, client_for: Client) -> None:
    light = AgentFactory(
        workspace=week.workspace, user=UserFactory(email="lee@a.test"), role=AgentRole.LIGHT
    )
    assert client_for(light).get("/v1/analytics/overview", PERIOD).status_code == 200
    assert client_for(light).get("/v1/analytics/agents", PERIOD).status_code == 403


def test_query_counts_are_constant(week: Week, client_for: Client) -> None:
    api = client_for(week.alice)
    paths = [
        ("/v1/analytics/overview", {}),
        ("/v1/analytics/timeseries", {"metric": "backlog"}),
        ("/v1/analytics/heatmap", {}),
        ("/v1/analytics/agents", {}),
        ("/v1/analytics/teams", {"team": week.support.pk}),
    ]

    def counts() -> list[int]:
        out = []
        for path, params in paths:
            with CaptureQueriesContext(connection) as ctx:
                assert api.get(path, {**PERIOD, **params}).status_code == 200
            out.append(len(ctx.captured_queries))
        return out

    before = counts()
    build_noise(week.workspace)  # eleven more tickets, replies and SLA clocks in A
    assert counts() == before
