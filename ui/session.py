"""Who is using the UI, and in which workspace.

The UI signs in with Django's session. The workspace is the session's, never a URL's or a
form's: ``SESSION_WORKSPACE_KEY`` holds its id, set at sign-in and by the workspace
switcher. ``realtime/auth.py`` reads the same key to decide which workspace a websocket
opened with the session cookie belongs to, so the page and its live updates always agree.

``agent_view`` wraps every page and endpoint but the sign-in ones: it requires a signed-in
user who is an active agent of an active workspace, and sets ``request.agent`` and
``request.workspace`` (the names ``enque.api`` uses, so log lines carry them too). Every
fetch a view makes afterwards is scoped to ``request.workspace``: another workspace's
ticket, customer or attachment is a 404 exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from enque.api.middleware import bind_actor
from workspaces.models import Agent, User
from workspaces.selectors import membership_for_login

# realtime/auth.py reads this key (identity_from_session): keep the two in step.
SESSION_WORKSPACE_KEY = "workspace_id"


def session_agent(request: HttpRequest, user: User) -> Agent | None:
    """The active membership of the session's workspace; else (deactivated there since)
    the user's last-used active one, which becomes the session's; else None."""
    try:
        workspace_id = int(request.session.get(SESSION_WORKSPACE_KEY) or 0) or None
    except (TypeError, ValueError):
        workspace_id = None
    agent = None
    if workspace_id is not None:
        agent = membership_for_login(user=user, workspace_id=workspace_id)
    if agent is None:
        agent = membership_for_login(user=user)
        if agent is not None:
            use_workspace(request, agent)
    return agent


def use_workspace(request: HttpRequest, agent: Agent) -> None:
    request.session[SESSION_WORKSPACE_KEY] = agent.workspace_id


def agent_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in required, as an active agent; sets ``request.agent`` / ``request.workspace``."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        login_url = reverse("ui:login")
        if not user.is_authenticated:
            if request.headers.get("HX-Request"):
                # An htmx call from a page whose session ended: reload into the sign-in page.
                response = HttpResponse(status=401)
                response["HX-Redirect"] = f"{login_url}?next={request.path}"
                return response
            return redirect_to_login(request.get_full_path(), login_url)
        agent = session_agent(request, user)
        if agent is None:
            logout(request)
            messages.error(
                request, "Your account is not an active agent of any workspace any more."
            )
            return redirect_to_login(request.get_full_path(), login_url)
        request.agent = agent
        request.workspace = agent.workspace
        bind_actor(workspace_id=agent.workspace_id, agent_id=agent.pk)
        # Dates and times read in the workspace's zone.
        try:
            timezone.activate(ZoneInfo(agent.workspace.timezone))
        except (KeyError, ValueError):
            timezone.activate(ZoneInfo("UTC"))
        try:
            return view(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    wrapper.agent_view = True  # type: ignore[attr-defined]  # the URL test checks every route
    return wrapper


def admin_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``agent_view`` for the workspace's owners and admins only (settings pages).

    Any other agent gets a 404, as for a page that does not exist: settings are not theirs
    to find.
    """

    @wraps(view)
    def only_admins(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.agent.is_admin:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return agent_view(only_admins)
