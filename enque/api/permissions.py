"""Role rules for ``/v1`` views.

``WorkspaceScopedViewSet`` always applies ``IsWorkspaceMember`` and ``LightAgentReadOnly``
before a view's own classes, so a view can add rules but never forget these two.

Roles (``workspaces.models.AgentRole``): ``owner`` and ``admin`` manage the workspace, its
agents, teams and settings; ``agent`` works tickets; ``light`` reads and adds internal notes
only. Refusals are 403 with a code saying which rule refused: ``admin_required``,
``owner_required``, ``light_agent``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from workspaces.models import Agent, AgentRole


def request_agent(request: Any) -> Agent | None:
    return getattr(request, "agent", None)


class IsWorkspaceMember(BasePermission):
    """An authenticated, active agent of the token's workspace."""

    def has_permission(self, request: Any, view: Any) -> bool:
        agent = request_agent(request)
        workspace = getattr(request, "workspace", None)
        return (
            agent is not None
            and workspace is not None
            and agent.is_active
            and agent.workspace_id == workspace.pk
        )


class IsAdminRole(BasePermission):
    message = "Only an owner or admin of the workspace may do this."
    code = "admin_required"

    def has_permission(self, request: Any, view: Any) -> bool:
        agent = request_agent(request)
        return agent is not None and agent.is_admin


class IsOwner(BasePermission):
    message = "Only an owner of the workspace may do this."
    code = "owner_required"

    def has_permission(self, request: Any, view: Any) -> bool:
        agent = request_agent(request)
        return agent is not None and agent.role == AgentRole.OWNER


LIGHT_AGENT_MESSAGE = "Light agents can read tickets and add internal notes only."


class LightAgentReadOnly(BasePermission):
    """Light agents read (safe methods); their writes are refused unless the view lists the
    action in ``light_agent_actions`` (e.g. ``{"reply"}``), and then the view must still
    refuse anything but an internal note with ``require_full_agent``."""

    message = LIGHT_AGENT_MESSAGE
    code = "light_agent"

    def has_permission(self, request: Any, view: Any) -> bool:
        agent = request_agent(request)
        if agent is None or agent.role != AgentRole.LIGHT or request.method in SAFE_METHODS:
            return True
        action = getattr(view, "action", None) or request.method.lower()
        return action in getattr(view, "light_agent_actions", ())


def require_full_agent(request: Any, message: str = LIGHT_AGENT_MESSAGE) -> None:
    """For a view that let a light agent in: refuse what only a full agent may do."""
    agent = request_agent(request)
    if agent is not None and agent.role == AgentRole.LIGHT:
        raise exceptions.PermissionDenied(message, code="light_agent")
