"""Admin for tenants and people: workspaces, users, agents, teams, companies, customers.

Scoping, secrets and error handling come from ``enque.admin_base``. Writes with a service
(workspace creation, agent membership and roles, team members, company domains) go through
it; plain settings rows (a team's name, a customer's phone) are saved by the model form.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from enque.admin_base import (
    FILTER_CHOICES_LIMIT,
    ReadOnlyMixin,
    TenantAdmin,
    TenantAdminForm,
    TenantTabularInline,
    acting_actor,
    admin_agent,
    administered_workspace_ids,
    clean_timezone_name,
    copy_saved_state,
    in_scope,
    kept_rows,
    mark_formset_saved,
    related_filter,
    scope_queryset,
    secret_form,
    secret_status,
    workspace_filter,
)
from enque.errors import EnqueError, Forbidden
from workspaces.models import (
    Agent,
    AgentRole,
    Company,
    CompanyDomain,
    Customer,
    IdempotencyKey,
    Invitation,
    Team,
    TeamMembership,
    User,
    Workspace,
)
from workspaces.services import (
    agent_add,
    agent_deactivate,
    agent_set_role,
    company_set_domains,
    team_set_members,
    user_create,
    workspace_create,
)

admin.site.site_header = "Enque administration"
admin.site.site_title = "Enque admin"
admin.site.index_title = "Helpdesk administration"


# --- Users (global: superusers only) ------------------------------------------------------


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class UserWorkspaceFilter(admin.SimpleListFilter):
    title = "workspace"
    parameter_name = "workspace"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[int, str]]:
        return [(w.pk, w.name) for w in Workspace.objects.order_by("name")[:FILTER_CHOICES_LIMIT]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() and self.value().isdigit():
            return queryset.filter(agents__workspace_id=int(self.value()))
        return queryset


class UserAgentInline(ReadOnlyMixin, admin.TabularInline):
    model = Agent
    fields = readonly_fields = ("workspace", "role", "display_name", "is_active", "last_seen_at")
    show_change_link = True
    extra = 0
    verbose_name = "membership"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("workspace", "user")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Superusers only: a user spans workspaces, so no workspace admin may edit one (nor
    grant themselves staff or superuser status). Workspace admins invite people from the
    agent page instead."""

    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_superuser", "is_active", "last_login")
    list_filter = (UserWorkspaceFilter, "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "name")
    readonly_fields = ("last_login", "date_joined")
    autocomplete_fields = ("last_workspace",)
    filter_horizontal = ("groups", "user_permissions")
    inlines = (UserAgentInline,)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "last_workspace", "microsoft_oid")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.inlines

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


# --- Workspaces --------------------------------------------------------------------------


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ("name", "slug", "timezone", "is_active", "default_signature", "signup_domains")

    def clean_timezone(self) -> str:
        return clean_timezone_name(self.cleaned_data["timezone"])


class WorkspaceAddForm(WorkspaceForm):
    owner_email = forms.EmailField(
        label="Owner's email",
        help_text="An existing user, who becomes the workspace's first owner.",
    )

    class Meta:
        model = Workspace
        fields = ("name", "timezone")

    def clean_owner_email(self) -> User:
        email = self.cleaned_data["owner_email"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise forms.ValidationError("No user has this email address; add the user first.")
        return user


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    """Superusers create workspaces (``workspace_create`` makes the owner and the ticket
    counter); a workspace's admins edit its settings. Nobody deletes one here: its history
    is kept. Deactivate it instead."""

    form = WorkspaceForm
    list_display = ("name", "slug", "timezone", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    fieldsets = (
        (None, {"fields": ("name", "slug", "timezone", "is_active")}),
        ("Mail and sign-in", {"fields": ("default_signature", "signup_domains")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    add_fieldsets = ((None, {"fields": ("name", "owner_email", "timezone")}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_queryset(request, super().get_queryset(request), "pk")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = WorkspaceAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        readonly = ["created_at", "updated_at"]
        if not request.user.is_superuser:
            readonly += ["slug", "is_active"]
        return readonly

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or bool(administered_workspace_ids(request))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return True
        if obj is None:
            return bool(administered_workspace_ids(request))
        return in_scope(request, obj.pk)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Workspace, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        workspace = workspace_create(
            name=form.cleaned_data["name"],
            owner=form.cleaned_data["owner_email"],
            timezone_name=form.cleaned_data["timezone"],
        )
        copy_saved_state(workspace, obj)


# --- Agents --------------------------------------------------------------------------------


def _check_owner_change(request: HttpRequest, workspace_id: int, *roles: str) -> None:
    """Only owners (and superusers) grant, remove or deactivate the owner role."""
    if request.user.is_superuser or AgentRole.OWNER not in roles:
        return
    me = admin_agent(request, workspace_id)
    if me is None or me.role != AgentRole.OWNER:
        raise Forbidden("Only an owner can grant or remove the owner role.", code="forbidden")


class AgentAddForm(TenantAdminForm):
    email = forms.EmailField(
        help_text="The person's sign-in address. A user without a password is created if "
        "none exists; they sign in with Microsoft or reset their password."
    )
    name = forms.CharField(required=False, help_text="Used only when a new user is created.")

    class Meta:
        model = Agent
        fields = ("workspace", "role", "display_name")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        workspace, email = cleaned.get("workspace"), cleaned.get("email")
        if workspace and email:
            existing = Agent.objects.filter(
                workspace=workspace, user__email__iexact=email.strip()
            ).first()
            if existing and existing.is_active:
                self.add_error("email", "This person is already an agent of the workspace.")
        return cleaned


@admin.register(Agent)
class AgentAdmin(TenantAdmin):
    """Memberships. Roles and (de)activation go through the workspace services, so the last
    owner is never removed and a deactivated agent's tickets are released. Agents are never
    deleted here: history names them. Deactivate instead."""

    list_display = ("__str__", "user_email", "role", "is_active", "last_seen_at", "workspace")
    list_filter = (workspace_filter(), "role", "is_active")
    list_select_related = ("user", "workspace")
    search_fields = ("display_name", "user__email", "user__name")
    actions = ("deactivate_agents",)
    fieldsets = (
        (None, {"fields": ("workspace", "user", "role", "is_active")}),
        ("In this workspace", {"fields": ("display_name", "signature")}),
        ("Activity", {"fields": ("last_seen_at", "created_at", "updated_at")}),
    )
    add_fieldsets = ((None, {"fields": ("workspace", "email", "name", "role", "display_name")}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user", "workspace")

    @admin.display(description="email", ordering="user__email")
    def user_email(self, obj: Agent) -> str:
        return obj.user.email

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = AgentAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None:
            readonly = [*readonly, "user", "last_seen_at", "created_at", "updated_at"]
        return readonly

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        self.check_workspace(request, obj)
        if not change:
            data = form.cleaned_data
            _check_owner_change(request, obj.workspace_id, data["role"])
            email = data["email"].strip().lower()
            user = User.objects.filter(email__iexact=email).first() or user_create(
                email=email, name=data.get("name") or ""
            )
            agent = agent_add(
                workspace=data["workspace"],
                user=user,
                role=data["role"],
                display_name=data.get("display_name") or "",
            )
            copy_saved_state(agent, obj)
            return
        before = Agent.objects.get(pk=obj.pk)
        if "role" in form.changed_data:
            _check_owner_change(request, obj.workspace_id, before.role, obj.role)
        if "is_active" in form.changed_data and before.role == AgentRole.OWNER:
            _check_owner_change(request, obj.workspace_id, before.role)
        obj.save(update_fields=["display_name", "signature", "updated_at"])
        if obj.role != before.role:
            agent_set_role(agent=obj, role=obj.role)
        if before.is_active and not obj.is_active:
            agent_deactivate(agent=obj)
        elif obj.is_active and not before.is_active:
            agent_add(workspace=obj.workspace, user=obj.user, role=obj.role)

    @admin.action(description="Deactivate selected agents (their tickets become unassigned)")
    def deactivate_agents(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, failed = 0, []
        for agent in queryset.filter(is_active=True).select_related("user"):
            try:
                acting_actor(request, agent.workspace_id)  # only admins of that workspace
                if agent.role == AgentRole.OWNER:
                    _check_owner_change(request, agent.workspace_id, agent.role)
                agent_deactivate(agent=agent)
                done += 1
            except EnqueError as exc:
                failed.append(f"{agent}: {exc.message}")
        if done:
            self.message_user(request, f"Deactivated {done} agent(s).", messages.SUCCESS)
        for line in failed:
            self.message_user(request, line, messages.ERROR)


# --- Teams ---------------------------------------------------------------------------------


class TeamMembershipInline(TenantTabularInline):
    model = TeamMembership
    fields = ("agent",)
    autocomplete_fields = ("agent",)
    verbose_name = "member"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("agent__user")


@admin.register(Team)
class TeamAdmin(TenantAdmin):
    list_display = ("name", "member_count", "workspace")
    list_filter = (workspace_filter(),)
    list_select_related = ("workspace",)
    search_fields = ("name",)
    form = secret_form(Team, {"teams_webhook_url": "Microsoft Teams webhook URL"})
    fields = (
        "workspace",
        "name",
        "description",
        "teams_webhook_status",
        "teams_webhook_url",
        "teams_webhook_url_clear",
    )
    readonly_fields = ("teams_webhook_status",)
    inlines = (TeamMembershipInline,)
    teams_webhook_status = secret_status("teams_webhook_url", "Teams webhook")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Team) -> int:
        return obj.member_count

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not TeamMembership:
            return super().save_formset(request, form, formset, change)
        team_set_members(team=form.instance, members=[row["agent"] for row in kept_rows(formset)])
        mark_formset_saved(formset)
        return None


@admin.register(TeamMembership)
class TeamMembershipAdmin(TenantAdmin):
    list_display = ("agent", "team", "workspace", "created_at")
    list_filter = (workspace_filter(), related_filter("team"))
    list_select_related = ("agent__user", "team", "workspace")
    search_fields = ("team__name", "agent__user__email", "agent__display_name")
    autocomplete_fields = ("team", "agent")


# --- Companies and customers ---------------------------------------------------------------


class CompanyDomainForm(TenantAdminForm):
    def clean_domain(self) -> str:
        domain = self.cleaned_data["domain"].strip().lower().lstrip("@").rstrip(".")
        if "." not in domain or "@" in domain or " " in domain:
            raise forms.ValidationError("Enter a mail domain, such as example.com.")
        return domain


class CompanyDomainInline(TenantTabularInline):
    model = CompanyDomain
    form = CompanyDomainForm
    fields = ("domain",)
    verbose_name = "mail domain"


@admin.register(Company)
class CompanyAdmin(TenantAdmin):
    list_display = ("name", "domain_list", "workspace", "created_at")
    list_filter = (workspace_filter(),)
    list_select_related = ("workspace",)
    search_fields = ("name", "domains__domain")
    fields = ("workspace", "name", "notes")
    inlines = (CompanyDomainInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("domains")

    @admin.display(description="domains")
    def domain_list(self, obj: Company) -> str:
        return ", ".join(d.domain for d in obj.domains.all())

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not CompanyDomain:
            return super().save_formset(request, form, formset, change)
        if formset.has_changed():
            company_set_domains(
                company=form.instance, domains=[row["domain"] for row in kept_rows(formset)]
            )
        mark_formset_saved(formset)
        return None


@admin.register(CompanyDomain)
class CompanyDomainAdmin(TenantAdmin):
    form = CompanyDomainForm
    list_display = ("domain", "company", "workspace")
    list_filter = (workspace_filter(),)
    list_select_related = ("company", "workspace")
    search_fields = ("domain", "company__name")
    autocomplete_fields = ("company",)


@admin.register(Customer)
class CustomerAdmin(TenantAdmin):
    list_display = ("email", "name", "company", "email_bounced_at", "created_at", "workspace")
    list_filter = (
        workspace_filter(),
        related_filter("company"),
        ("email_bounced_at", admin.EmptyFieldListFilter),
    )
    list_select_related = ("company", "workspace")
    search_fields = ("email", "name")
    autocomplete_fields = ("company",)
    fields = ("workspace", "email", "name", "company", "phone", "notes", "email_bounced_at")
    # A count over millions of rows on every page load is not worth it.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


# --- Invitations and API idempotency keys (written by their services only) -----------------


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    """Read-only: inviting sends mail, so it belongs to the invitation service. Deleting a
    pending invitation revokes its link. The token's hash is never shown."""

    fields = readonly_fields = (
        "workspace",
        "email",
        "role",
        "team_ids",
        "invited_by",
        "expires_at",
        "accepted_at",
        "created_at",
    )
    list_display = (
        "email",
        "role",
        "pending",
        "expires_at",
        "accepted_at",
        "invited_by",
        "workspace",
    )
    list_filter = (workspace_filter(), "role", ("accepted_at", admin.EmptyFieldListFilter))
    list_select_related = ("invited_by__user", "workspace")
    search_fields = ("email",)

    @admin.display(description="pending", boolean=True)
    def pending(self, obj: Invitation) -> bool:
        return obj.is_pending

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyMixin, TenantAdmin):
    """The API's replay records: shown for support, purged by their own task."""

    fields = readonly_fields = (
        "workspace",
        "agent",
        "key",
        "fingerprint",
        "response_status",
        "response_headers",
        "response_body",
        "expires_at",
        "created_at",
    )
    list_display = ("key", "agent", "response_status", "expires_at", "workspace")
    list_filter = (workspace_filter(), "response_status")
    list_select_related = ("agent__user", "workspace")
    search_fields = ("=key",)
    show_full_result_count = False
