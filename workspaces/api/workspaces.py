"""``/v1/workspaces``: the caller's own workspaces.

Unlike every other resource this one spans tenants — a user may belong to several
workspaces — so it is scoped by membership (``dangerously_get_unscoped_queryset``), and the
role that counts is the caller's role in the workspace addressed, not in the token's:
updating needs owner or admin there, deleting needs owner. A workspace the caller is not
an active member of answers 404, like a missing one.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from enque.api.viewsets import WorkspaceScopedViewSet
from enque.errors import NotFound
from workspaces import selectors, services
from workspaces.api.serializers import (
    WorkspaceCreateInput,
    WorkspaceDeleteInput,
    WorkspaceDeleteQuery,
    WorkspaceOutput,
    WorkspaceUpdateInput,
)
from workspaces.models import Agent, AgentRole, Workspace


class WorkspaceViewSet(WorkspaceScopedViewSet):
    model = Workspace
    output_serializer_class = WorkspaceOutput
    cursor_ordering = ("created_at", "id")
    # The light-agent rule judges the token's membership; here the role that matters is
    # the caller's in the addressed workspace, which the services check.
    light_agent_actions = frozenset({"create", "partial_update", "destroy"})

    def dangerously_get_unscoped_queryset(self) -> QuerySet[Workspace]:
        # Scoped by the caller's memberships instead of by the token's workspace.
        return selectors.workspaces_of_user(self.request.user)

    def get_input_serializer_class(self) -> type[BaseSerializer] | None:
        return {
            "create": WorkspaceCreateInput,
            "partial_update": WorkspaceUpdateInput,
            "destroy": WorkspaceDeleteInput,
        }.get(self.action)

    def get_output_serializer_class(self) -> type[BaseSerializer] | None:
        return None if self.action == "destroy" else WorkspaceOutput

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return WorkspaceDeleteQuery if self.action == "destroy" else None

    def _membership(self, workspace: Workspace) -> Agent:
        agent = (
            Agent.objects.for_workspace(workspace)
            .filter(user=self.request.user, is_active=True)
            .select_related("user")
            .first()
        )
        if agent is None:  # deactivated between the fetch and now
            raise NotFound("Workspace not found.")
        return agent

    @extend_schema(summary="The caller's workspaces")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(summary="Create a workspace, the caller its owner")
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        workspace = services.workspace_create(
            name=data["name"], owner=request.user, timezone_name=data["timezone"]
        )
        workspace.caller_role = AgentRole.OWNER
        return self.output(workspace, status=status.HTTP_201_CREATED)

    @extend_schema(summary="One of the caller's workspaces")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Change a workspace's settings (owner or admin)")
    def partial_update(self, request: Request, pk: str) -> Response:
        workspace = self.get_object()
        data = self.validated_input(partial=True)
        services.workspace_update(
            workspace=workspace,
            actor=self._membership(workspace),
            name=data.get("name"),
            timezone_name=data.get("timezone"),
            default_signature=data.get("default_signature"),
            signup_domains=data.get("signup_domains"),
        )
        return self.output(workspace)

    @extend_schema(
        summary="Delete a workspace (owner only)",
        description="Requires the workspace's slug as confirmation, in the JSON body "
        '(`{"confirm": "<slug>"}`) or as the `confirm` query parameter. The workspace is '
        "deactivated: every token for it stops working and it leaves every list; its data "
        "is kept and can be restored by an operator.",
    )
    def destroy(self, request: Request, pk: str) -> Response:
        workspace = self.get_object()
        body = request.data if isinstance(request.data, dict) else {}
        data = self.validated_input({**self.query, **body})
        services.workspace_delete(
            workspace=workspace, actor=self._membership(workspace), confirm=data["confirm"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
