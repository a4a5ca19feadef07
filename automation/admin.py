"""Admin for rules (workflows, automations and their conditions and actions), SLA policies
and business hours, macros and notifications; and, read-only, what the engine records
(firings, webhook deliveries, SLA clocks, round-robin cursors, digests).

Conditions and actions are checked as the API checks them (automation.conditions /
automation.actions): a field, operator, value or parameter that does not fit is a form
error on that row.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from automation import actions as action_types
from automation import conditions as condition_types
from automation import engine
from automation.models import (
    AssignmentCursor,
    Automation,
    AutomationAction,
    AutomationCondition,
    AutomationRun,
    BusinessHours,
    BusinessHoursSlot,
    DigestDelivery,
    Holiday,
    Macro,
    Notification,
    NotificationPreference,
    SLAPolicy,
    SLATarget,
    TicketSLA,
    WebhookDelivery,
    Workflow,
)
from enque.admin_base import (
    ReadOnlyMixin,
    TenantAdmin,
    TenantAdminForm,
    TenantInlineFormSet,
    TenantTabularInline,
    clean_timezone_name,
    related_filter,
    secret_form,
    secret_status,
    workspace_filter,
)
from enque.errors import InvalidInput

# --- Workflows and automations ----------------------------------------------------------------


class RulesChangedMixin:
    """Saving or deleting a rule (or a part of one) here reloads the engine's cached rules
    (automation.engine.rules_changed), as the services do."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        engine.rules_changed(obj.workspace_id)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        engine.rules_changed(form.instance.workspace_id)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        workspace_id = obj.workspace_id
        super().delete_model(request, obj)  # type: ignore[misc]
        engine.rules_changed(workspace_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        workspace_ids = set(queryset.values_list("workspace_id", flat=True))
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        for workspace_id in workspace_ids:
            engine.rules_changed(workspace_id)


class WorkflowAutomationInline(ReadOnlyMixin, TenantTabularInline):
    """A workflow's rules, in order; each is edited on its own page."""

    model = Automation
    fields = readonly_fields = ("name", "trigger", "match", "is_active", "position", "run_count")
    show_change_link = True
    verbose_name_plural = "automations"


@admin.register(Workflow)
class WorkflowAdmin(RulesChangedMixin, TenantAdmin):
    list_display = ("name", "trigger", "is_active", "position", "automation_count", "workspace")
    list_filter = (workspace_filter(), "trigger", "is_active")
    list_select_related = ("workspace",)
    search_fields = ("name",)
    inlines = (WorkflowAutomationInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(automation_count=Count("automations"))

    @admin.display(description="automations", ordering="automation_count")
    def automation_count(self, obj: Workflow) -> int:
        return obj.automation_count


def _form_field(error: InvalidInput, default: str) -> str:
    """The form field a service error names (``conditions.0.value`` -> ``value``)."""
    parts = (error.field or "").split(".")
    for name in ("field", "operator", "value", "action_type", "params"):
        if name in parts:
            return name
    return default


class ConditionFormSet(TenantInlineFormSet):
    def clean(self) -> None:
        super().clean()
        workspace_id = self.instance.workspace_id
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not workspace_id:
                continue
            try:
                form.instance.value = condition_types.validate(
                    data.get("field"),
                    data.get("operator"),
                    data.get("value"),
                    workspace_id=workspace_id,
                )
            except InvalidInput as exc:
                form.add_error(_form_field(exc, "value"), exc.message)


class ActionFormSet(TenantInlineFormSet):
    def clean(self) -> None:
        super().clean()
        workspace_id = self.instance.workspace_id
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not workspace_id:
                continue
            try:
                form.instance.params = action_types.validate(
                    data.get("action_type"), data.get("params"), workspace_id=workspace_id
                )
            except InvalidInput as exc:
                form.add_error(_form_field(exc, "params"), exc.message)


class AutomationConditionInline(TenantTabularInline):
    model = AutomationCondition
    formset = ConditionFormSet
    fields = ("position", "field", "operator", "value")
    verbose_name_plural = "conditions"


class AutomationActionInline(TenantTabularInline):
    model = AutomationAction
    formset = ActionFormSet
    fields = ("position", "action_type", "params")
    verbose_name_plural = "actions (run in order; a webhook's secret is set on the action's page)"


class AutomationForm(TenantAdminForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        workflow, trigger = cleaned.get("workflow"), cleaned.get("trigger")
        if workflow is not None and trigger and workflow.trigger != trigger:
            self.add_error(
                "trigger",
                f"The workflow “{workflow}” runs on “{workflow.get_trigger_display()}”; "
                "its automations must use the same trigger.",
            )
        return cleaned


@admin.register(Automation)
class AutomationAdmin(RulesChangedMixin, TenantAdmin):
    form = AutomationForm
    list_display = (
        "name",
        "trigger",
        "workflow",
        "match",
        "is_active",
        "position",
        "run_count",
        "last_run_at",
        "workspace",
    )
    list_filter = (workspace_filter(), "trigger", "is_active", related_filter("workflow"))
    list_select_related = ("workflow", "workspace")
    search_fields = ("name", "description")
    readonly_fields = ("run_count", "last_run_at")
    inlines = (AutomationConditionInline, AutomationActionInline)


@admin.register(AutomationCondition)
class AutomationConditionAdmin(RulesChangedMixin, TenantAdmin):
    list_display = ("automation", "position", "field", "operator", "value", "workspace")
    list_filter = (workspace_filter(), "field", "operator")
    list_select_related = ("automation", "workspace")
    search_fields = ("automation__name",)
    autocomplete_fields = ("automation",)


class AutomationActionForm(secret_form(AutomationAction, {"secret": "webhook signing secret"})):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        automation = cleaned.get("automation")
        if automation is not None and cleaned.get("action_type"):
            try:
                cleaned["params"] = action_types.validate(
                    cleaned["action_type"],
                    cleaned.get("params"),
                    workspace_id=automation.workspace_id,
                )
            except InvalidInput as exc:
                self.add_error(_form_field(exc, "params"), exc.message)
        return cleaned


@admin.register(AutomationAction)
class AutomationActionAdmin(RulesChangedMixin, TenantAdmin):
    form = AutomationActionForm
    list_display = ("automation", "position", "action_type", "secret_state", "workspace")
    list_filter = (workspace_filter(), "action_type")
    list_select_related = ("automation", "workspace")
    search_fields = ("automation__name",)
    autocomplete_fields = ("automation",)
    secret_state = secret_status("secret", "signing secret")


# --- Business hours and SLA -------------------------------------------------------------------


class BusinessHoursForm(TenantAdminForm):
    def clean_timezone(self) -> str:
        return clean_timezone_name(self.cleaned_data["timezone"])


class BusinessHoursSlotInline(TenantTabularInline):
    model = BusinessHoursSlot
    fields = ("weekday", "opens_at", "closes_at")
    verbose_name_plural = "weekly opening hours"


class HolidayInline(TenantTabularInline):
    model = Holiday
    fields = ("date", "name")


@admin.register(BusinessHours)
class BusinessHoursAdmin(TenantAdmin):
    form = BusinessHoursForm
    list_display = ("name", "timezone", "is_default", "workspace")
    list_filter = (workspace_filter(), "is_default")
    list_select_related = ("workspace",)
    search_fields = ("name",)
    inlines = (BusinessHoursSlotInline, HolidayInline)


@admin.register(BusinessHoursSlot)
class BusinessHoursSlotAdmin(TenantAdmin):
    list_display = ("business_hours", "weekday", "opens_at", "closes_at", "workspace")
    list_filter = (workspace_filter(), "weekday")
    list_select_related = ("business_hours", "workspace")


@admin.register(Holiday)
class HolidayAdmin(TenantAdmin):
    list_display = ("date", "name", "business_hours", "workspace")
    list_filter = (workspace_filter(), related_filter("business_hours"))
    list_select_related = ("business_hours", "workspace")
    search_fields = ("name",)
    date_hierarchy = "date"


class SLATargetInline(TenantTabularInline):
    model = SLATarget
    fields = ("priority", "first_response_minutes", "resolution_minutes")
    verbose_name_plural = "targets per priority"


@admin.register(SLAPolicy)
class SLAPolicyAdmin(TenantAdmin):
    list_display = (
        "name",
        "is_active",
        "position",
        "business_hours",
        "customer",
        "company",
        "category",
        "workspace",
    )
    list_filter = (workspace_filter(), "is_active")
    list_select_related = ("business_hours", "customer", "company", "category", "workspace")
    search_fields = ("name",)
    autocomplete_fields = ("customer", "company")
    inlines = (SLATargetInline,)


@admin.register(SLATarget)
class SLATargetAdmin(TenantAdmin):
    list_display = (
        "policy",
        "priority",
        "first_response_minutes",
        "resolution_minutes",
        "workspace",
    )
    list_filter = (workspace_filter(), "priority")
    list_select_related = ("policy", "workspace")
    search_fields = ("policy__name",)


# --- What the engine records (read-only) ------------------------------------------------------


@admin.register(AutomationRun)
class AutomationRunAdmin(ReadOnlyMixin, TenantAdmin):
    """Each firing of a rule: the actions done and the errors."""

    list_display = ("created_at", "automation", "ticket", "trigger", "status", "workspace")
    list_filter = (workspace_filter(), "status", "trigger")
    list_select_related = ("automation", "ticket", "workspace")
    search_fields = ("automation__name",)
    show_full_result_count = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = (
        "created_at",
        "automation",
        "status",
        "attempts",
        "response_status",
        "next_attempt_at",
        "workspace",
    )
    list_filter = (workspace_filter(), "status")
    list_select_related = ("automation", "workspace")
    show_full_result_count = False


@admin.register(TicketSLA)
class TicketSLAAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = (
        "ticket",
        "policy",
        "paused_at",
        "paused_seconds",
        "first_response_breached_at",
        "resolution_breached_at",
        "workspace",
    )
    list_filter = (workspace_filter(), related_filter("policy"))
    list_select_related = ("ticket", "policy", "workspace")
    show_full_result_count = False


@admin.register(AssignmentCursor)
class AssignmentCursorAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ("team", "last_agent", "updated_at", "workspace")
    list_filter = (workspace_filter(),)
    list_select_related = ("team", "last_agent__user", "workspace")


@admin.register(DigestDelivery)
class DigestDeliveryAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ("period_start", "kind", "agent", "status", "sent_at", "workspace")
    list_filter = (workspace_filter(), "kind", "status")
    list_select_related = ("agent__user", "workspace")
    date_hierarchy = "period_start"


# --- Macros and notifications -----------------------------------------------------------------


class MacroForm(TenantAdminForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        workspace = cleaned.get("workspace") or getattr(self.instance, "workspace", None)
        actions = cleaned.get("actions")
        if workspace is None or actions is None:
            return cleaned
        if not isinstance(actions, list):
            self.add_error("actions", "A list of {action_type, params} objects.")
            return cleaned
        checked = []
        for i, item in enumerate(actions):
            try:
                if not isinstance(item, dict):
                    raise InvalidInput("An action is an object.", field=f"actions.{i}")
                params = action_types.validate(
                    item.get("action_type"),
                    item.get("params", {}),
                    workspace_id=workspace.pk,
                    where=f"actions.{i}",
                    for_macro=True,
                )
            except InvalidInput as exc:
                self.add_error("actions", f"{exc.field}: {exc.message}")
                return cleaned
            checked.append({"action_type": item["action_type"], "params": params})
        cleaned["actions"] = checked
        return cleaned


@admin.register(Macro)
class MacroAdmin(TenantAdmin):
    form = MacroForm
    list_display = ("name", "owner", "canned_reply", "usage_count", "position", "workspace")
    list_filter = (workspace_filter(), ("owner", admin.EmptyFieldListFilter))
    list_select_related = ("owner__user", "canned_reply", "workspace")
    search_fields = ("name", "description")
    readonly_fields = ("usage_count",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ("created_at", "recipient", "kind", "ticket", "read_at", "workspace")
    list_filter = (workspace_filter(), "kind", ("read_at", admin.EmptyFieldListFilter))
    list_select_related = ("recipient__user", "ticket", "workspace")
    show_full_result_count = False


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(TenantAdmin):
    list_display = ("agent", "kind", "in_app", "email", "workspace")
    list_filter = (workspace_filter(), "kind", "in_app", "email")
    list_select_related = ("agent__user", "workspace")
    search_fields = ("agent__display_name", "agent__user__email")
