"""Reads of the automation app, each scoped to a workspace (or an agent) and carrying the
joins and prefetches its callers need, so a list's query count does not grow with it."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from automation.models import (
    Automation,
    AutomationRun,
    BusinessHours,
    Macro,
    Notification,
    SLAPolicy,
    Workflow,
)
from workspaces.models import Agent, Workspace


def workflow_list(*, workspace: Workspace) -> QuerySet[Workflow]:
    # One query: the workflows with their automation counts.
    return Workflow.objects.for_workspace(workspace).annotate(automation_count=Count("automations"))


def automation_list(
    *, workspace: Workspace, trigger: str | None = None, workflow: int | None = None
) -> QuerySet[Automation]:
    # Three queries: the rules, their conditions, their actions.
    rules = Automation.objects.for_workspace(workspace).prefetch_related("conditions", "actions")
    if trigger:
        rules = rules.filter(trigger=trigger)
    if workflow is not None:
        rules = rules.filter(workflow_id=workflow)
    return rules


def automation_runs(*, automation: Automation) -> QuerySet[AutomationRun]:
    # One query: the runs with their ticket's number.
    return (
        AutomationRun.objects.filter(automation=automation, workspace_id=automation.workspace_id)
        .select_related("ticket")
        .only(
            "pk",
            "trigger",
            "window_key",
            "status",
            "actions",
            "errors",
            "chain",
            "created_at",
            "workspace_id",
            "automation_id",
            "ticket__number",
        )
    )


def business_hours_list(*, workspace: Workspace) -> QuerySet[BusinessHours]:
    # Three queries: the schedules, their slots, their holidays.
    return BusinessHours.objects.for_workspace(workspace).prefetch_related("slots", "holidays")


def sla_policy_list(*, workspace: Workspace) -> QuerySet[SLAPolicy]:
    # Two queries: the policies, their targets.
    return SLAPolicy.objects.for_workspace(workspace).prefetch_related("targets")


def macros_for(*, agent: Agent, scope: str = "all", q: str = "") -> QuerySet[Macro]:
    """The shared macros and the agent's own. One query (canned reply and owner joined)."""
    macros = (
        Macro.objects.for_workspace(agent.workspace_id)
        .filter(Q(owner__isnull=True) | Q(owner=agent))
        .select_related("canned_reply", "owner__user")
    )
    if scope == "shared":
        macros = macros.filter(owner__isnull=True)
    elif scope == "personal":
        macros = macros.filter(owner=agent)
    if q:
        macros = macros.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return macros


def notifications_for(*, agent: Agent, unread: bool | None = None) -> QuerySet[Notification]:
    # One query: the agent's notifications (ticket number and subject are in ``data``).
    notifications = Notification.objects.filter(workspace_id=agent.workspace_id, recipient=agent)
    if unread is True:
        notifications = notifications.filter(read_at__isnull=True)
    elif unread is False:
        notifications = notifications.filter(read_at__isnull=False)
    return notifications
