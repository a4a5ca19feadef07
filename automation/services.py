"""Every write of the automation app: rules, workflows, business hours, SLA policies,
macros, notifications.

Configuration (workflows, automations, business hours, SLA policies, shared macros) is the
admins'; a personal macro is its owner's alone (to anyone else it does not exist). Nested
rows (a rule's conditions and actions, a schedule's slots and holidays, a policy's
targets) are given whole and replace the old ones, validated first: a field, operator,
value or parameter that does not fit is a 400 naming it (``conditions.2.operator``,
``actions.0.params.team_id``). Every object a client names is checked to be in the
workspace. Names are unique per workspace without regard to case (409 ``duplicate``).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import date, time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from automation import actions as action_types
from automation import conditions as condition_types
from automation import engine
from automation.models import (
    ActionType,
    Automation,
    AutomationAction,
    AutomationCondition,
    BusinessHours,
    BusinessHoursSlot,
    Holiday,
    Macro,
    MatchMode,
    Notification,
    NotificationKind,
    NotificationPreference,
    SLAPolicy,
    SLATarget,
    Trigger,
    Workflow,
)
from enque.errors import Conflict, Forbidden, InvalidInput, NotFound
from tickets import services as ticket_services
from tickets.actors import Actor
from tickets.models import (
    CannedReply,
    Category,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketPriority,
)
from tickets.placeholders import PlaceholderContext, render_placeholders
from workspaces.models import Agent, Company, Customer, Team, Workspace
from workspaces.services import ensure_same_workspace

UNSET: Any = ticket_services.UNSET
MAX_CONDITIONS = 50
MAX_ACTIONS = 30
MAX_SLOTS = 70
MAX_HOLIDAYS = 400
MAX_TARGET_MINUTES = 366 * 24 * 60


# --- Who may act ------------------------------------------------------------------------------


def _member(workspace: Workspace, actor: Agent) -> None:
    if actor.workspace_id != workspace.pk or not actor.is_active:
        raise NotFound("Not found.")


def _admin(workspace: Workspace, actor: Agent) -> None:
    _member(workspace, actor)
    if not actor.is_admin:
        raise Forbidden(
            "Only an owner or admin of the workspace may do this.", code="admin_required"
        )


def _own(workspace: Workspace, obj: Any) -> None:
    if obj.workspace_id != workspace.pk:
        raise NotFound("Not found.")


def _name(value: str, *, max_length: int = 200) -> str:
    name = " ".join(str(value).split())
    if not name:
        raise InvalidInput("A name is required.", code="required", field="name")
    if len(name) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", code="max_length", field="name")
    return name


def _choice(value: str, choices: type, field: str) -> str:
    if value not in choices.values:
        raise InvalidInput(
            f"{field} must be one of: {', '.join(choices.values)}.",
            code="invalid_choice",
            field=field,
        )
    return value


def _save(obj: Any, *, what: str, update_fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            obj.save(update_fields=update_fields)
    except IntegrityError:
        raise Conflict(f"A {what} with this name exists.", code="duplicate", field="name") from None


def _apply(obj: Any, changes: dict[str, Any]) -> list[str]:
    fields = []
    for name, value in changes.items():
        if value is not UNSET:
            setattr(obj, name, value)
            fields.append(name)
    return fields


# --- Workflows --------------------------------------------------------------------------------


def workflow_create(
    *,
    workspace: Workspace,
    actor: Agent,
    name: str,
    trigger: str,
    description: str = "",
    stop_after_first_match: bool = False,
    is_active: bool = True,
    position: int | None = None,
) -> Workflow:
    _admin(workspace, actor)
    workflow = Workflow(
        workspace=workspace,
        name=_name(name),
        trigger=_choice(trigger, Trigger, "trigger"),
        description=description.strip(),
        stop_after_first_match=stop_after_first_match,
        is_active=is_active,
        position=position
        if position is not None
        else Workflow.objects.for_workspace(workspace).count(),
    )
    _save(workflow, what="workflow")
    engine.rules_changed(workspace.pk)
    return workflow


def workflow_update(
    *,
    workspace: Workspace,
    actor: Agent,
    workflow: Workflow,
    name: str = UNSET,
    trigger: str = UNSET,
    description: str = UNSET,
    stop_after_first_match: bool = UNSET,
    is_active: bool = UNSET,
    position: int = UNSET,
) -> Workflow:
    _admin(workspace, actor)
    _own(workspace, workflow)
    if trigger is not UNSET:
        _choice(trigger, Trigger, "trigger")
        if workflow.automations.exclude(trigger=trigger).exists():
            raise Conflict(
                "The workflow's automations run on another trigger: change or move them first.",
                code="workflow_in_use",
                field="trigger",
            )
    fields = _apply(
        workflow,
        {
            "name": _name(name) if name is not UNSET else UNSET,
            "trigger": trigger,
            "description": description.strip() if description is not UNSET else UNSET,
            "stop_after_first_match": stop_after_first_match,
            "is_active": is_active,
            "position": position,
        },
    )
    if fields:
        _save(workflow, what="workflow", update_fields=[*fields, "updated_at"])
        engine.rules_changed(workspace.pk)
    return workflow


def workflow_delete(*, workspace: Workspace, actor: Agent, workflow: Workflow) -> None:
    """Delete a workflow; its automations stay, outside any workflow."""
    _admin(workspace, actor)
    _own(workspace, workflow)
    with transaction.atomic():
        workflow.delete()
        engine.rules_changed(workspace.pk)


# --- Automations ------------------------------------------------------------------------------


def _conditions(workspace: Workspace, items: Sequence[dict[str, Any]]) -> list[AutomationCondition]:
    if len(items) > MAX_CONDITIONS:
        raise InvalidInput(
            f"At most {MAX_CONDITIONS} conditions.", code="max_length", field="conditions"
        )
    rows = []
    for i, item in enumerate(items):
        field, operator = item.get("field"), item.get("operator")
        value = condition_types.validate(
            field,
            operator,
            item.get("value"),
            workspace_id=workspace.pk,
            where=f"conditions.{i}",
        )
        rows.append(
            AutomationCondition(
                workspace=workspace, field=field, operator=operator, value=value, position=i
            )
        )
    return rows


def _actions(
    workspace: Workspace,
    items: Sequence[dict[str, Any]],
    previous: Sequence[AutomationAction] = (),
) -> list[AutomationAction]:
    if not items:
        raise InvalidInput("A rule needs at least one action.", code="required", field="actions")
    if len(items) > MAX_ACTIONS:
        raise InvalidInput(f"At most {MAX_ACTIONS} actions.", code="max_length", field="actions")
    # A webhook action given without its secret keeps the secret it had for that URL.
    kept = {
        a.params.get("url"): a.secret
        for a in previous
        if a.action_type == ActionType.CALL_WEBHOOK and a.secret
    }
    rows = []
    for i, item in enumerate(items):
        action_type = item.get("action_type")
        params = action_types.validate(
            action_type, item.get("params", {}), workspace_id=workspace.pk, where=f"actions.{i}"
        )
        secret = item.get("secret")
        if secret is not None and action_type != ActionType.CALL_WEBHOOK:
            raise InvalidInput(
                "Only call_webhook takes a secret.",
                code="invalid_action",
                field=f"actions.{i}.secret",
            )
        if action_type == ActionType.CALL_WEBHOOK:
            if secret is None:
                secret = kept.get(params["url"], "")
            if len(secret) > 500:
                raise InvalidInput(
                    "At most 500 characters.", code="max_length", field=f"actions.{i}.secret"
                )
        rows.append(
            AutomationAction(
                workspace=workspace,
                action_type=action_type,
                params=params,
                secret=secret or "",
                position=i,
            )
        )
    return rows


def _check_workflow(workspace: Workspace, workflow: Workflow | None, trigger: str) -> None:
    ensure_same_workspace(workspace, workflow, field="workflow_id")
    if workflow is not None and workflow.trigger != trigger:
        raise InvalidInput(
            f"The workflow “{workflow.name}” runs on {workflow.trigger}; its automations "
            "must use the same trigger.",
            code="trigger_mismatch",
            field="trigger",
        )


def _check_time_rule(trigger: str, conditions: Sequence[Any]) -> None:
    if trigger == Trigger.TIME and not conditions:
        raise InvalidInput(
            "A time-based rule needs at least one condition (it looks at every open ticket).",
            code="required",
            field="conditions",
        )


def automation_create(
    *,
    workspace: Workspace,
    actor: Agent,
    name: str,
    trigger: str,
    actions: Sequence[dict[str, Any]],
    conditions: Sequence[dict[str, Any]] = (),
    match: str = MatchMode.ALL,
    description: str = "",
    workflow: Workflow | None = None,
    is_active: bool = True,
    position: int | None = None,
) -> Automation:
    _admin(workspace, actor)
    _choice(trigger, Trigger, "trigger")
    _choice(match, MatchMode, "match")
    _check_workflow(workspace, workflow, trigger)
    condition_rows = _conditions(workspace, conditions)
    _check_time_rule(trigger, condition_rows)
    action_rows = _actions(workspace, actions)
    with transaction.atomic():
        automation = Automation.objects.create(
            workspace=workspace,
            name=_name(name),
            trigger=trigger,
            match=match,
            description=description.strip(),
            workflow=workflow,
            is_active=is_active,
            position=position
            if position is not None
            else Automation.objects.for_workspace(workspace).filter(workflow=workflow).count(),
        )
        _replace_children(automation, condition_rows, action_rows)
        engine.rules_changed(workspace.pk)
    return automation


def _replace_children(
    automation: Automation,
    condition_rows: list[AutomationCondition] | None,
    action_rows: list[AutomationAction] | None,
) -> None:
    if condition_rows is not None:
        automation.conditions.all().delete()
        for row in condition_rows:
            row.automation = automation
        AutomationCondition.objects.bulk_create(condition_rows)
    if action_rows is not None:
        automation.actions.all().delete()
        for row in action_rows:
            row.automation = automation
        AutomationAction.objects.bulk_create(action_rows)
    # Drop stale prefetched children so the caller's output shows the new ones.
    getattr(automation, "_prefetched_objects_cache", {}).clear()


def automation_update(
    *,
    workspace: Workspace,
    actor: Agent,
    automation: Automation,
    name: str = UNSET,
    trigger: str = UNSET,
    match: str = UNSET,
    description: str = UNSET,
    workflow: Workflow | None = UNSET,
    is_active: bool = UNSET,
    position: int = UNSET,
    conditions: Sequence[dict[str, Any]] = UNSET,
    actions: Sequence[dict[str, Any]] = UNSET,
) -> Automation:
    """Change a rule; ``conditions`` and ``actions``, when given, replace the old ones."""
    _admin(workspace, actor)
    _own(workspace, automation)
    new_trigger = automation.trigger if trigger is UNSET else _choice(trigger, Trigger, "trigger")
    if match is not UNSET:
        _choice(match, MatchMode, "match")
    new_workflow = automation.workflow if workflow is UNSET else workflow
    _check_workflow(workspace, new_workflow, new_trigger)
    condition_rows = None if conditions is UNSET else _conditions(workspace, conditions)
    _check_time_rule(
        new_trigger,
        condition_rows if condition_rows is not None else list(automation.conditions.all()),
    )
    action_rows = (
        None
        if actions is UNSET
        else _actions(workspace, actions, previous=list(automation.actions.all()))
    )
    fields = _apply(
        automation,
        {
            "name": _name(name) if name is not UNSET else UNSET,
            "trigger": trigger,
            "match": match,
            "description": description.strip() if description is not UNSET else UNSET,
            "workflow": workflow,
            "is_active": is_active,
            "position": position,
        },
    )
    with transaction.atomic():
        automation.save(update_fields=[*fields, "updated_at"])
        _replace_children(automation, condition_rows, action_rows)
        engine.rules_changed(workspace.pk)
    return automation


def automation_delete(*, workspace: Workspace, actor: Agent, automation: Automation) -> None:
    _admin(workspace, actor)
    _own(workspace, automation)
    with transaction.atomic():
        automation.delete()
        engine.rules_changed(workspace.pk)


def automation_test(
    *, workspace: Workspace, actor: Agent, automation: Automation, ticket: Ticket
) -> dict[str, Any]:
    """The dry run: which conditions match the ticket and what would change. Writes
    nothing."""
    _admin(workspace, actor)
    _own(workspace, automation)
    _own(workspace, ticket)
    return engine.dry_run(automation, ticket)


# --- Business hours ---------------------------------------------------------------------------


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "Not a known time zone (e.g. Europe/Berlin).", code="invalid", field="timezone"
        ) from None
    return str(value)


def _slots(workspace: Workspace, items: Sequence[dict[str, Any]]) -> list[BusinessHoursSlot]:
    if len(items) > MAX_SLOTS:
        raise InvalidInput(f"At most {MAX_SLOTS} slots.", code="max_length", field="slots")
    rows: list[BusinessHoursSlot] = []
    for i, item in enumerate(items):
        weekday, opens, closes = item.get("weekday"), item.get("opens_at"), item.get("closes_at")
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            raise InvalidInput(
                "weekday is 0 (Monday) to 6 (Sunday).", code="invalid", field=f"slots.{i}.weekday"
            )
        if not isinstance(opens, time) or not isinstance(closes, time) or opens >= closes:
            raise InvalidInput(
                "A slot opens before it closes (closes_at 23:59 means midnight).",
                code="invalid",
                field=f"slots.{i}.closes_at",
            )
        for j, other in enumerate(rows):
            if other.weekday == weekday and opens < other.closes_at and other.opens_at < closes:
                raise InvalidInput(
                    f"This slot overlaps slot {j} of the same day.",
                    code="overlap",
                    field=f"slots.{i}.opens_at",
                )
        rows.append(
            BusinessHoursSlot(
                workspace=workspace, weekday=weekday, opens_at=opens, closes_at=closes
            )
        )
    return rows


def _holidays(workspace: Workspace, items: Sequence[dict[str, Any]]) -> list[Holiday]:
    if len(items) > MAX_HOLIDAYS:
        raise InvalidInput(f"At most {MAX_HOLIDAYS} holidays.", code="max_length", field="holidays")
    seen: set[date] = set()
    rows = []
    for i, item in enumerate(items):
        day = item.get("date")
        if not isinstance(day, date):
            raise InvalidInput("A date is required.", code="invalid", field=f"holidays.{i}.date")
        if day in seen:
            raise InvalidInput(
                "This date is listed twice.", code="duplicate", field=f"holidays.{i}.date"
            )
        seen.add(day)
        rows.append(
            Holiday(workspace=workspace, date=day, name=str(item.get("name", "")).strip()[:120])
        )
    return rows


def _replace_hours(
    hours: BusinessHours, slots: list[BusinessHoursSlot] | None, holidays: list[Holiday] | None
) -> None:
    if slots is not None:
        hours.slots.all().delete()
        for row in slots:
            row.business_hours = hours
        BusinessHoursSlot.objects.bulk_create(slots)
    if holidays is not None:
        hours.holidays.all().delete()
        for row in holidays:
            row.business_hours = hours
        Holiday.objects.bulk_create(holidays)
    getattr(hours, "_prefetched_objects_cache", {}).clear()


def _take_default(workspace: Workspace, hours: BusinessHours) -> None:
    # One default per workspace (a partial unique constraint): the old one gives it up
    # in the same transaction.
    BusinessHours.objects.for_workspace(workspace).filter(is_default=True).exclude(
        pk=hours.pk
    ).update(is_default=False)


def business_hours_create(
    *,
    workspace: Workspace,
    actor: Agent,
    name: str,
    timezone: str = "UTC",
    is_default: bool = False,
    slots: Sequence[dict[str, Any]] = (),
    holidays: Sequence[dict[str, Any]] = (),
) -> BusinessHours:
    _admin(workspace, actor)
    hours = BusinessHours(
        workspace=workspace,
        name=_name(name, max_length=120),
        timezone=_timezone(timezone),
        is_default=is_default,
    )
    slot_rows, holiday_rows = _slots(workspace, slots), _holidays(workspace, holidays)
    with transaction.atomic():
        if is_default:
            _take_default(workspace, hours)
        hours.save()
        _replace_hours(hours, slot_rows, holiday_rows)
    return hours


def business_hours_update(
    *,
    workspace: Workspace,
    actor: Agent,
    hours: BusinessHours,
    name: str = UNSET,
    timezone: str = UNSET,
    is_default: bool = UNSET,
    slots: Sequence[dict[str, Any]] = UNSET,
    holidays: Sequence[dict[str, Any]] = UNSET,
) -> BusinessHours:
    """Change a schedule; ``slots`` and ``holidays``, when given, replace the old ones.
    Due times already set on tickets stay; new changes of a ticket use the new schedule."""
    _admin(workspace, actor)
    _own(workspace, hours)
    slot_rows = None if slots is UNSET else _slots(workspace, slots)
    holiday_rows = None if holidays is UNSET else _holidays(workspace, holidays)
    fields = _apply(
        hours,
        {
            "name": _name(name, max_length=120) if name is not UNSET else UNSET,
            "timezone": _timezone(timezone) if timezone is not UNSET else UNSET,
            "is_default": is_default,
        },
    )
    with transaction.atomic():
        if is_default is True:
            _take_default(workspace, hours)
        hours.save(update_fields=[*fields, "updated_at"])
        _replace_hours(hours, slot_rows, holiday_rows)
    return hours


def business_hours_delete(*, workspace: Workspace, actor: Agent, hours: BusinessHours) -> None:
    """Delete a schedule; SLA policies that counted in it count calendar time."""
    _admin(workspace, actor)
    _own(workspace, hours)
    with transaction.atomic():
        hours.delete()


# --- SLA policies -----------------------------------------------------------------------------


def _minutes(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_TARGET_MINUTES
    ):
        raise InvalidInput(
            f"Minutes between 1 and {MAX_TARGET_MINUTES}.", code="invalid", field=field
        )
    return value


def _targets(workspace: Workspace, items: Sequence[dict[str, Any]]) -> list[SLATarget]:
    if not items:
        raise InvalidInput("A policy needs at least one target.", code="required", field="targets")
    seen: set[str] = set()
    rows = []
    for i, item in enumerate(items):
        priority = item.get("priority")
        if priority not in TicketPriority.values:
            raise InvalidInput(
                f"priority must be one of: {', '.join(TicketPriority.values)}.",
                code="invalid_choice",
                field=f"targets.{i}.priority",
            )
        if priority in seen:
            raise InvalidInput(
                "One target per priority.", code="duplicate", field=f"targets.{i}.priority"
            )
        seen.add(priority)
        first = _minutes(item.get("first_response_minutes"), f"targets.{i}.first_response_minutes")
        resolution = _minutes(item.get("resolution_minutes"), f"targets.{i}.resolution_minutes")
        if first is None and resolution is None:
            raise InvalidInput(
                "Give first_response_minutes, resolution_minutes or both.",
                code="required",
                field=f"targets.{i}.first_response_minutes",
            )
        rows.append(
            SLATarget(
                workspace=workspace,
                priority=priority,
                first_response_minutes=first,
                resolution_minutes=resolution,
            )
        )
    return rows


def _policy_refs(workspace: Workspace, refs: dict[str, Any]) -> None:
    for name, field in (
        ("business_hours", "business_hours_id"),
        ("customer", "customer_id"),
        ("company", "company_id"),
        ("category", "category_id"),
    ):
        value = refs.get(name, UNSET)
        if value is not UNSET:
            ensure_same_workspace(workspace, value, field=field)


def sla_policy_create(
    *,
    workspace: Workspace,
    actor: Agent,
    name: str,
    targets: Sequence[dict[str, Any]],
    description: str = "",
    business_hours: BusinessHours | None = None,
    customer: Customer | None = None,
    company: Company | None = None,
    category: Category | None = None,
    is_active: bool = True,
    position: int | None = None,
) -> SLAPolicy:
    _admin(workspace, actor)
    _policy_refs(
        workspace,
        {
            "business_hours": business_hours,
            "customer": customer,
            "company": company,
            "category": category,
        },
    )
    target_rows = _targets(workspace, targets)
    with transaction.atomic():
        policy = SLAPolicy.objects.create(
            workspace=workspace,
            name=_name(name, max_length=120),
            description=description.strip(),
            business_hours=business_hours,
            customer=customer,
            company=company,
            category=category,
            is_active=is_active,
            position=position
            if position is not None
            else SLAPolicy.objects.for_workspace(workspace).count(),
        )
        for row in target_rows:
            row.policy = policy
        SLATarget.objects.bulk_create(target_rows)
    return policy


def sla_policy_update(
    *,
    workspace: Workspace,
    actor: Agent,
    policy: SLAPolicy,
    name: str = UNSET,
    description: str = UNSET,
    business_hours: BusinessHours | None = UNSET,
    customer: Customer | None = UNSET,
    company: Company | None = UNSET,
    category: Category | None = UNSET,
    is_active: bool = UNSET,
    position: int = UNSET,
    targets: Sequence[dict[str, Any]] = UNSET,
) -> SLAPolicy:
    """Change a policy; ``targets``, when given, replace the old ones. Tickets get the new
    targets at their next change of priority, status or category."""
    _admin(workspace, actor)
    _own(workspace, policy)
    refs = {
        "business_hours": business_hours,
        "customer": customer,
        "company": company,
        "category": category,
    }
    _policy_refs(workspace, refs)
    target_rows = None if targets is UNSET else _targets(workspace, targets)
    fields = _apply(
        policy,
        {
            "name": _name(name, max_length=120) if name is not UNSET else UNSET,
            "description": description.strip() if description is not UNSET else UNSET,
            **refs,
            "is_active": is_active,
            "position": position,
        },
    )
    with transaction.atomic():
        policy.save(update_fields=[*fields, "updated_at"])
        if target_rows is not None:
            policy.targets.all().delete()
            for row in target_rows:
                row.policy = policy
            SLATarget.objects.bulk_create(target_rows)
            getattr(policy, "_prefetched_objects_cache", {}).clear()
    return policy


def sla_policy_delete(*, workspace: Workspace, actor: Agent, policy: SLAPolicy) -> None:
    _admin(workspace, actor)
    _own(workspace, policy)
    with transaction.atomic():
        policy.delete()


# --- Macros -----------------------------------------------------------------------------------


def _check_macro_access(workspace: Workspace, actor: Agent, macro: Macro) -> None:
    """Visible: shared macros and the actor's own; anyone else's personal one is a 404."""
    _own(workspace, macro)
    if macro.owner_id is not None and macro.owner_id != actor.pk:
        raise NotFound("Not found.")


def _full_agent(actor: Agent) -> None:
    if not actor.can_reply:
        raise Forbidden(
            "Light agents can read tickets and add internal notes only.", code="light_agent"
        )


def _macro_actions(workspace: Workspace, items: Sequence[dict[str, Any]]) -> list[dict]:
    if len(items) > MAX_ACTIONS:
        raise InvalidInput(f"At most {MAX_ACTIONS} actions.", code="max_length", field="actions")
    result = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput("An action is an object.", code="invalid", field=f"actions.{i}")
        action_type = item.get("action_type")
        params = action_types.validate(
            action_type,
            item.get("params", {}),
            workspace_id=workspace.pk,
            where=f"actions.{i}",
            for_macro=True,
        )
        result.append({"action_type": action_type, "params": params})
    return result


def _macro_canned(workspace: Workspace, actor: Agent, canned: CannedReply | None) -> None:
    if canned is None:
        return
    ensure_same_workspace(workspace, canned, field="canned_reply_id")
    if canned.owner_id is not None and canned.owner_id != actor.pk:
        # Someone else's personal reply does not exist for this agent.
        raise InvalidInput(
            "Unknown canned_reply_id in this workspace.",
            code="invalid_reference",
            field="canned_reply_id",
        )


def macro_create(
    *,
    workspace: Workspace,
    actor: Agent,
    name: str,
    actions: Sequence[dict[str, Any]] = (),
    canned_reply: CannedReply | None = None,
    description: str = "",
    shared: bool = False,
    position: int | None = None,
) -> Macro:
    """A shared macro (admins) or a personal one (any full agent, owned by them)."""
    _member(workspace, actor)
    _full_agent(actor)
    if shared:
        _admin(workspace, actor)
    _macro_canned(workspace, actor, canned_reply)
    checked = _macro_actions(workspace, actions)
    if not checked and canned_reply is None:
        raise InvalidInput(
            "A macro needs a canned reply, actions or both.", code="required", field="actions"
        )
    owner = None if shared else actor
    macro = Macro(
        workspace=workspace,
        name=_name(name),
        description=description.strip(),
        canned_reply=canned_reply,
        actions=checked,
        owner=owner,
        position=position
        if position is not None
        else Macro.objects.for_workspace(workspace).filter(owner=owner).count(),
    )
    _save(macro, what="macro")
    return macro


def macro_update(
    *,
    workspace: Workspace,
    actor: Agent,
    macro: Macro,
    name: str = UNSET,
    description: str = UNSET,
    canned_reply: CannedReply | None = UNSET,
    actions: Sequence[dict[str, Any]] = UNSET,
    shared: bool = UNSET,
    position: int = UNSET,
) -> Macro:
    _check_macro_access(workspace, actor, macro)
    _full_agent(actor)
    is_shared = macro.owner_id is None
    if is_shared or (shared is not UNSET and shared != is_shared):
        _admin(workspace, actor)
    if canned_reply is not UNSET:
        _macro_canned(workspace, actor, canned_reply)
    fields = _apply(
        macro,
        {
            "name": _name(name) if name is not UNSET else UNSET,
            "description": description.strip() if description is not UNSET else UNSET,
            "canned_reply": canned_reply,
            "actions": _macro_actions(workspace, actions) if actions is not UNSET else UNSET,
            "position": position,
            "owner": (None if shared else actor)
            if shared is not UNSET and shared != is_shared
            else UNSET,
        },
    )
    if not macro.actions and macro.canned_reply_id is None:
        raise InvalidInput(
            "A macro needs a canned reply, actions or both.", code="required", field="actions"
        )
    if fields:
        _save(macro, what="macro", update_fields=[*fields, "updated_at"])
    return macro


def macro_delete(*, workspace: Workspace, actor: Agent, macro: Macro) -> None:
    _check_macro_access(workspace, actor, macro)
    _full_agent(actor)
    if macro.owner_id is None:
        _admin(workspace, actor)
    with transaction.atomic():
        macro.delete()


def _macro_ticket(workspace: Workspace, ticket: Ticket) -> None:
    if ticket.workspace_id != workspace.pk or ticket.deleted_at is not None:
        raise InvalidInput(
            "Unknown ticket in this workspace.", code="invalid_reference", field="ticket"
        )
    if ticket.merged_into_id:
        raise Conflict("This ticket was merged into another one.", code="ticket_merged")


def _macro_plan(macro: Macro, ticket: Ticket, actor: Agent) -> dict[str, Any]:
    """What applying the macro would do, computed without writing: the field changes
    (old → new, after all its actions in order), the notes and the reply."""
    ctx = action_types.ActionContext(
        ticket=ticket, actor=Actor.for_agent(actor), agent=actor, via="web"
    )
    notes = []
    errors = []
    for i, action in enumerate(macro.actions):
        try:
            preview = action_types.preview(ctx, action["action_type"], action["params"])
        except InvalidInput as exc:
            errors.append({"action": i, "error": exc.message})
            continue
        if "note" in preview:
            notes.append(preview["note"])
    original = {
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category_id,
        "team": ticket.team_id,
        "assignee": ticket.assignee_id,
        "tags": sorted(ticket.tags.values_list("name", flat=True)),
    }
    final = ctx.simulated or original
    changes = {
        name: {"old": original[name], "new": final[name]}
        for name in original
        if final[name] != original[name]
    }
    reply = None
    if macro.canned_reply_id:
        canned = macro.canned_reply
        rendered = render_placeholders(
            canned.body, PlaceholderContext.for_ticket(ticket, agent=actor)
        )
        reply = {"body": rendered.body, "unknown_placeholders": rendered.unknown_placeholders}
    return {"changes": changes, "notes": notes, "reply": reply, "errors": errors}


def macro_preview(
    *, workspace: Workspace, actor: Agent, macro: Macro, ticket: Ticket
) -> dict[str, Any]:
    """What ``macro_apply`` would do to the ticket; changes nothing."""
    _member(workspace, actor)
    _check_macro_access(workspace, actor, macro)
    _macro_ticket(workspace, ticket)
    return {"macro": macro.pk, "ticket": ticket.number, **_macro_plan(macro, ticket, actor)}


# The history kinds the services write for what a macro does; merged into one entry.
_MACRO_EVENT_KINDS = (
    TicketEventKind.FIELD_CHANGED,
    TicketEventKind.TAGS_CHANGED,
    TicketEventKind.NOTE_ADDED,
    TicketEventKind.REPLIED,
)


def macro_apply(
    *, workspace: Workspace, actor: Agent, macro: Macro, ticket: Ticket
) -> dict[str, Any]:
    """Apply the macro in one step and one history entry: its field changes (one
    ``ticket_update``), its notes and its canned reply (``comment_create``), all in one
    transaction as the agent, then the history rows those services wrote are folded into
    a single ``macro_applied`` entry listing every change. The hook events (realtime,
    automations, outbound mail of the reply) go out after commit as for any change."""
    _member(workspace, actor)
    _check_macro_access(workspace, actor, macro)
    _full_agent(actor)
    _macro_ticket(workspace, ticket)
    plan = _macro_plan(macro, ticket, actor)
    if plan["errors"]:
        raise InvalidInput(
            f"The macro cannot be applied: {plan['errors'][0]['error']}",
            code="macro_invalid",
            field=f"actions.{plan['errors'][0]['action']}",
        )
    who = Actor.for_agent(actor)
    changes = plan["changes"]
    update: dict[str, Any] = {}
    for name in ("status", "priority"):
        if name in changes:
            update[name] = changes[name]["new"]
    for name, model in (("category", Category), ("team", Team), ("assignee", Agent)):
        if name in changes:
            pk = changes[name]["new"]
            update[name] = (
                None if pk is None else model.objects.get(workspace_id=workspace.pk, pk=pk)
            )
    if "tags" in changes:
        update["tags"] = changes["tags"]["new"]
    comments: list[int] = []
    with transaction.atomic():
        # The ticket's lock first: every service that writes this ticket's history takes
        # it, so the rows after ``mark`` by this agent are this macro's own.
        Ticket.objects.select_for_update().filter(pk=ticket.pk).first()
        mark = TicketEvent.objects.filter(ticket=ticket).aggregate(m=Max("pk"))["m"] or 0
        changed = (
            ticket_services.ticket_update(ticket=ticket, actor=who, **update) if update else []
        )
        for note in plan["notes"]:
            comment = ticket_services.comment_create(
                ticket=ticket, actor=who, body_text=note, internal=True
            )
            comments.append(comment.pk)
        if plan["reply"] is not None:
            comment = ticket_services.comment_create(
                ticket=ticket, actor=who, body_text=plan["reply"]["body"]
            )
            comments.append(comment.pk)
            CannedReply.objects.filter(pk=macro.canned_reply_id).update(
                usage_count=F("usage_count") + 1
            )
        written = list(
            TicketEvent.objects.filter(
                ticket=ticket, pk__gt=mark, actor_agent=actor, kind__in=_MACRO_EVENT_KINDS
            ).order_by("pk")
        )
        TicketEvent.objects.filter(pk__in=[e.pk for e in written]).delete()
        event = TicketEvent.objects.create(
            workspace_id=workspace.pk,
            ticket=ticket,
            kind=TicketEventKind.MACRO_APPLIED,
            actor_type=who.type,
            actor_agent=actor,
            data={
                "macro": macro.pk,
                "name": macro.name,
                "changes": {
                    e.field: {"old": e.old_value, "new": e.new_value} for e in written if e.field
                },
                "comments": comments,
                "steps": [
                    {"kind": e.kind, "field": e.field, "old": e.old_value, "new": e.new_value}
                    for e in written
                ],
            },
        )
        Macro.objects.filter(pk=macro.pk).update(usage_count=F("usage_count") + 1)
    return {
        "macro": macro.pk,
        "ticket": ticket.number,
        "changed": changed,
        "comments": comments,
        "event": event.pk,
    }


# --- Notifications ----------------------------------------------------------------------------


def notification_mark_read(*, agent: Agent, notification: Notification) -> Notification:
    if notification.recipient_id != agent.pk:
        raise NotFound("Not found.")
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=now, updated_at=now
        )
        notification.read_at = now
    return notification


def notifications_mark_all_read(*, agent: Agent) -> int:
    now = timezone.now()
    return Notification.objects.filter(recipient=agent, read_at__isnull=True).update(
        read_at=now, updated_at=now
    )


def notification_preference_set(
    *, agent: Agent, kind: str, in_app: bool = UNSET, email: bool = UNSET
) -> NotificationPreference:
    from automation.notifications import DEFAULT_PREFERENCES

    _choice(kind, NotificationKind, "kind")
    default_in_app, default_email = DEFAULT_PREFERENCES[kind]
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(
            agent=agent,
            kind=kind,
            defaults={
                "workspace_id": agent.workspace_id,
                "in_app": default_in_app,
                "email": default_email,
            },
        )
        fields = _apply(preference, {"in_app": in_app, "email": email})
        if fields:
            preference.save(update_fields=[*fields, "updated_at"])
    return preference
