"""``/v1/views``: saved ticket filters, personal or shared, each with its live count.

An agent sees the workspace's shared views and their own; another agent's personal view
answers 404 like a missing one. Shared views are created and changed by admins; a personal
one by its owner. Light agents read (their lists and counts) but keep no views of their own.

Counts: the live ``count`` of every view on a page comes from one aggregate query (one
``COUNT(*) FILTER (WHERE ...)`` per view, ``selectors.saved_view_counts``), so a list of
views costs the same number of queries however many tickets or views there are.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from enque.api.viewsets import WorkspaceScopedViewSet
from tickets import selectors, services
from tickets.api.filters import DEFAULT_ORDERING, TicketFilterQuery, as_stored_filters
from tickets.api.serializers import EmbeddedAgentOutput, TicketOutput
from tickets.api.views import PaginatedActionsMixin, cursor_ordering_for, paginated_tickets
from tickets.models import SavedView
from workspaces.models import Workspace


class SavedViewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    shared = serializers.BooleanField(source="is_shared")
    owner = EmbeddedAgentOutput(allow_null=True, help_text="null for a shared view.")
    filters = serializers.JSONField(help_text="The filters of GET /v1/tickets, as JSON.")
    position = serializers.IntegerField()
    count = serializers.SerializerMethodField(help_text="Tickets matching now.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_count(self, view: SavedView) -> int:
        return self.context["counts"][view.pk]


class SavedViewCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    filters = TicketFilterQuery(required=False)
    shared = serializers.BooleanField(
        required=False, default=False, help_text="Shared with the workspace (admins only)."
    )
    position = serializers.IntegerField(required=False, min_value=0, max_value=10_000)


class SavedViewUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    filters = TicketFilterQuery(required=False, help_text="Replaces the filters whole.")
    position = serializers.IntegerField(required=False, min_value=0, max_value=10_000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Name at least one field to change.")
        return attrs


VIEW_EXAMPLE = OpenApiExample(
    "My urgent open tickets",
    request_only=True,
    value={
        "name": "My urgent",
        "filters": {"status": ["new", "open"], "priority": ["urgent"], "assignee": "me"},
    },
)


@extend_schema_view(
    list=extend_schema(summary="Saved views", description="Shared ones and the caller's own."),
    retrieve=extend_schema(summary="One saved view"),
    create=extend_schema(
        summary="Save a view",
        description="Personal by default; `shared: true` (admins) for the whole workspace. "
        "`filters` take exactly the query parameters of GET /v1/tickets.",
        examples=[VIEW_EXAMPLE],
        responses={201: SavedViewOutput},
    ),
    partial_update=extend_schema(summary="Rename, re-filter or move a view"),
    destroy=extend_schema(summary="Delete a view"),
)
class SavedViewViewSet(PaginatedActionsMixin, WorkspaceScopedViewSet):
    model = SavedView
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    input_serializer_class = SavedViewCreateInput
    output_serializer_class = SavedViewOutput
    paginated_actions = frozenset({"list", "tickets"})

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[SavedView]:
        return selectors.saved_view_list(workspace=workspace, agent=self.agent).select_related(
            "owner__user"
        )

    def get_input_serializer_class(self) -> type[BaseSerializer] | None:
        if self.action == "partial_update":
            return SavedViewUpdateInput
        return super().get_input_serializer_class()

    def get_output_serializer_class(self) -> type[BaseSerializer] | None:
        if self.action == "tickets":
            return TicketOutput
        if self.action == "destroy":
            return None
        return super().get_output_serializer_class()

    def cursor_ordering(self) -> tuple[str, ...]:
        if self.action == "tickets":
            return cursor_ordering_for(self._view.filters.get("ordering", DEFAULT_ORDERING))
        return ("position", "id")

    _view: SavedView

    def with_counts(self, views: list[SavedView], **kwargs: Any) -> Any:
        counts = selectors.saved_view_counts(
            workspace=self.workspace, agent=self.agent, views=views
        )
        context = {**self.get_serializer_context(), "counts": counts}
        return SavedViewOutput(views, context=context, **kwargs).data

    # --- actions -------------------------------------------------------------------------

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.with_counts(page, many=True))

    def retrieve(self, request: Request, pk: str) -> Response:
        view = self.get_object()
        return Response(self.with_counts([view], many=True)[0])

    def create(self, request: Request) -> Response:
        data = self.validated_input()
        view = services.saved_view_create(
            workspace=self.workspace,
            agent=self.agent,
            name=data["name"],
            filters=as_stored_filters(data.get("filters") or {}),
            shared=data["shared"],
            position=data.get("position"),
        )
        return Response(self.with_counts([view], many=True)[0], status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        view = self.get_object()
        data = self.validated_input()
        if "filters" in data:
            data["filters"] = as_stored_filters(data["filters"])
        view = services.saved_view_update(view=view, agent=self.agent, **data)
        return Response(self.with_counts([view], many=True)[0])

    def destroy(self, request: Request, pk: str) -> Response:
        services.saved_view_delete(view=self.get_object(), agent=self.agent)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The tickets of a view",
        description="GET /v1/tickets with the view's filters and ordering.",
        responses={200: TicketOutput(many=True)},
    )
    @action(detail=True, methods=["get"])
    def tickets(self, request: Request, pk: str) -> Response:
        self._view = self.get_object()
        return paginated_tickets(
            self,
            selectors.ticket_filtered(
                workspace=self.workspace, agent=self.agent, filters=self._view.filters
            ),
        )
