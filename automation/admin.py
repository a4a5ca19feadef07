"""Admin for rules (workflows, automations and their conditions and actions), SLA policies
and business hours."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from automation.models import (
    Automation,
    AutomationAction,
    AutomationCondition,
    BusinessHours,
    BusinessHoursSlot,
    Holiday,
    SLAPolicy,
    SLATarget,
    Workflow,
)
from enque.admin_base import (
    ReadOnlyMixin,
    TenantAdmin,
    TenantAdminForm,
    TenantTabularInline,
    clean_timezone_name,
    related_filter,
    workspace_filter,
)

# --- Workflows and automations ---------------------------------------------------------------


class WorkflowAutomationInline(ReadOnlyMixin, TenantTabularInline):
    """A workflow's rules, in order; each is edited on its own page."""

    model = Automation
    fields = readonly_fields = ("name", "trigger", "match", "is_active", "position", "run_count")
    show_change_link = True
    verbose_name_plural = "automations"


@admin.register(Workflow)
class WorkflowAdmin(TenantAdmin):
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


class AutomationConditionInline(TenantTabularInline):
    model = AutomationCondition
    fields = ("position", "field", "operator", "value")
    verbose_name_plural = "conditions"


class AutomationActionInline(TenantTabularInline):
    model = AutomationAction
    fields = ("position", "action_type", "params")
    verbose_name_plural = "actions (run in order)"


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
class AutomationAdmin(TenantAdmin):
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
class AutomationConditionAdmin(TenantAdmin):
    list_display = ("automation", "position", "field", "operator", "value", "workspace")
    list_filter = (workspace_filter(), "field", "operator")
    list_select_related = ("automation", "workspace")
    search_fields = ("automation__name",)
    autocomplete_fields = ("automation",)


@admin.register(AutomationAction)
class AutomationActionAdmin(TenantAdmin):
    list_display = ("automation", "position", "action_type", "workspace")
    list_filter = (workspace_filter(), "action_type")
    list_select_related = ("automation", "workspace")
    search_fields = ("automation__name",)
    autocomplete_fields = ("automation",)


# --- Business hours and SLA --------------------------------------------------------------------


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
