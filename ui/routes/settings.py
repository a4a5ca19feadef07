"""Settings pages (admins): workspace, agents, teams, categories, tags, canned replies, SLA."""

from django.urls import URLPattern, path

from ui.views import settings as views

urlpatterns: list[URLPattern] = [
    path("settings", views.settings_home, name="settings"),
    path("settings/workspace", views.workspace_settings, name="settings_workspace"),
    # Agents and invitations.
    path("settings/agents", views.agents, name="settings_agents"),
    path("settings/agents/invite", views.agent_invite, name="settings_agent_invite"),
    path("settings/agents/<int:pk>/role", views.agent_role, name="settings_agent_role"),
    path(
        "settings/agents/<int:pk>/deactivate",
        views.agent_deactivate,
        name="settings_agent_deactivate",
    ),
    path(
        "settings/agents/<int:pk>/reactivate",
        views.agent_reactivate,
        name="settings_agent_reactivate",
    ),
    path(
        "settings/invitations/<int:pk>/resend",
        views.invitation_resend,
        name="settings_invitation_resend",
    ),
    path(
        "settings/invitations/<int:pk>/revoke",
        views.invitation_revoke,
        name="settings_invitation_revoke",
    ),
    # Teams.
    path("settings/teams", views.teams, name="settings_teams"),
    path("settings/teams/<int:pk>", views.team_edit, name="settings_team"),
    path("settings/teams/<int:pk>/delete", views.team_delete, name="settings_team_delete"),
    # Categories and tags.
    path("settings/categories", views.categories, name="settings_categories"),
    path("settings/categories/<int:pk>", views.category_edit, name="settings_category"),
    path(
        "settings/categories/<int:pk>/delete",
        views.category_delete,
        name="settings_category_delete",
    ),
    path("settings/tags", views.tags, name="settings_tags"),
    path("settings/tags/<int:pk>", views.tag_edit, name="settings_tag"),
    path("settings/tags/<int:pk>/delete", views.tag_delete, name="settings_tag_delete"),
    # Canned replies.
    path("settings/canned-replies", views.canned_replies, name="settings_canned_replies"),
    path(
        "settings/canned-replies/<int:pk>",
        views.canned_reply_edit,
        name="settings_canned_reply",
    ),
    path(
        "settings/canned-replies/<int:pk>/delete",
        views.canned_reply_delete,
        name="settings_canned_reply_delete",
    ),
    # SLA policies and business hours.
    path("settings/sla", views.sla, name="settings_sla"),
    path("settings/sla/policies/new", views.sla_policy_new, name="settings_sla_policy_new"),
    path("settings/sla/policies/<int:pk>", views.sla_policy_edit, name="settings_sla_policy"),
    path(
        "settings/sla/policies/<int:pk>/delete",
        views.sla_policy_delete,
        name="settings_sla_policy_delete",
    ),
    path("settings/sla/hours/new", views.business_hours_new, name="settings_business_hours_new"),
    path("settings/sla/hours/<int:pk>", views.business_hours_edit, name="settings_business_hours"),
    path(
        "settings/sla/hours/<int:pk>/delete",
        views.business_hours_delete,
        name="settings_business_hours_delete",
    ),
]
