"""The analytics dashboard: headline tiles, a time series, the busiest hours, the agent and
team tables (admins), with the filters of the API and CSV downloads of each part.

The figures are ``tickets.reports``'; the filters are validated by the API's own query
serializer (``tickets.api.analytics``), so the page and ``/v1/analytics`` accept and refuse
exactly the same input, and an id of another workspace is an error on the form.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from integrations.models import MailboxConnection
from tickets import reports
from tickets.api.analytics import (
    TimeseriesQuery,
    csv_text,
    heatmap_rows,
    overview_rows,
    table_rows,
    timeseries_rows,
)
from tickets.models import TicketChannel, TicketPriority
from ui.charts import bar_chart, bucket_label, format_duration, heatmap_chart
from ui.session import agent_view
from ui.views.common import Lookups, render_page
from workspaces.models import Company

METRIC_LABELS = {
    "created": "Tickets created",
    "resolved": "Tickets resolved",
    "reopened": "Tickets reopened",
    "backlog": "Backlog (open at the end of each bucket)",
    "first_response_median": "First response time, median",
    "first_response_p90": "First response time, 90th percentile",
    "resolution_median": "Resolution time, median",
    "resolution_p90": "Resolution time, 90th percentile",
}
INTERVAL_LABELS = {"day": "Daily", "week": "Weekly", "month": "Monthly"}
CSV_REPORTS = ("overview", "timeseries", "heatmap", "agents", "teams")
ADMIN_REPORTS = ("agents", "teams")
# The company picker lists this many; a bigger book of companies filters through the API.
COMPANY_CHOICES = 300
FILTER_PARAMS = (
    "start",
    "end",
    "team",
    "agent",
    "mailbox",
    "channel",
    "category",
    "tag",
    "priority",
    "company",
)


def _query(request: HttpRequest) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    # Empty form fields ("any team") are absent, not invalid.
    data = {key: value for key, value in request.GET.items() if value != ""}
    serializer = TimeseriesQuery(data=data, context={"workspace": request.workspace})
    if serializer.is_valid():
        return dict(serializer.validated_data), {}
    return None, {key: [str(m) for m in messages] for key, messages in serializer.errors.items()}


def _series(query: dict[str, Any], workspace: Any) -> list[dict[str, Any]]:
    return reports.timeseries(
        workspace,
        query["period"],
        query["filters"],
        metric=query["metric"],
        interval=query["interval"],
    )


def _tiles(overview: dict[str, Any]) -> list[dict[str, Any]]:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:g} %"

    return [
        {"key": "created", "label": "Created", "value": overview["created"]},
        {"key": "resolved", "label": "Resolved", "value": overview["resolved"]},
        {
            "key": "first_response",
            "label": "Median first response",
            "value": format_duration(overview["first_response"]["median"]),
        },
        {
            "key": "resolution",
            "label": "Median resolution",
            "value": format_duration(overview["resolution"]["median"]),
        },
        {"key": "sla", "label": "SLA compliance", "value": pct(overview["sla_compliance"])},
        {"key": "one_touch", "label": "One-touch", "value": pct(overview["one_touch_rate"])},
        {"key": "backlog", "label": "Backlog", "value": overview["backlog"]},
        {"key": "reopened", "label": "Reopened", "value": overview["reopened"]},
    ]


def _table_display(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **row,
            "median_display": format_duration(row["median_first_response"]),
            "sla_display": "—" if row["sla_compliance"] is None else f"{row['sla_compliance']:g} %",
        }
        for row in rows
    ]


@agent_view
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    workspace, agent = request.workspace, request.agent
    query, errors = _query(request)
    lookups = Lookups(request)
    values = {name: request.GET.get(name, "") for name in (*FILTER_PARAMS, "metric", "interval")}
    context: dict[str, Any] = {
        "errors": errors,
        "values": values,
        # The chart pickers' form carries the filters along.
        "filter_values": [(k, v) for k, v in values.items() if v and k in FILTER_PARAMS],
        "period": None,
        "overview": None,
        "show_tables": False,
        "metric": values["metric"],
        "interval": values["interval"],
        "metric_labels": METRIC_LABELS,
        "interval_labels": INTERVAL_LABELS,
        "channels": TicketChannel.choices,
        "priorities": TicketPriority.choices,
        "teams": lookups.teams,
        "agents": lookups.active_agents,
        "categories": lookups.categories,
        "tags": lookups.tags,
        "mailboxes": list(
            MailboxConnection.objects.for_workspace(workspace).order_by("email_address", "id")
        ),
        "companies": list(
            Company.objects.for_workspace(workspace).order_by("name", "id")[:COMPANY_CHOICES]
        ),
    }
    if query is None:
        return render_page(request, "ui/analytics/dashboard.html", context, status=400)

    period, filters = query["period"], query["filters"]
    overview = reports.overview(
        workspace, period, filters, schedule=reports.report_schedule(workspace)
    )
    points = _series(query, workspace)
    is_duration = query["metric"].startswith(("first_response", "resolution"))
    cells = reports.heatmap(workspace, period, filters)
    filter_query = {
        key: value for key, value in request.GET.items() if key in FILTER_PARAMS and value
    }
    series_query = {**filter_query, "metric": query["metric"], "interval": query["interval"]}
    csv_links = {
        report: reverse(f"ui:dashboard_csv_{report}")
        + "?"
        + urlencode(series_query if report == "timeseries" else filter_query)
        for report in CSV_REPORTS
        if agent.is_admin or report not in ADMIN_REPORTS
    }
    context.update(
        query=query,
        period=period,
        overview=overview,
        tiles=_tiles(overview),
        metric=query["metric"],
        interval=query["interval"],
        metric_label=METRIC_LABELS[query["metric"]],
        interval_label=INTERVAL_LABELS[query["interval"]],
        chart=bar_chart(
            points, interval=query["interval"], is_duration=is_duration, label=query["metric"]
        ),
        points=[
            {
                "label": bucket_label(p["bucket"], query["interval"]),
                "bucket": p["bucket"],
                "display": format_duration(p["value"]) if is_duration else p["value"],
            }
            for p in points
        ],
        heatmap=heatmap_chart(cells, reports.WEEKDAYS),
        heat_rows=list(zip(reports.WEEKDAYS, cells, strict=True)),
        hours=[f"{h:02d}" for h in range(24)],
        csv_links=csv_links,
        business=overview["first_response_business"] is not None,
        first_business=format_duration((overview["first_response_business"] or {}).get("median")),
        resolution_business=format_duration((overview["resolution_business"] or {}).get("median")),
    )
    if agent.is_admin:
        context["show_tables"] = True
        context["agent_rows"] = _table_display(reports.agent_table(workspace, period, filters))
        context["team_rows"] = _table_display(reports.team_table(workspace, period, filters))
    return render_page(request, "ui/analytics/dashboard.html", context)


@agent_view
@require_GET
def dashboard_csv(request: HttpRequest, report: str) -> HttpResponse:
    """One part of the dashboard as CSV, with the page's filters."""
    if report not in CSV_REPORTS:
        raise Http404("No such report.")
    if report in ADMIN_REPORTS and not request.agent.is_admin:
        raise PermissionDenied("Only owners and admins see the agent and team tables.")
    query, errors = _query(request)
    if query is None:
        text = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items())
        return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")
    workspace, period, filters = request.workspace, query["period"], query["filters"]
    if report == "overview":
        data = reports.overview(
            workspace, period, filters, schedule=reports.report_schedule(workspace)
        )
        header, rows = overview_rows(data)
    elif report == "timeseries":
        data = {"metric": query["metric"], "points": _series(query, workspace)}
        header, rows = timeseries_rows(data)
    elif report == "heatmap":
        cells = reports.heatmap(workspace, period, filters)
        header, rows = heatmap_rows({"weekdays": reports.WEEKDAYS, "cells": cells})
    elif report == "agents":
        header, rows = table_rows({"results": reports.agent_table(workspace, period, filters)})
    else:
        header, rows = table_rows({"results": reports.team_table(workspace, period, filters)})
    response = HttpResponse(csv_text(header, rows), content_type="text/csv; charset=utf-8")
    filename = f"enque-{report}-{period.start}-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
