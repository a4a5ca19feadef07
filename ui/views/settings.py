"""Settings pages (owners and admins): workspace, agents and invitations, teams, categories,
tags, canned replies, SLA policies and business hours.

Every view is an ``admin_view`` (any other agent gets a 404), fetches objects inside the
session's workspace (another workspace's id is a 404 like a missing one), and writes only
through the services (``workspaces.services``, ``tickets.services``,
``automation.services``), which check the role rules again and keep the history. A refused
write re-renders the page with the form's errors (status 400) and changes nothing; a
successful one redirects with a message (the layout shows it as a toast).

List pages read with the selectors' joins and prefetches, so each costs the same number of
queries at two rows as at two hundred (ui/tests/test_settings.py asserts it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from automation import selectors as automation_selectors
from automation import services as automation_services
from automation.models import BusinessHours, SLAPolicy, Weekday
from enque.errors import EnqueError
from tickets import services as ticket_services
from tickets.models import CannedReply, Category, Tag
from tickets.placeholders import PLACEHOLDERS
from tickets.settings_api import canned_replies_for
from ui.forms_settings import (
    PRIORITIES,
    BusinessHoursForm,
    CannedReplyForm,
    CategoryForm,
    InviteForm,
    RoleForm,
    SLAPolicyForm,
    TagForm,
    TeamForm,
    WorkspaceForm,
    format_duration,
    role_choices,
)
from ui.session import admin_view
from ui.views.common import render_page
from workspaces import selectors, services
from workspaces.models import Agent, AgentRole, Company, Invitation, Team


def _get_or_404(queryset: QuerySet, pk: int) -> Any:
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404("Not found.")
    return obj


def service_error(form: forms.Form, exc: EnqueError, aliases: dict[str, str] | None = None) -> None:
    """Show a service's refusal on the field it names (``category_id`` → ``category``),
    else above the form."""
    name = (aliases or {}).get(exc.field or "", exc.field or "")
    if name not in form.fields and name.endswith("_id") and name[:-3] in form.fields:
        name = name[:-3]
    form.add_error(name if name in form.fields else None, exc.message)


def _settings_page(
    request: HttpRequest, template: str, section: str, context: dict[str, Any], *, status: int
) -> HttpResponse:
    return render_page(
        request, f"ui/settings/{template}", {"settings_section": section, **context}, status=status
    )


@require_GET
@admin_view
def settings_home(request: HttpRequest) -> HttpResponse:
    return redirect("ui:settings_workspace")


# --- Workspace -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@admin_view
def workspace_settings(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace
    initial = {
        "name": workspace.name,
        "timezone": workspace.timezone,
        "default_signature": workspace.default_signature,
        "signup_domains": "\n".join(workspace.signup_domains or []),
    }
    form = WorkspaceForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                # Two services, one change: a refused signature leaves the name unchanged too.
                with transaction.atomic():
                    services.workspace_update(
                        workspace=workspace,
                        actor=request.agent,
                        name=data["name"],
                        timezone_name=data["timezone"],
                        signup_domains=data["signup_domains"],
                    )
                    # The signature service sanitises the HTML (workspace_update stores it as
                    # given, for the API's exact round trip).
                    services.signature_set_workspace(
                        workspace=workspace,
                        actor=request.agent,
                        signature=data["default_signature"],
                    )
            except EnqueError as exc:
                service_error(form, exc, {"signature": "default_signature"})
                workspace.refresh_from_db()
            else:
                messages.success(request, "Workspace settings saved.")
                return redirect("ui:settings_workspace")
    return _settings_page(
        request,
        "workspace.html",
        "workspace",
        {"form": form, "slug": workspace.slug},
        status=status,
    )


# --- Agents and invitations ------------------------------------------------------------------


def _agents_page(
    request: HttpRequest,
    *,
    invite_form: InviteForm | None = None,
    row_error: tuple[int, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace, actor = request.workspace, request.agent
    # Two queries: the agents with their users, then their teams.
    agents = sorted(
        selectors.agent_list(workspace=workspace),
        key=lambda a: (not a.is_active, a.name.casefold(), a.pk),
    )
    teams = list(Team.objects.for_workspace(workspace).order_by("name", "id"))
    # One query: pending and expired (not accepted) invitations, with who sent them.
    invitations = list(
        Invitation.objects.for_workspace(workspace)
        .filter(accepted_at__isnull=True)
        .select_related("invited_by__user")
        .order_by("-created_at", "-id")
    )
    teams_by_id = {t.pk: t.name for t in teams}
    for invitation in invitations:
        invitation.team_names = [teams_by_id[i] for i in invitation.team_ids if i in teams_by_id]
    is_owner = actor.role == AgentRole.OWNER
    for agent in agents:
        # Only an owner touches an owner's membership; nobody deactivates themselves.
        agent.manageable = is_owner or agent.role != AgentRole.OWNER
        agent.is_self = agent.pk == actor.pk
    return _settings_page(
        request,
        "agents.html",
        "agents",
        {
            "agents": agents,
            "invitations": invitations,
            "invite_form": invite_form or InviteForm(actor=actor, teams=teams),
            "role_choices": role_choices(actor),
            "row_error": row_error,
            "now": timezone.now(),
        },
        status=status,
    )


@require_GET
@admin_view
def agents(request: HttpRequest) -> HttpResponse:
    return _agents_page(request)


@require_POST
@admin_view
def agent_invite(request: HttpRequest) -> HttpResponse:
    teams = list(Team.objects.for_workspace(request.workspace).order_by("name", "id"))
    form = InviteForm(request.POST, actor=request.agent, teams=teams)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.invitation_create(
                workspace=request.workspace,
                actor=request.agent,
                email=data["email"],
                role=data["role"],
                team_ids=[t.pk for t in data["teams"]],
            )
        except EnqueError as exc:
            service_error(form, exc, {"team_ids": "teams"})
        else:
            messages.success(request, f"Invitation sent to {data['email']}.")
            return redirect("ui:settings_agents")
    return _agents_page(request, invite_form=form, status=400)


def _agent_or_404(request: HttpRequest, pk: int) -> Agent:
    return _get_or_404(Agent.objects.for_workspace(request.workspace).select_related("user"), pk)


@require_POST
@admin_view
def agent_role(request: HttpRequest, pk: int) -> HttpResponse:
    agent = _agent_or_404(request, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _agents_page(request, row_error=(agent.pk, "Pick a role."), status=400)
    role = form.cleaned_data["role"]
    try:
        services.agent_change_role(
            workspace=request.workspace, actor=request.agent, agent=agent, role=role
        )
    except EnqueError as exc:
        return _agents_page(request, row_error=(agent.pk, exc.message), status=400)
    messages.success(request, f"{agent.name} is now {AgentRole(role).label.lower()}.")
    if agent.pk == request.agent.pk and role not in (AgentRole.OWNER, AgentRole.ADMIN):
        # They just gave up the settings themselves.
        return redirect("ui:inbox")
    return redirect("ui:settings_agents")


def _set_active(request: HttpRequest, pk: int, *, active: bool) -> HttpResponse:
    agent = _agent_or_404(request, pk)
    try:
        services.agent_set_active(
            workspace=request.workspace, actor=request.agent, agent=agent, active=active
        )
    except EnqueError as exc:
        return _agents_page(request, row_error=(agent.pk, exc.message), status=400)
    if active:
        messages.success(request, f"{agent.name} is active again.")
    else:
        messages.success(request, f"{agent.name} is deactivated; their tickets are unassigned.")
    return redirect("ui:settings_agents")


@require_POST
@admin_view
def agent_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_active(request, pk, active=False)


@require_POST
@admin_view
def agent_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_active(request, pk, active=True)


def _invitation_or_404(request: HttpRequest, pk: int) -> Invitation:
    return _get_or_404(Invitation.objects.for_workspace(request.workspace), pk)


@require_POST
@admin_view
def invitation_resend(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _invitation_or_404(request, pk)
    try:
        services.invitation_resend(
            workspace=request.workspace, actor=request.agent, invitation=invitation
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"A new invitation link was sent to {invitation.email}.")
    return redirect("ui:settings_agents")


@require_POST
@admin_view
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _invitation_or_404(request, pk)
    try:
        services.invitation_revoke(
            workspace=request.workspace, actor=request.agent, invitation=invitation
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation of {invitation.email} was revoked.")
    return redirect("ui:settings_agents")


# --- Teams -----------------------------------------------------------------------------------


def _team_agents(request: HttpRequest) -> list[Agent]:
    """The member choices: every agent (a deactivated one stays a member until removed)."""
    return sorted(
        Agent.objects.for_workspace(request.workspace).select_related("user"),
        key=lambda a: (not a.is_active, a.name.casefold(), a.pk),
    )


@require_http_methods(["GET", "POST"])
@admin_view
def teams(request: HttpRequest) -> HttpResponse:
    """The teams, and a form to create one."""
    agents = _team_agents(request)
    form = TeamForm(request.POST or None, workspace=request.workspace, agents=agents)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                team = services.team_create(
                    workspace=request.workspace,
                    name=data["name"],
                    description=data["description"],
                    members=data["members"],
                    teams_webhook_url=data["teams_webhook_url"],
                )
            except EnqueError as exc:
                service_error(form, exc, {"agent_ids": "members"})
            else:
                messages.success(request, f"Team {team.name} created.")
                return redirect("ui:settings_teams")
    # Two queries: the teams, then their members with their users.
    team_rows = list(selectors.team_list(workspace=request.workspace).order_by("name", "id"))
    return _settings_page(
        request,
        "teams.html",
        "teams",
        {"teams": team_rows, "form": form, "creating": request.method == "POST"},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@admin_view
def team_edit(request: HttpRequest, pk: int) -> HttpResponse:
    team = _get_or_404(selectors.team_list(workspace=request.workspace), pk)
    agents = _team_agents(request)
    initial = {
        "name": team.name,
        "description": team.description,
        "members": [a.pk for a in team.members.all()],
    }
    form = TeamForm(
        request.POST or None, initial=initial, workspace=request.workspace, agents=agents
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            changes: dict[str, Any] = {"name": data["name"], "description": data["description"]}
            if data["clear_webhook"]:
                changes["teams_webhook_url"] = ""
            elif data["teams_webhook_url"]:
                changes["teams_webhook_url"] = data["teams_webhook_url"]
            try:
                with transaction.atomic():
                    services.team_update(
                        workspace=request.workspace, actor=request.agent, team=team, **changes
                    )
                    services.team_change_members(
                        workspace=request.workspace,
                        actor=request.agent,
                        team=team,
                        agents=data["members"],
                        replace=True,
                    )
            except EnqueError as exc:
                service_error(form, exc, {"agent_ids": "members"})
                team = _get_or_404(selectors.team_list(workspace=request.workspace), pk)
            else:
                messages.success(request, f"Team {data['name']} saved.")
                return redirect("ui:settings_teams")
    return _settings_page(
        request,
        "team_edit.html",
        "teams",
        {"team": team, "form": form, "has_webhook": bool(team.teams_webhook_url)},
        status=status,
    )


@require_POST
@admin_view
def team_delete(request: HttpRequest, pk: int) -> HttpResponse:
    team = _get_or_404(Team.objects.for_workspace(request.workspace), pk)
    services.team_delete(workspace=request.workspace, actor=request.agent, team=team)
    messages.success(request, f"Team {team.name} deleted; its tickets have no team now.")
    return redirect("ui:settings_teams")


# --- Categories and tags ---------------------------------------------------------------------
# One page each: the list with an inline edit form per row, and a create form. A refused
# edit re-renders the list with that row's form open and its errors.


def _named_page(
    request: HttpRequest,
    *,
    kind: str,
    create_form: forms.Form | None = None,
    edit: tuple[int, forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    form_class = CategoryForm if kind == "categories" else TagForm
    model = Category if kind == "categories" else Tag
    rows = list(model.objects.for_workspace(request.workspace).order_by("name", "id"))
    for row in rows:
        if edit and edit[0] == row.pk:
            row.form = edit[1]
        else:
            initial = {"name": row.name}
            initial.update(
                {"description": row.description} if kind == "categories" else {"color": row.color}
            )
            row.form = form_class(initial=initial, prefix=f"e{row.pk}")
    return _settings_page(
        request,
        f"{kind}.html",
        kind,
        {"rows": rows, "form": create_form or form_class(), "editing": edit[0] if edit else None},
        status=status,
    )


@dataclass(frozen=True)
class _NamedSetting:
    """Categories and tags: a name (and for tags a colour) managed on one page."""

    kind: str
    label: str
    model: type[Category] | type[Tag]
    form_class: type[forms.Form]
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    # The keyword the update/delete services take the object by.
    field: str
    deleted_note: str = ""

    @property
    def page(self) -> str:
        return f"ui:settings_{self.kind}"


_CATEGORIES = _NamedSetting(
    kind="categories",
    label="Category",
    model=Category,
    form_class=CategoryForm,
    create=ticket_services.category_create,
    update=ticket_services.category_update,
    delete=ticket_services.category_delete,
    field="category",
)
_TAGS = _NamedSetting(
    kind="tags",
    label="Tag",
    model=Tag,
    form_class=TagForm,
    create=ticket_services.tag_create,
    update=ticket_services.tag_update,
    delete=ticket_services.tag_delete,
    field="tag",
    deleted_note=" and taken off its tickets",
)


def _named_list(request: HttpRequest, setting: _NamedSetting) -> HttpResponse:
    if request.method == "GET":
        return _named_page(request, kind=setting.kind)
    form = setting.form_class(request.POST)
    if form.is_valid():
        try:
            obj = setting.create(
                workspace=request.workspace, actor=request.agent, **form.cleaned_data
            )
        except EnqueError as exc:
            service_error(form, exc)
        else:
            messages.success(request, f"{setting.label} {obj.name} added.")
            return redirect(setting.page)
    return _named_page(request, kind=setting.kind, create_form=form, status=400)


def _named_edit(request: HttpRequest, setting: _NamedSetting, pk: int) -> HttpResponse:
    obj = _get_or_404(setting.model.objects.for_workspace(request.workspace), pk)
    form = setting.form_class(request.POST, prefix=f"e{pk}")
    if form.is_valid():
        try:
            setting.update(
                workspace=request.workspace,
                actor=request.agent,
                **{setting.field: obj},
                **form.cleaned_data,
            )
        except EnqueError as exc:
            service_error(form, exc)
        else:
            messages.success(request, f"{setting.label} {obj.name} saved.")
            return redirect(setting.page)
    return _named_page(request, kind=setting.kind, edit=(pk, form), status=400)


def _named_delete(request: HttpRequest, setting: _NamedSetting, pk: int) -> HttpResponse:
    obj = _get_or_404(setting.model.objects.for_workspace(request.workspace), pk)
    setting.delete(workspace=request.workspace, actor=request.agent, **{setting.field: obj})
    messages.success(request, f"{setting.label} {obj.name} deleted{setting.deleted_note}.")
    return redirect(setting.page)


@require_http_methods(["GET", "POST"])
@admin_view
def categories(request: HttpRequest) -> HttpResponse:
    return _named_list(request, _CATEGORIES)


@require_POST
@admin_view
def category_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _named_edit(request, _CATEGORIES, pk)


@require_POST
@admin_view
def category_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return _named_delete(request, _CATEGORIES, pk)


@require_http_methods(["GET", "POST"])
@admin_view
def tags(request: HttpRequest) -> HttpResponse:
    return _named_list(request, _TAGS)


@require_POST
@admin_view
def tag_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _named_edit(request, _TAGS, pk)


@require_POST
@admin_view
def tag_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return _named_delete(request, _TAGS, pk)


# --- Canned replies --------------------------------------------------------------------------


def _categories(request: HttpRequest) -> list[Category]:
    return list(Category.objects.for_workspace(request.workspace).order_by("name", "id"))


def _placeholders() -> list[str]:
    return [f"{{{{{name}}}}}" for name in PLACEHOLDERS]


@require_http_methods(["GET", "POST"])
@admin_view
def canned_replies(request: HttpRequest) -> HttpResponse:
    """The shared canned replies and the admin's own personal ones (anyone else's personal
    replies are theirs alone), and a form to add one."""
    categories = _categories(request)
    form = CannedReplyForm(request.POST or None, workspace=request.workspace, categories=categories)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                canned = ticket_services.canned_reply_create(
                    workspace=request.workspace, actor=request.agent, **form.cleaned_data
                )
            except EnqueError as exc:
                service_error(form, exc)
            else:
                messages.success(request, f"Canned reply “{canned.title}” added.")
                return redirect("ui:settings_canned_replies")
    # One query: the replies with their category and owner.
    replies = list(canned_replies_for(agent=request.agent).order_by("title", "id"))
    return _settings_page(
        request,
        "canned_replies.html",
        "canned_replies",
        {
            "replies": replies,
            "form": form,
            "creating": request.method == "POST",
            "placeholders": _placeholders(),
        },
        status=status,
    )


def _canned_or_404(request: HttpRequest, pk: int) -> CannedReply:
    return _get_or_404(canned_replies_for(agent=request.agent), pk)


@require_http_methods(["GET", "POST"])
@admin_view
def canned_reply_edit(request: HttpRequest, pk: int) -> HttpResponse:
    canned = _canned_or_404(request, pk)
    initial = {
        "title": canned.title,
        "body": canned.body,
        "category": canned.category_id,
        "shared": canned.owner_id is None,
    }
    form = CannedReplyForm(
        request.POST or None,
        initial=initial,
        workspace=request.workspace,
        categories=_categories(request),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                ticket_services.canned_reply_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    canned_reply=canned,
                    **form.cleaned_data,
                )
            except EnqueError as exc:
                service_error(form, exc)
                canned = _canned_or_404(request, pk)
            else:
                messages.success(request, f"Canned reply “{canned.title}” saved.")
                return redirect("ui:settings_canned_replies")
    return _settings_page(
        request,
        "canned_reply_edit.html",
        "canned_replies",
        {"canned": canned, "form": form, "placeholders": _placeholders()},
        status=status,
    )


@require_POST
@admin_view
def canned_reply_delete(request: HttpRequest, pk: int) -> HttpResponse:
    canned = _canned_or_404(request, pk)
    ticket_services.canned_reply_delete(
        workspace=request.workspace, actor=request.agent, canned_reply=canned
    )
    messages.success(request, f"Canned reply “{canned.title}” deleted.")
    return redirect("ui:settings_canned_replies")


# --- SLA policies and business hours ---------------------------------------------------------


def _policies(request: HttpRequest) -> QuerySet[SLAPolicy]:
    # Two queries: the policies joined to their schedule and conditions, then their targets.
    return automation_selectors.sla_policy_list(workspace=request.workspace).select_related(
        "business_hours", "category", "company", "customer"
    )


@require_GET
@admin_view
def sla(request: HttpRequest) -> HttpResponse:
    policies = list(_policies(request))
    order = {value: i for i, (value, _label) in enumerate(PRIORITIES)}
    labels = dict(PRIORITIES)
    for policy in policies:
        policy.target_rows = [
            (
                labels[t.priority],
                format_duration(t.first_response_minutes),
                format_duration(t.resolution_minutes),
            )
            for t in sorted(policy.targets.all(), key=lambda t: order[t.priority])
        ]
    # Three queries: the schedules, their slots, their holidays.
    schedules = list(
        automation_selectors.business_hours_list(workspace=request.workspace).order_by("name", "id")
    )
    for hours in schedules:
        initial = BusinessHoursForm.initial_for(hours)
        hours.week = [(label, initial[f"day_{value}"]) for value, label in Weekday.choices]
        hours.holiday_count = len(hours.holidays.all())
    return _settings_page(
        request, "sla.html", "sla", {"policies": policies, "schedules": schedules}, status=200
    )


def _policy_form(request: HttpRequest, policy: SLAPolicy | None, data: Any = None) -> SLAPolicyForm:
    workspace = request.workspace
    initial: dict[str, Any] = {"is_active": True}
    if policy is not None:
        initial = {
            "name": policy.name,
            "description": policy.description,
            "is_active": policy.is_active,
            "business_hours": policy.business_hours_id,
            "category": policy.category_id,
            "company": policy.company_id,
            "customer_email": policy.customer.email if policy.customer else "",
        }
        for target in policy.targets.all():
            initial[f"{target.priority}_first_response"] = format_duration(
                target.first_response_minutes
            )
            initial[f"{target.priority}_resolution"] = format_duration(target.resolution_minutes)
    return SLAPolicyForm(
        data,
        initial=initial,
        workspace=workspace,
        hours=list(BusinessHours.objects.for_workspace(workspace).order_by("name", "id")),
        categories=_categories(request),
        companies=list(Company.objects.for_workspace(workspace).order_by("name", "id")),
    )


def _policy_error(form: SLAPolicyForm, exc: EnqueError) -> None:
    """``targets.2.resolution_minutes`` names the third target given: put it on its box."""
    parts = (exc.field or "").split(".")
    if parts[0] == "targets" and len(parts) == 3 and parts[1].isdigit():
        targets = form.cleaned_data.get("targets") or []
        index = int(parts[1])
        if index < len(targets):
            suffix = "resolution" if parts[2] == "resolution_minutes" else "first_response"
            form.add_error(f"{targets[index]['priority']}_{suffix}", exc.message)
            return
    service_error(form, exc, {"customer_id": "customer_email"})


def _policy_values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        "description": data["description"],
        "is_active": data["is_active"],
        "business_hours": data["business_hours"],
        "category": data["category"],
        "company": data["company"],
        "customer": data["customer_email"],
        "targets": data["targets"],
    }


@require_http_methods(["GET", "POST"])
@admin_view
def sla_policy_new(request: HttpRequest) -> HttpResponse:
    form = _policy_form(request, None, request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                policy = automation_services.sla_policy_create(
                    workspace=request.workspace,
                    actor=request.agent,
                    **_policy_values(form.cleaned_data),
                )
            except EnqueError as exc:
                _policy_error(form, exc)
            else:
                messages.success(request, f"SLA policy {policy.name} created.")
                return redirect("ui:settings_sla")
    return _settings_page(
        request, "sla_policy_edit.html", "sla", {"form": form, "policy": None}, status=status
    )


@require_http_methods(["GET", "POST"])
@admin_view
def sla_policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy = _get_or_404(_policies(request), pk)
    form = _policy_form(request, policy, request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                automation_services.sla_policy_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    policy=policy,
                    **_policy_values(form.cleaned_data),
                )
            except EnqueError as exc:
                _policy_error(form, exc)
                policy = _get_or_404(_policies(request), pk)
            else:
                messages.success(request, f"SLA policy {policy.name} saved.")
                return redirect("ui:settings_sla")
    return _settings_page(
        request, "sla_policy_edit.html", "sla", {"form": form, "policy": policy}, status=status
    )


@require_POST
@admin_view
def sla_policy_delete(request: HttpRequest, pk: int) -> HttpResponse:
    policy = _get_or_404(SLAPolicy.objects.for_workspace(request.workspace), pk)
    automation_services.sla_policy_delete(
        workspace=request.workspace, actor=request.agent, policy=policy
    )
    messages.success(request, f"SLA policy {policy.name} deleted.")
    return redirect("ui:settings_sla")


def _hours_error(form: BusinessHoursForm, exc: EnqueError) -> None:
    """``slots.4.opens_at`` names the fifth interval given: put it on its weekday's box."""
    parts = (exc.field or "").split(".")
    if parts[0] == "slots" and len(parts) >= 2 and parts[1].isdigit():
        slots = form.cleaned_data.get("slots") or []
        index = int(parts[1])
        if index < len(slots):
            form.add_error(f"day_{slots[index]['weekday']}", exc.message)
            return
    if parts[0] == "holidays":
        form.add_error("holidays", exc.message)
        return
    service_error(form, exc)


def _hours_values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        "timezone": data["timezone"],
        "is_default": data["is_default"],
        "slots": data["slots"],
        "holidays": data["holiday_rows"],
    }


_WEEKDAYS_9_TO_5 = {f"day_{d}": "09:00-17:00" for d in range(5)}


@require_http_methods(["GET", "POST"])
@admin_view
def business_hours_new(request: HttpRequest) -> HttpResponse:
    form = BusinessHoursForm(
        request.POST or None, initial={"timezone": request.workspace.timezone, **_WEEKDAYS_9_TO_5}
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                hours = automation_services.business_hours_create(
                    workspace=request.workspace,
                    actor=request.agent,
                    **_hours_values(form.cleaned_data),
                )
            except EnqueError as exc:
                _hours_error(form, exc)
            else:
                messages.success(request, f"Business hours {hours.name} created.")
                return redirect("ui:settings_sla")
    return _settings_page(
        request, "business_hours_edit.html", "sla", {"form": form, "hours": None}, status=status
    )


@require_http_methods(["GET", "POST"])
@admin_view
def business_hours_edit(request: HttpRequest, pk: int) -> HttpResponse:
    hours = _get_or_404(automation_selectors.business_hours_list(workspace=request.workspace), pk)
    form = BusinessHoursForm(request.POST or None, initial=BusinessHoursForm.initial_for(hours))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                automation_services.business_hours_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    hours=hours,
                    **_hours_values(form.cleaned_data),
                )
            except EnqueError as exc:
                _hours_error(form, exc)
                hours.refresh_from_db()
            else:
                messages.success(request, f"Business hours {hours.name} saved.")
                return redirect("ui:settings_sla")
    used_by = SLAPolicy.objects.for_workspace(request.workspace).filter(business_hours=hours)
    return _settings_page(
        request,
        "business_hours_edit.html",
        "sla",
        {"form": form, "hours": hours, "used_by": list(used_by.values_list("name", flat=True))},
        status=status,
    )


@require_POST
@admin_view
def business_hours_delete(request: HttpRequest, pk: int) -> HttpResponse:
    hours = _get_or_404(BusinessHours.objects.for_workspace(request.workspace), pk)
    automation_services.business_hours_delete(
        workspace=request.workspace, actor=request.agent, hours=hours
    )
    messages.success(
        request, f"Business hours {hours.name} deleted; policies using them count calendar time."
    )
    return redirect("ui:settings_sla")
