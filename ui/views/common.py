"""What every page shares: the layout's context, htmx helpers, and the workspace's lookups."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from tickets.models import Category, Tag
from workspaces.models import Agent, Team
from workspaces.selectors import workspaces_of_user


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """A page in the layout: adds the workspace switcher's list (one query)."""
    workspaces = list(workspaces_of_user(request.user).order_by("name", "id"))
    name = request.resolver_match.url_name if request.resolver_match else ""
    if name.startswith("settings"):
        section = "settings"
    elif name.startswith("dashboard"):
        section = "dashboard"
    elif name.startswith("customer"):
        section = "customers"
    elif name.startswith("compan"):
        section = "companies"
    else:
        section = "inbox"
    context = {
        "section": section,
        "is_workspace_admin": request.agent.is_admin,
        "agent": request.agent,
        "workspace": request.workspace,
        "workspaces": workspaces,
        **context,
    }
    return render(request, template, context, status=status)


def render_fragment(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """An htmx fragment (no layout)."""
    context = {"agent": request.agent, "workspace": request.workspace, **context}
    return render(request, template, context, status=status)


def redirect_htmx_aware(request: HttpRequest, url: str) -> HttpResponse:
    """A redirect that htmx follows as a full page load."""
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


class Lookups:
    """The workspace's agents, teams, categories and tags, each read once per request."""

    def __init__(self, request: HttpRequest) -> None:
        self.workspace = request.workspace
        self._agents: list[Agent] | None = None
        self._teams: list[Team] | None = None
        self._categories: list[Category] | None = None
        self._tags: list[Tag] | None = None

    @property
    def agents(self) -> list[Agent]:
        """Every agent, deactivated ones included (history names them); pickers filter."""
        if self._agents is None:
            self._agents = sorted(
                Agent.objects.for_workspace(self.workspace).select_related("user"),
                key=lambda a: (not a.is_active, a.name.casefold(), a.pk),
            )
        return self._agents

    @property
    def active_agents(self) -> list[Agent]:
        return [a for a in self.agents if a.is_active]

    @property
    def teams(self) -> list[Team]:
        if self._teams is None:
            self._teams = list(Team.objects.for_workspace(self.workspace).order_by("name", "id"))
        return self._teams

    @property
    def categories(self) -> list[Category]:
        if self._categories is None:
            self._categories = list(
                Category.objects.for_workspace(self.workspace).order_by("name", "id")
            )
        return self._categories

    @property
    def tags(self) -> list[Tag]:
        if self._tags is None:
            self._tags = list(Tag.objects.for_workspace(self.workspace).order_by("name", "id"))
        return self._tags
