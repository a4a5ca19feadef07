"""Settings → Automations & workflows: the list, the rule editor with its dry run, and the
workflow pages (admins only: ``admin_view`` answers 404 to anyone else).

Writes go through ``automation.services`` (``automation_create`` / ``_update`` / ``_delete``,
``workflow_*``), which validate every row again and own the transaction. The dry run runs
the rule *as currently edited* — unsaved — against recent tickets with the engine's own
parts (``conditions.explain`` over ``engine.facts_for``, ``actions.preview``): the same
reads as ``engine.dry_run``, which needs a saved rule. It writes nothing.

Query budget of the list (asserted in ui/tests/test_automations_ui.py), whatever the number
of rules: session, user, membership; the workflows with their rule counts; the rules with
their workflow and their condition and action counts; the workspace switcher.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from automation import actions as action_types
from automation import conditions as condition_types
from automation import engine, selectors, services
from automation.models import (
    ActionType,
    Automation,
    AutomationAction,
    AutomationCondition,
    AutomationRun,
    ConditionField,
    MatchMode,
    Trigger,
    Workflow,
)
from enque.errors import EnqueError
from tickets.actors import Actor
from tickets.models import Tag, Ticket, TicketStatus
from ui.forms import add_service_error
from ui.forms_automations import (
    ACTION_LABELS,
    FIELD_GROUPS,
    FIELD_LABELS,
    OPERATOR_LABELS,
    ROW_KEY_RE,
    ActionRow,
    AutomationForm,
    ConditionRow,
    DryRunForm,
    EditorChoices,
    WorkflowForm,
    action_from_post,
    check_rows,
    condition_from_post,
    decorate_action,
    decorate_condition,
    new_key,
    place_service_error,
    rows_from_automation,
    rows_from_post,
)
from ui.session import admin_view
from ui.views.common import redirect_htmx_aware, render_fragment, render_page

# How many recent tickets the dry run looks at when no ticket is named.
DRY_RUN_TICKETS = 25


def _automation_or_404(request: HttpRequest, pk: int) -> Automation:
    automation = (
        selectors.automation_list(workspace=request.workspace)
        .select_related("workflow")
        .filter(pk=pk)
        .first()
    )
    if automation is None:
        raise Http404
    return automation


def _workflow_or_404(request: HttpRequest, pk: int) -> Workflow:
    workflow = selectors.workflow_list(workspace=request.workspace).filter(pk=pk).first()
    if workflow is None:
        raise Http404
    return workflow


# --- The list ------------------------------------------------------------------------------


@require_GET
@admin_view
def automation_list(request: HttpRequest) -> HttpResponse:
    workflows = list(selectors.workflow_list(workspace=request.workspace))
    rules = list(
        Automation.objects.for_workspace(request.workspace)
        .select_related("workflow")
        .annotate(
            condition_count=Count("conditions", distinct=True),
            action_count=Count("actions", distinct=True),
        )
        .order_by("workflow__position", "workflow_id", "position", "id")
    )
    event_rules = [r for r in rules if r.trigger != Trigger.TIME]
    time_rules = [r for r in rules if r.trigger == Trigger.TIME]
    return render_page(
        request,
        "ui/settings/automations/list.html",
        {
            "settings_section": "automations",
            "workflows": workflows,
            "event_rules": event_rules,
            "time_rules": time_rules,
        },
    )


@require_POST
@admin_view
def automation_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _automation_or_404(request, pk)
    try:
        services.automation_update(
            workspace=request.workspace,
            actor=request.agent,
            automation=automation,
            is_active=not automation.is_active,
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
    else:
        state = "on" if automation.is_active else "off"
        messages.success(request, f"“{automation.name}” is {state}.")
    return redirect_htmx_aware(request, _list_url())


@require_POST
@admin_view
def workflow_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _workflow_or_404(request, pk)
    try:
        services.workflow_update(
            workspace=request.workspace,
            actor=request.agent,
            workflow=workflow,
            is_active=not workflow.is_active,
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
    else:
        state = "on" if workflow.is_active else "off"
        messages.success(request, f"The workflow “{workflow.name}” is {state}.")
    return redirect_htmx_aware(request, _list_url())


def _list_url() -> str:
    return reverse("ui:settings_automations")


# --- The rule editor -----------------------------------------------------------------------


def _editor_context(
    request: HttpRequest,
    *,
    form: AutomationForm,
    automation: Automation | None,
    condition_rows: list[ConditionRow],
    action_rows: list[ActionRow],
    choices: EditorChoices,
) -> dict[str, Any]:
    return {
        "settings_section": "automations",
        "form": form,
        "automation": automation,
        "condition_rows": [decorate_condition(r, choices) for r in condition_rows],
        "action_rows": [decorate_action(r, choices) for r in action_rows],
        "field_groups": _field_groups(),
        "action_types": list(ACTION_LABELS.items()),
        "dry_run_form": DryRunForm(),
        "time_trigger": Trigger.TIME,
        "runs": _recent_runs(automation) if automation else [],
    }


def _field_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    return [(group, [(f, FIELD_LABELS[f]) for f in fields]) for group, fields in FIELD_GROUPS]


def _recent_runs(automation: Automation) -> list[AutomationRun]:
    return list(selectors.automation_runs(automation=automation).order_by("-created_at")[:5])


def _initial(automation: Automation) -> dict[str, Any]:
    return {
        "name": automation.name,
        "description": automation.description,
        "trigger": automation.trigger,
        "match": automation.match,
        "workflow": automation.workflow_id,
        "is_active": automation.is_active,
        "position": automation.position,
    }


def _render_editor(
    request: HttpRequest, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    return render_page(request, "ui/settings/automations/editor.html", context, status=status)


def _save(
    request: HttpRequest, automation: Automation | None, choices: EditorChoices
) -> HttpResponse:
    form = AutomationForm(request.POST, choices=choices)
    condition_rows, action_rows = rows_from_post(request.POST)
    checked = check_rows(condition_rows, action_rows, request.workspace)
    if form.is_valid() and checked.ok:
        data = form.cleaned_data
        workflow = None
        if data["workflow"] is not None:
            workflow = (
                Workflow.objects.for_workspace(request.workspace)
                .filter(pk=data["workflow"])
                .first()
            )
        fields: dict[str, Any] = {
            "name": data["name"],
            "description": data["description"],
            "trigger": data["trigger"],
            "match": data["match"],
            "workflow": workflow,
            "is_active": data["is_active"],
            "conditions": checked.conditions,
            "actions": checked.actions,
        }
        if data["position"] is not None:
            fields["position"] = data["position"]
        try:
            if automation is None:
                automation = services.automation_create(
                    workspace=request.workspace, actor=request.agent, **fields
                )
                messages.success(request, f"Automation “{automation.name}” created.")
            else:
                services.automation_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    automation=automation,
                    **fields,
                )
                messages.success(request, f"Automation “{automation.name}” saved.")
        except EnqueError as exc:
            place_service_error(exc, form, condition_rows, action_rows)
        else:
            return redirect("ui:settings_automation", pk=automation.pk)
    elif not checked.ok:
        form.add_error(None, "Some conditions or actions need fixing: see below.")
    context = _editor_context(
        request,
        form=form,
        automation=automation,
        condition_rows=condition_rows,
        action_rows=action_rows,
        choices=choices,
    )
    return _render_editor(request, context, status=400)


@require_http_methods(["GET", "POST"])
@admin_view
def automation_new(request: HttpRequest) -> HttpResponse:
    choices = EditorChoices(request.workspace)
    if request.method == "POST":
        return _save(request, None, choices)
    trigger = request.GET.get("trigger")
    initial = {
        "trigger": trigger if trigger in Trigger.values else Trigger.TICKET_CREATED,
        "match": MatchMode.ALL,
        "is_active": True,
    }
    workflow = request.GET.get("workflow", "")
    if workflow.isdigit():
        found = Workflow.objects.for_workspace(request.workspace).filter(pk=int(workflow)).first()
        if found:
            initial.update(workflow=found.pk, trigger=found.trigger)
    context = _editor_context(
        request,
        form=AutomationForm(initial=initial, choices=choices),
        automation=None,
        condition_rows=[
            ConditionRow(
                key=new_key(), field=ConditionField.SUBJECT, operator="contains", values=[]
            )
        ],
        action_rows=[ActionRow(key=new_key(), action_type=ActionType.SET_PRIORITY, params={})],
        choices=choices,
    )
    return _render_editor(request, context)


@require_http_methods(["GET", "POST"])
@admin_view
def automation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _automation_or_404(request, pk)
    choices = EditorChoices(request.workspace)
    if request.method == "POST":
        return _save(request, automation, choices)
    condition_rows, action_rows = rows_from_automation(automation)
    context = _editor_context(
        request,
        form=AutomationForm(initial=_initial(automation), choices=choices),
        automation=automation,
        condition_rows=condition_rows,
        action_rows=action_rows,
        choices=choices,
    )
    return _render_editor(request, context)


@require_POST
@admin_view
def automation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _automation_or_404(request, pk)
    try:
        services.automation_delete(
            workspace=request.workspace, actor=request.agent, automation=automation
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
        return redirect_htmx_aware(request, automation_url(automation))
    messages.success(request, f"Automation “{automation.name}” deleted.")
    return redirect_htmx_aware(request, _list_url())


def automation_url(automation: Automation) -> str:
    return reverse("ui:settings_automation", args=[automation.pk])


@require_GET
@admin_view
def automation_row(request: HttpRequest) -> HttpResponse:
    """One condition or action row, for the field, operator or action type chosen (htmx):
    a new row (no ``key``) or an existing row redrawn after its select changed."""
    kind = request.GET.get("kind")
    key = request.GET.get("key", "")
    if not ROW_KEY_RE.match(key):
        # Only keys the editor makes are posted back (rows_from_post): start afresh.
        key = ""
    choices = EditorChoices(request.workspace)
    if kind == "condition":
        row = condition_from_post(request.GET, key) if key else None
        if row is None:
            row = ConditionRow(
                key=new_key(), field=ConditionField.SUBJECT, operator="contains", values=[]
            )
        return render_fragment(
            request,
            "ui/settings/automations/_condition_row.html",
            {"row": decorate_condition(row, choices), "field_groups": _field_groups()},
        )
    if kind == "action":
        if key:
            action_row = action_from_post(request.GET, key)
        else:
            action_row = ActionRow(key=new_key(), action_type=ActionType.ADD_TAGS, params={})
        return render_fragment(
            request,
            "ui/settings/automations/_action_row.html",
            {"row": decorate_action(action_row, choices), "action_types": ACTION_LABELS.items()},
        )
    raise Http404


# --- The dry run ---------------------------------------------------------------------------


class _Rows(list):
    """A rule's rows, answering ``.all()`` as the related managers of a saved rule do."""

    def all(self) -> _Rows:
        return self


def _draft(
    automation: Automation | None,
    trigger: str,
    match: str,
    conditions: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    workspace_id: int,
) -> Automation:
    """The rule as edited, unsaved: a fresh instance never given to ``save()``."""
    draft = Automation(
        pk=automation.pk if automation else None,
        workspace_id=workspace_id,
        name=automation.name if automation else "Draft",
        trigger=trigger,
        match=match,
    )
    draft.draft_conditions = _Rows(
        AutomationCondition(field=c["field"], operator=c["operator"], value=c["value"])
        for c in conditions
    )
    draft.draft_actions = _Rows(
        AutomationAction(action_type=a["action_type"], params=a["params"]) for a in actions
    )
    return draft


def _preview(draft: Automation, ticket: Ticket, now: Any) -> dict[str, Any]:
    facts = engine.facts_for(ticket, now=now)
    matched, results = condition_types.explain(draft.match, draft.draft_conditions, facts)
    ctx = action_types.ActionContext(
        ticket=ticket,
        actor=Actor.for_automation(draft.pk or 0),
        automation=draft,
        trigger=draft.trigger,
    )
    previews = []
    if matched:
        for action in draft.draft_actions:
            entry: dict[str, Any] = {
                "action_type": action.action_type,
                "label": ACTION_LABELS.get(action.action_type, action.action_type),
            }
            try:
                entry["would"] = action_types.preview(ctx, action.action_type, action.params)
            except EnqueError as exc:
                entry["error"] = exc.message
            previews.append(entry)
    already = False
    if matched and draft.trigger == Trigger.TIME and draft.pk:
        # The saved rule's firing in the window the edited conditions define.
        key = engine.window_key(_KeyRule(draft.draft_conditions), facts)
        already = AutomationRun.objects.filter(
            automation_id=draft.pk, ticket=ticket, window_key=key
        ).exists()
    return {
        "ticket": ticket,
        "matched": matched,
        "conditions": results,
        "actions": previews,
        "already_fired": already,
    }


class _KeyRule:
    """What ``engine.window_key`` reads of a rule: its conditions."""

    def __init__(self, conditions: _Rows) -> None:
        self.conditions = conditions


@require_POST
@admin_view
def automation_dry_run(request: HttpRequest) -> HttpResponse:
    """The edited rule against one ticket, or the most recently updated ones (htmx)."""
    automation = None
    raw_pk = request.POST.get("automation", "")
    if raw_pk:
        if not raw_pk.isdigit():
            raise Http404
        automation = _automation_or_404(request, int(raw_pk))
    choices = EditorChoices(request.workspace)
    form = AutomationForm(request.POST, choices=choices)
    dry_form = DryRunForm(request.POST)
    condition_rows, action_rows = rows_from_post(request.POST)
    checked = check_rows(condition_rows, action_rows, request.workspace)
    trigger = request.POST.get("trigger")
    match = request.POST.get("match")
    if not checked.ok or trigger not in Trigger.values or match not in MatchMode.values:
        # The rows with their errors: the editor is redrawn where it stands.
        if checked.ok:
            form.is_valid()
        else:
            form.add_error(None, "Fix the marked conditions or actions to run the dry run.")
        context = _editor_context(
            request,
            form=form,
            automation=automation,
            condition_rows=condition_rows,
            action_rows=action_rows,
            choices=choices,
        )
        response = render_fragment(
            request, "ui/settings/automations/_editor_form.html", context, status=422
        )
        response["HX-Retarget"] = "#rule-editor"
        response["HX-Reswap"] = "outerHTML"
        return response
    draft = _draft(
        automation, trigger, match, checked.conditions, checked.actions, request.workspace.pk
    )
    tickets = (
        Ticket.objects.for_workspace(request.workspace)
        .filter(deleted_at__isnull=True, merged_into__isnull=True)
        .select_related("customer", "workspace")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")))
    )
    if trigger == Trigger.TIME:
        # Time rules look at the tickets engine.time_candidates gives them: not closed.
        tickets = tickets.exclude(status=TicketStatus.CLOSED)
    error = ""
    number = dry_form.cleaned_data.get("ticket") if dry_form.is_valid() else None
    if not dry_form.is_valid():
        error = "Give a ticket number, or leave it empty."
        tickets = tickets.none()
    elif number:
        tickets = tickets.filter(number=number)
    else:
        tickets = tickets.order_by("-updated_at", "-id")[:DRY_RUN_TICKETS]
    now = timezone.now()
    results = [_preview(draft, ticket, now) for ticket in tickets]
    if number and not results and not error:
        error = (
            f"Ticket #{number} is closed: time-based rules do not look at closed tickets."
            if trigger == Trigger.TIME
            and Ticket.objects.for_workspace(request.workspace)
            .filter(number=number, deleted_at__isnull=True, status=TicketStatus.CLOSED)
            .exists()
            else f"There is no ticket #{number} in this workspace."
        )
    names = _names(choices)
    for result in results:
        for entry in result["actions"]:
            entry["summary"] = _summary(entry, names)
        result["misses"] = [_miss(c, names) for c in result["conditions"] if not c.matched]
    return render_fragment(
        request,
        "ui/settings/automations/_dry_run.html",
        {
            "results": results,
            "matched": [r for r in results if r["matched"]],
            "checked_count": len(results),
            "number": number,
            "error": error,
            "field_labels": FIELD_LABELS,
        },
    )


def _names(choices: EditorChoices) -> dict[str, dict[str, str]]:
    return {
        "assignee": dict(choices.agents()),
        "team": dict(choices.teams()),
        "category": dict(choices.categories()),
    }


def _summary(entry: dict[str, Any], names: dict[str, dict[str, str]]) -> str:
    """What one action would do, in words."""
    if "error" in entry:
        return f"Could not run: {entry['error']}"
    would = entry["would"]
    if "field" in would:
        name = would["field"]

        def show(value: Any) -> str:
            if value is None or value == []:
                return "none"
            if isinstance(value, list):
                return ", ".join(value)
            return names.get(name, {}).get(str(value), str(value))

        if not would["changes"]:
            return f"{name.capitalize()} already {show(would['new'])}: no change."
        return f"{name.capitalize()}: {show(would['old'])} → {show(would['new'])}"
    if "note" in would:
        return f"Add the internal note: “{_short(would['note'])}”"
    if "reply" in would:
        return f"Send the reply: “{_short(would['reply'])}”"
    if "notify" in would:
        who = ", ".join(names["assignee"].get(str(pk), str(pk)) for pk in would["notify"])
        return f"Notify {who or 'nobody (no recipient found)'}: “{_short(would['message'])}”"
    if "webhook" in would:
        return f"POST the ticket to {would['webhook']}"
    return str(would)


def _miss(condition: Any, names: dict[str, dict[str, str]]) -> str:
    """Why a condition does not hold for a ticket, in words."""

    def show(value: Any) -> str:
        if value is None or value == []:
            return "not set"
        if isinstance(value, list):
            return ", ".join(show(v) for v in value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        return names.get(condition.field, {}).get(str(value), str(value))

    label = FIELD_LABELS.get(condition.field, condition.field)
    wanted = OPERATOR_LABELS.get(condition.operator, condition.operator)
    if condition.value is not None:
        wanted = f"{wanted} {show(condition.value)}"
    return f"{label} is {show(condition.actual)}; the rule wants: {wanted}."


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Workflows -----------------------------------------------------------------------------


def _workflow_page(
    request: HttpRequest, form: WorkflowForm, workflow: Workflow | None, *, status: int = 200
) -> HttpResponse:
    rules = (
        list(
            Automation.objects.for_workspace(request.workspace)
            .filter(workflow=workflow)
            .order_by("position", "id")
        )
        if workflow
        else []
    )
    return render_page(
        request,
        "ui/settings/automations/workflow.html",
        {"settings_section": "automations", "form": form, "workflow": workflow, "rules": rules},
        status=status,
    )


def _save_workflow(request: HttpRequest, workflow: Workflow | None) -> HttpResponse:
    form = WorkflowForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        if data["position"] is None:
            data.pop("position")
        try:
            if workflow is None:
                workflow = services.workflow_create(
                    workspace=request.workspace, actor=request.agent, **data
                )
                messages.success(request, f"Workflow “{workflow.name}” created.")
            else:
                services.workflow_update(
                    workspace=request.workspace, actor=request.agent, workflow=workflow, **data
                )
                messages.success(request, f"Workflow “{workflow.name}” saved.")
        except EnqueError as exc:
            add_service_error(form, exc)
        else:
            return redirect("ui:settings_workflow", pk=workflow.pk)
    return _workflow_page(request, form, workflow, status=400)


@require_http_methods(["GET", "POST"])
@admin_view
def workflow_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save_workflow(request, None)
    form = WorkflowForm(initial={"trigger": Trigger.TICKET_CREATED, "is_active": True})
    return _workflow_page(request, form, None)


@require_http_methods(["GET", "POST"])
@admin_view
def workflow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _workflow_or_404(request, pk)
    if request.method == "POST":
        return _save_workflow(request, workflow)
    form = WorkflowForm(
        initial={
            "name": workflow.name,
            "description": workflow.description,
            "trigger": workflow.trigger,
            "stop_after_first_match": workflow.stop_after_first_match,
            "is_active": workflow.is_active,
            "position": workflow.position,
        }
    )
    return _workflow_page(request, form, workflow)


@require_POST
@admin_view
def workflow_delete(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _workflow_or_404(request, pk)
    try:
        services.workflow_delete(
            workspace=request.workspace, actor=request.agent, workflow=workflow
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
        return redirect("ui:settings_workflow", pk=workflow.pk)
    messages.success(request, f"Workflow “{workflow.name}” deleted; its rules stay, on their own.")
    return redirect_htmx_aware(request, _list_url())
