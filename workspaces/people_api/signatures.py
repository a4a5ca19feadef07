"""``/v1/signatures``: the workspace's default signature and each agent's own.

Outgoing replies end with the agent's signature, else the workspace's. Any member reads
them all; admins set the workspace's (``PUT /v1/signatures/workspace``); every agent sets
their own (``GET/PUT /v1/signatures/me``), light agents included (it is their own profile,
not the workspace's). Signatures are HTML, sanitised with nh3 like every stored body.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.permissions import IsAdminRole
from workspaces import selectors, services
from workspaces.models import Agent, Workspace
from workspaces.people_api.base import PeopleViewSet
from workspaces.people_api.serializers import (
    SignatureInput,
    SignatureOutput,
    SignaturesOutput,
)


class SignatureViewSet(PeopleViewSet):
    model = Agent
    # One small object, not a list: every active agent of a workspace fits in it.
    pagination_class = None
    output_serializer_class = SignatureOutput
    output_serializers = {"list": SignaturesOutput}
    input_serializers = {"workspace_signature": SignatureInput, "me": SignatureInput}
    action_permission_classes = {"workspace_signature": (IsAdminRole,)}
    light_agent_actions = frozenset({"me"})

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Agent]:
        return selectors.signature_agents(workspace=workspace)

    @extend_schema(summary="The workspace's default signature and every active agent's")
    def list(self, request: Request) -> Response:
        # Two queries: none for the workspace (the token's), the agents with their users.
        return self.output(
            {"workspace": self.workspace.default_signature, "agents": self.get_queryset()}
        )

    @extend_schema(
        summary="Set the workspace's default signature (admins)",
        description="HTML, sanitised; an empty string removes it.",
    )
    @action(detail=False, methods=["put"], url_path="workspace")
    def workspace_signature(self, request: Request) -> Response:
        data = self.validated_input()
        workspace = services.signature_set_workspace(
            workspace=self.workspace, actor=self.agent, signature=data["signature"]
        )
        return self.output({"signature": workspace.default_signature})

    @extend_schema(methods=["GET"], summary="The caller's own signature")
    @extend_schema(
        methods=["PUT"],
        summary="Set the caller's own signature",
        description="HTML, sanitised; an empty string falls back to the workspace's.",
    )
    @action(detail=False, methods=["get", "put"])
    def me(self, request: Request) -> Response:
        if request.method == "PUT":
            data = self.validated_input()
            services.signature_set_agent(
                workspace=self.workspace,
                actor=self.agent,
                agent=self.agent,
                signature=data["signature"],
            )
        return self.output({"signature": self.agent.signature})
