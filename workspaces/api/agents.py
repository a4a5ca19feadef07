"""``/v1/agents``: the workspace's agents. For now: inviting one (owner or admin)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.permissions import IsAdminRole
from enque.api.viewsets import WorkspaceScopedViewSet
from workspaces import services
from workspaces.api.serializers import AgentOutput, InvitationOutput, InviteInput
from workspaces.models import Agent, Workspace


class AgentViewSet(WorkspaceScopedViewSet):
    model = Agent
    output_serializer_class = AgentOutput

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Agent]:
        return Agent.objects.for_workspace(workspace).select_related("user")

    @extend_schema(
        summary="Invite someone to join as an agent",
        description="Emails a single-use link (valid INVITATION_TIMEOUT, 7 days by default). "
        "Inviting an address again revokes its earlier link. Only an owner may invite an owner.",
        responses={201: InvitationOutput},
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[IsAdminRole],
        input_serializer_class=InviteInput,
        output_serializer_class=InvitationOutput,
    )
    def invite(self, request: Request) -> Response:
        data = self.validated_input()
        invitation, _token = services.invitation_create(
            workspace=self.workspace,
            actor=self.agent,
            email=data["email"],
            role=data["role"],
            team_ids=data["team_ids"],
        )
        return self.output(invitation, status=status.HTTP_201_CREATED)
