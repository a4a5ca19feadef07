"""Settings pages for automations and workflows: the rule editor and its dry run."""

from django.urls import URLPattern, path

from ui.views import automations

urlpatterns: list[URLPattern] = [
    path("settings/automations", automations.automation_list, name="settings_automations"),
    path("settings/automations/new", automations.automation_new, name="settings_automation_new"),
    # htmx: one condition or action row for the chosen field or action type.
    path("settings/automations/row", automations.automation_row, name="settings_automation_row"),
    # htmx: the rule as edited (unsaved) against recent tickets; changes nothing.
    path(
        "settings/automations/dry-run",
        automations.automation_dry_run,
        name="settings_automation_dry_run",
    ),
    path("settings/automations/<int:pk>", automations.automation_edit, name="settings_automation"),
    path(
        "settings/automations/<int:pk>/toggle",
        automations.automation_toggle,
        name="settings_automation_toggle",
    ),
    path(
        "settings/automations/<int:pk>/delete",
        automations.automation_delete,
        name="settings_automation_delete",
    ),
    path("settings/workflows/new", automations.workflow_new, name="settings_workflow_new"),
    path("settings/workflows/<int:pk>", automations.workflow_edit, name="settings_workflow"),
    path(
        "settings/workflows/<int:pk>/toggle",
        automations.workflow_toggle,
        name="settings_workflow_toggle",
    ),
    path(
        "settings/workflows/<int:pk>/delete",
        automations.workflow_delete,
        name="settings_workflow_delete",
    ),
]
