"""``/v1/analytics/*``: the reports of ``tickets.reports`` as JSON, or CSV with ``?format=csv``.

    GET /v1/analytics/overview?start=2026-01-01&end=2026-01-31&team=3
    GET /v1/analytics/timeseries?metric=created&interval=week
    GET /v1/analytics/heatmap
    GET /v1/analytics/agents        (owners and admins)
    GET /v1/analytics/teams         (owners and admins)

Every endpoint takes the same period and filters (``AnalyticsQuery``): local dates of the
workspace's time zone (default: the last 30 days up to today), and the ids of the
workspace's team, agent, mailbox, category, tag or company — an id from another workspace
is refused like an unknown one (400), so a filter cannot probe another tenant.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.permissions import IsAdminRole
from enque.api.viewsets import WorkspaceScopedViewSet
from integrations.models import MailboxConnection
from tickets import reports
from tickets.models import Category, Tag, Ticket, TicketChannel, TicketPriority
from workspaces.models import Agent, Company, Team, Workspace

# Dates outside these bounds are refused: nobody reports on them, and the date arithmetic
# of a period must not overflow at year 1 or 9999.
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
DEFAULT_DAYS = 30

FILTER_MODELS: dict[str, Any] = {
    "team": Team,
    "agent": Agent,
    "mailbox": MailboxConnection,
    "category": Category,
    "tag": Tag,
    "company": Company,
}


def _id_field(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=1, max_value=2**53, help_text=help_text
    )


class AnalyticsQuery(serializers.Serializer):
    """The period and filters every report takes; ``validated_data`` gains ``period``
    (``reports.Period``) and ``filters`` (``reports.Filters``)."""

    start = serializers.DateField(
        required=False, help_text="First local date (YYYY-MM-DD); default: 29 days before end."
    )
    end = serializers.DateField(
        required=False, help_text="Last local date, included; default: today in the workspace."
    )
    team = _id_field("Only tickets of this team.")
    agent = _id_field("Only tickets assigned to this agent.")
    mailbox = _id_field("Only tickets of this mailbox.")
    category = _id_field("Only tickets in this category.")
    tag = _id_field("Only tickets with this tag.")
    company = _id_field("Only tickets of this company's customers.")
    channel = serializers.ChoiceField(choices=TicketChannel.choices, required=False)
    priority = serializers.ChoiceField(choices=TicketPriority.choices, required=False)
    format = serializers.ChoiceField(
        choices=[("json", "JSON"), ("csv", "CSV")],
        required=False,
        help_text="`csv` for a spreadsheet-ready download (text/csv) of the same figures.",
    )

    def max_days(self, attrs: dict[str, Any]) -> int:
        return reports.MAX_PERIOD_DAYS

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        workspace: Workspace = self.context["workspace"]
        errors: dict[str, list[str]] = {}
        for name in ("start", "end"):
            value = attrs.get(name)
            if value is not None and not EARLIEST <= value <= LATEST:
                errors[name] = [f"Give a date between {EARLIEST} and {LATEST}."]
        if errors:
            raise serializers.ValidationError(errors)
        default = reports.default_period(workspace, days=DEFAULT_DAYS)
        end = attrs.get("end") or default.end
        start = attrs.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"start": ["The start is after the end."]})
        limit = self.max_days(attrs)
        if (end - start).days + 1 > limit:
            raise serializers.ValidationError(
                {"start": [f"A period of at most {limit} days, please."]}
            )
        for name, model in FILTER_MODELS.items():
            pk = attrs.get(name)
            if pk is not None and not model.objects.for_workspace(workspace).filter(pk=pk).exists():
                errors[name] = [f"No {name} with this id in the workspace."]
        if errors:
            raise serializers.ValidationError(errors)
        attrs["period"] = reports.Period(start=start, end=end, tz=default.tz)
        attrs["filters"] = reports.Filters(
            team_id=attrs.get("team"),
            agent_id=attrs.get("agent"),
            mailbox_id=attrs.get("mailbox"),
            channel=attrs.get("channel"),
            category_id=attrs.get("category"),
            tag_id=attrs.get("tag"),
            priority=attrs.get("priority"),
            company_id=attrs.get("company"),
        )
        return attrs


class TimeseriesQuery(AnalyticsQuery):
    metric = serializers.ChoiceField(
        choices=[(m, m) for m in reports.METRICS],
        required=False,
        default="created",
        help_text="Counts per bucket (created, the default; resolved, reopened; backlog at "
        "the bucket's end) or durations in seconds (median / p90 of first response or "
        "resolution).",
    )
    interval = serializers.ChoiceField(
        choices=[(i, i) for i in reports.INTERVALS],
        required=False,
        default="day",
        help_text="Bucket size; weeks start on Monday. A daily series spans at most 366 days.",
    )

    def max_days(self, attrs: dict[str, Any]) -> int:
        return reports.MAX_DAYS[attrs.get("interval") or "day"]


# --- Output shapes --------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field):
    """A count (integer) or a duration / ratio (float), as it is; null when undefined."""

    def to_representation(self, value: Any) -> Any:
        return value


class PeriodOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    timezone = serializers.CharField(
        help_text="The workspace's zone: days run midnight to midnight there."
    )


class DurationStatsOutput(serializers.Serializer):
    median = serializers.FloatField(allow_null=True, help_text="Seconds.")
    p90 = serializers.FloatField(allow_null=True, help_text="Seconds (90th percentile).")
    average = serializers.FloatField(allow_null=True, help_text="Seconds.")
    count = serializers.IntegerField(help_text="Tickets measured.")


class SLATargetOutput(serializers.Serializer):
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    compliance = serializers.FloatField(allow_null=True, help_text="met / (met + breached), %.")


class SLAOutput(serializers.Serializer):
    first_response = SLATargetOutput()
    resolution = SLATargetOutput()


class OverviewOutput(PeriodOutput):
    created = serializers.IntegerField()
    resolved = serializers.IntegerField()
    reopened = serializers.IntegerField()
    backlog = serializers.IntegerField(help_text="Tickets open at the end of the period.")
    first_response = DurationStatsOutput()
    first_response_business = DurationStatsOutput(
        allow_null=True, help_text="In the default business hours; null without them."
    )
    resolution = DurationStatsOutput()
    resolution_business = DurationStatsOutput(allow_null=True)
    replies_per_ticket = serializers.FloatField(allow_null=True)
    one_touch_rate = serializers.FloatField(allow_null=True, help_text="%.")
    sla = SLAOutput()
    sla_compliance = serializers.FloatField(allow_null=True, help_text="Both targets, %.")


class PointOutput(serializers.Serializer):
    bucket = serializers.DateField(help_text="First local date of the bucket.")
    value = NumberField(allow_null=True)


class TimeseriesOutput(PeriodOutput):
    metric = serializers.CharField()
    interval = serializers.CharField()
    points = PointOutput(many=True)


class HeatmapOutput(PeriodOutput):
    weekdays = serializers.ListField(child=serializers.CharField())
    cells = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Tickets created: 7 rows (Monday first) of 24 local hours.",
    )
    max = serializers.IntegerField()


class TableRowOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    tickets = serializers.IntegerField(help_text="Created in the period (agents: assigned).")
    resolved = serializers.IntegerField()
    replies = serializers.IntegerField(help_text="Public agent replies written in the period.")
    median_first_response = serializers.FloatField(allow_null=True, help_text="Seconds.")
    sla_compliance = serializers.FloatField(allow_null=True, help_text="%.")


class TableOutput(PeriodOutput):
    results = TableRowOutput(many=True)


# --- CSV --------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with one of these as a formula: names are user data.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def overview_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows: list[list[Any]] = [
        [name, data[name]]
        for name in (
            "created",
            "resolved",
            "reopened",
            "backlog",
            "replies_per_ticket",
            "one_touch_rate",
            "sla_compliance",
        )
    ]
    for block in ("first_response", "first_response_business", "resolution", "resolution_business"):
        stats = data.get(block) or {}
        for stat in ("median", "p90", "average", "count"):
            rows.append([f"{block}_{stat}", stats.get(stat)])
    for target, states in data["sla"].items():
        for state, value in states.items():
            rows.append([f"sla_{target}_{state}", value])
    return ["metric", "value"], rows


def timeseries_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    return ["bucket", data["metric"]], [[p["bucket"], p["value"]] for p in data["points"]]


def heatmap_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["weekday", *(f"{hour:02d}:00" for hour in range(24))]
    return header, [[day, *row] for day, row in zip(data["weekdays"], data["cells"], strict=True)]


def table_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = [
        "id",
        "name",
        "tickets",
        "resolved",
        "replies",
        "median_first_response",
        "sla_compliance",
    ]
    return header, [[row[key] for key in header] for row in data["results"]]


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        view = (renderer_context or {}).get("view")
        header, rows = view.csv_table(data)  # type: ignore[union-attr]
        return csv_text(header, rows).encode("utf-8")


CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="The same figures as CSV.")


def _responses(output: type[serializers.Serializer]) -> dict[Any, Any]:
    return {(200, "application/json"): output, (200, "text/csv"): CSV_RESPONSE}


# --- The views --------------------------------------------------------------------------------


class AnalyticsViewSet(WorkspaceScopedViewSet):
    model = Ticket
    pagination_class = None
    renderer_classes = [JSONRenderer, CSVRenderer]
    query_serializer_class = AnalyticsQuery
    action_permission_classes = {"agents": (IsAdminRole,), "teams": (IsAdminRole,)}
    _csv_rows: Any = None

    def get_workspace_queryset(self, workspace: Workspace) -> Any:
        return Ticket.objects.for_workspace(workspace)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        request = getattr(self, "request", None)
        context["workspace"] = getattr(request, "workspace", None)
        return context

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            # DRF answers an unknown ?format= with a 404; it is a bad parameter.
            raise exceptions.ValidationError({"format": ["Use json or csv."]}) from None

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        if response.status_code >= 400 and getattr(request, "accepted_renderer", None):
            # Errors are the JSON envelope, whatever format was asked for.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            response.status_code == 200
            and getattr(request.accepted_renderer, "format", "") == "csv"
        ):
            name = f"enque-{self.action}-{self.query['period'].start}-{self.query['period'].end}"
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response

    def csv_table(self, data: Any) -> tuple[list[str], list[list[Any]]]:
        return self._csv_rows(data)

    def _answer(
        self, data: dict[str, Any], output: type[serializers.Serializer], rows: Any
    ) -> Response:
        self._csv_rows = rows
        return Response(output(data).data)

    @extend_schema(
        summary="Headline figures of a period",
        description="Tickets created, resolved and reopened, the backlog at the end, first "
        "response and resolution times (median, p90, average; calendar and business hours), "
        "replies per ticket, one-touch rate and SLA compliance. `?format=csv`: one "
        "`metric,value` row each.",
        responses=_responses(OverviewOutput),
    )
    @action(detail=False, methods=["get"])
    def overview(self, request: Request) -> Response:
        query = self.query
        data = reports.overview(
            self.workspace,
            query["period"],
            query["filters"],
            schedule=reports.report_schedule(self.workspace),
        )
        return self._answer(data, OverviewOutput, overview_rows)

    @extend_schema(
        summary="One metric per day, week or month",
        description="Every bucket of the period, zero-filled for counts, null for durations "
        "of an empty bucket. `?format=csv`: `bucket,<metric>` rows.",
        responses=_responses(TimeseriesOutput),
    )
    @action(detail=False, methods=["get"], query_serializer_class=TimeseriesQuery)
    def timeseries(self, request: Request) -> Response:
        query = self.query
        points = reports.timeseries(
            self.workspace,
            query["period"],
            query["filters"],
            metric=query["metric"],
            interval=query["interval"],
        )
        data = {
            **query["period"].as_dict(),
            "metric": query["metric"],
            "interval": query["interval"],
            "points": points,
        }
        return self._answer(data, TimeseriesOutput, timeseries_rows)

    @extend_schema(
        summary="Busiest hours: tickets created per weekday and hour",
        description="Local weekday (Monday first) by local hour. `?format=csv`: one row per "
        "weekday, one column per hour.",
        responses=_responses(HeatmapOutput),
    )
    @action(detail=False, methods=["get"])
    def heatmap(self, request: Request) -> Response:
        query = self.query
        cells = reports.heatmap(self.workspace, query["period"], query["filters"])
        data = {
            **query["period"].as_dict(),
            "weekdays": list(reports.WEEKDAYS),
            "cells": cells,
            "max": max(max(row) for row in cells),
        }
        return self._answer(data, HeatmapOutput, heatmap_rows)

    @extend_schema(
        summary="Per-agent table (owners and admins)",
        description="Per active agent: tickets assigned (created in the period), resolved, "
        "public replies written, median first response, SLA compliance.",
        responses=_responses(TableOutput),
    )
    @action(detail=False, methods=["get"])
    def agents(self, request: Request) -> Response:
        query = self.query
        rows = reports.agent_table(self.workspace, query["period"], query["filters"])
        return self._answer({**query["period"].as_dict(), "results": rows}, TableOutput, table_rows)

    @extend_schema(
        summary="Per-team table (owners and admins)",
        description="Per team: tickets created in the period, resolved, public replies on "
        "them, median first response, SLA compliance.",
        responses=_responses(TableOutput),
    )
    @action(detail=False, methods=["get"])
    def teams(self, request: Request) -> Response:
        query = self.query
        rows = reports.team_table(self.workspace, query["period"], query["filters"])
        return self._answer({**query["period"].as_dict(), "results": rows}, TableOutput, table_rows)
