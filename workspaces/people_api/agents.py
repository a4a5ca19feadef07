"""``/v1/agents`` (list, role changes, deactivation) and ``/v1/teams``.

Any member reads both. Owners and admins change roles, deactivate and reactivate agents,
and manage teams; only an owner grants, revokes, deactivates or reactivates ``owner``, and
the last active owner keeps the role (409 ``last_owner``). Inviting an agent
(``POST /v1/agents/invite``) is ``workspaces.api.agents``.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.permissions import IsAdminRole
from workspaces import selectors, services
from workspaces.models import Agent, Team, Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.people_api.serializers import (
    AgentDetailOutput,
    AgentListQuery,
    AgentUpdateInput,
    TeamCreateInput,
    TeamListQuery,
    TeamMembersInput,
    TeamOutput,
    TeamUpdateInput,
)


class AgentViewSet(PeopleViewSet):
    model = Agent
    output_serializer_class = AgentDetailOutput
    input_serializers = {"partial_update": AgentUpdateInput}
    query_serializers = {"list": AgentListQuery}
    action_permission_classes = {
        "partial_update": (IsAdminRole,),
        "deactivate": (IsAdminRole,),
        "reactivate": (IsAdminRole,),
    }
    # Oldest membership first: the founders, then everyone in the order they joined.
    cursor_ordering = ("created_at", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Agent]:
        team = None
        if "team" in self.query:
            team = selectors.reference_in_workspace(
                Team, workspace, self.query["team"], field="team"
            )
        return selectors.agent_list(
            workspace=workspace,
            q=self.query.get("q", ""),
            role=self.query.get("role"),
            is_active=self.query.get("is_active"),
            team=team,
        )

    def _fresh(self, agent: Agent) -> Agent:
        return selectors.agent_list(workspace=self.workspace).get(pk=agent.pk)

    @extend_schema(
        summary="List agents",
        description="Every membership of the workspace, deactivated ones included unless "
        "`is_active` says otherwise; each with its user's name and email, role and teams.",
    )
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(summary="An agent")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change an agent's role (admins)",
        description="Only an owner grants or revokes `owner` (403 `owner_required`); the "
        "last active owner cannot be demoted (409 `last_owner`).",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        agent = self.get_object()
        data = self.validated_input()
        services.agent_change_role(
            workspace=self.workspace, actor=self.agent, agent=agent, role=data["role"]
        )
        return self.output(self._fresh(agent))

    @extend_schema(
        summary="Deactivate an agent (admins)",
        description="Their tokens stop working at once and their tickets become unassigned; "
        "their team memberships are kept. Only an owner deactivates an owner; the last owner "
        "cannot be deactivated (409 `last_owner`), nor can the caller themselves (409 "
        "`self_deactivation`). Deactivating an inactive agent changes nothing.",
        request=None,
    )
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str) -> Response:
        agent = self.get_object()
        services.agent_set_active(
            workspace=self.workspace, actor=self.agent, agent=agent, active=False
        )
        return self.output(self._fresh(agent))

    @extend_schema(
        summary="Reactivate an agent (admins)",
        description="They sign in again with their role and teams as before. Only an owner "
        "reactivates an owner.",
        request=None,
    )
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str) -> Response:
        agent = self.get_object()
        services.agent_set_active(
            workspace=self.workspace, actor=self.agent, agent=agent, active=True
        )
        return self.output(self._fresh(agent))


class TeamViewSet(PeopleViewSet):
    model = Team
    output_serializer_class = TeamOutput
    input_serializers = {
        "create": TeamCreateInput,
        "partial_update": TeamUpdateInput,
        "members": TeamMembersInput,
    }
    output_serializers = {"destroy": NO_CONTENT}
    query_serializers = {"list": TeamListQuery}
    action_permission_classes = {
        "create": (IsAdminRole,),
        "partial_update": (IsAdminRole,),
        "destroy": (IsAdminRole,),
        "members": (IsAdminRole,),
    }
    cursor_ordering = ("name", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Team]:
        return selectors.team_list(workspace=workspace, q=self.query.get("q", ""))

    def _fresh(self, team: Team) -> Team:
        return selectors.team_list(workspace=self.workspace).get(pk=team.pk)

    def _agents(self, ids: list[int]) -> list[Agent]:
        return selectors.references_in_workspace(Agent, self.workspace, ids, field="agent_ids")

    @extend_schema(summary="List teams", description="By name, each with its members.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a team (admins)",
        description="A name another team has (in any case) is a 409 `duplicate`; an agent id "
        "not of this workspace is a 400 `invalid_reference` on `agent_ids`.",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        team = services.team_create(
            workspace=self.workspace,
            name=data["name"],
            description=data["description"],
            members=self._agents(data["agent_ids"]),
        )
        return self.output(self._fresh(team), status=status.HTTP_201_CREATED)

    @extend_schema(summary="A team")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Rename or describe a team (admins)")
    def partial_update(self, request: Request, pk: str) -> Response:
        team = self.get_object()
        data = self.validated_input(partial=True)
        services.team_update(workspace=self.workspace, actor=self.agent, team=team, **data)
        return self.output(self._fresh(team))

    @extend_schema(
        summary="Delete a team (admins)",
        description="Its tickets lose the team (with a history row each); its agents stay.",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.team_delete(workspace=self.workspace, actor=self.agent, team=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["PUT"],
        summary="Set a team's members (admins)",
        description="Replaces the members with `agent_ids` (an empty list empties the team).",
    )
    @extend_schema(
        methods=["POST"],
        summary="Add members to a team (admins)",
        description="Adds `agent_ids`; members already in the team stay once.",
    )
    @action(detail=True, methods=["put", "post"])
    def members(self, request: Request, pk: str) -> Response:
        team = self.get_object()
        data = self.validated_input()
        services.team_change_members(
            workspace=self.workspace,
            actor=self.agent,
            team=team,
            agents=self._agents(data["agent_ids"]),
            replace=request.method == "PUT",
        )
        return self.output(self._fresh(team))
