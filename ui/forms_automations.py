"""The rule editor's input: condition and action rows as posted, the widget each row needs,
and the conversion to the JSON the automation services take.

A rule's rows are posted as keyed groups, so rows can be added and removed in the browser
without renumbering: ``condition`` (repeated) lists the condition rows' keys in page order,
and row ``k`` posts ``c-k-field``, ``c-k-operator``, ``c-k-value`` (repeated for a
multiple choice); ``action`` lists the action rows' keys, row ``k`` posts ``a-k-type`` and
``a-k-<param>`` per parameter of its type. Each row keeps its input as strings ("raw"),
so a row with an error shows back exactly what was typed.

What fits a field, an operator or an action is decided by ``automation.conditions`` and
``automation.actions`` (the validators the services run): ``check_rows`` runs them on every
row so all the errors show at once, each on its row; the service runs them again on save.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from automation import actions as action_types
from automation import conditions as condition_types
from automation.models import (
    ActionType,
    Automation,
    ConditionField,
    ConditionOperator,
    MatchMode,
    Trigger,
    Workflow,
)
from enque.errors import EnqueError
from integrations.models import MailboxConnection
from tickets.models import CannedReply, Category, Tag, TicketChannel, TicketPriority, TicketStatus
from workspaces.models import Agent, AgentRole, Company, Customer, Team, Workspace

MAX_ROWS = 60
ROW_KEY_RE = re.compile(r"^[a-z0-9]{1,16}$")
_SPLIT_RE = re.compile(r"[\n,]+")

OPERATOR_LABELS = dict(ConditionOperator.choices)
FIELD_LABELS = dict(ConditionField.choices)
ACTION_LABELS = dict(ActionType.choices)

# The condition fields, grouped as the field picker shows them.
FIELD_GROUPS: list[tuple[str, list[str]]] = [
    (
        "Message",
        [
            ConditionField.SUBJECT,
            ConditionField.BODY,
            ConditionField.FROM_ADDRESS,
            ConditionField.FROM_DOMAIN,
            ConditionField.MAILBOX,
            ConditionField.CHANNEL,
        ],
    ),
    (
        "Ticket",
        [
            ConditionField.STATUS,
            ConditionField.PRIORITY,
            ConditionField.ASSIGNEE,
            ConditionField.TEAM,
            ConditionField.CATEGORY,
            ConditionField.TAGS,
            ConditionField.CUSTOMER,
            ConditionField.COMPANY,
        ],
    ),
    (
        "Time",
        [
            ConditionField.BUSINESS_HOURS,
            ConditionField.HOURS_SINCE_CREATED,
            ConditionField.HOURS_SINCE_UPDATED,
            ConditionField.HOURS_SINCE_CUSTOMER_REPLY,
            ConditionField.HOURS_SINCE_AGENT_REPLY,
            ConditionField.SLA_DUE_WITHIN_HOURS,
            ConditionField.SLA_BREACHED,
        ],
    ),
]

CHOICE_LABELS: dict[str, dict[str, str]] = {
    ConditionField.STATUS: dict(TicketStatus.choices),
    ConditionField.PRIORITY: dict(TicketPriority.choices),
    ConditionField.CHANNEL: dict(TicketChannel.choices),
}

LIST_OPERATORS = (ConditionOperator.IN, ConditionOperator.NOT_IN)
NO_VALUE_OPERATORS = (ConditionOperator.IS_SET, ConditionOperator.IS_NOT_SET)


def new_key() -> str:
    return secrets.token_hex(4)


def _split(text: str) -> list[str]:
    return [part.strip() for part in _SPLIT_RE.split(text or "") if part.strip()]


# --- The workspace's objects a row can name ------------------------------------------------


class EditorChoices:
    """The workspace's agents, teams, categories, … each read once, and only if a row
    shows them (a rule naming no team costs no query for teams)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._cache: dict[str, list[tuple[str, str]]] = {}

    def _get(self, name: str, load: Any) -> list[tuple[str, str]]:
        if name not in self._cache:
            self._cache[name] = [(str(pk), label) for pk, label in load()]
        return self._cache[name]

    def agents(self) -> list[tuple[str, str]]:
        def load() -> list[tuple[int, str]]:
            agents = Agent.objects.for_workspace(self.workspace).select_related("user")
            rows = [(a.pk, a.name + ("" if a.is_active else " (deactivated)")) for a in agents]
            return sorted(rows, key=lambda r: r[1].casefold())

        return self._get("agents", load)

    def assignable_agents(self) -> list[tuple[str, str]]:
        """Who a rule may assign tickets to: active agents who are not light agents."""

        def load() -> list[tuple[int, str]]:
            agents = (
                Agent.objects.for_workspace(self.workspace)
                .filter(is_active=True)
                .exclude(role=AgentRole.LIGHT)
                .select_related("user")
            )
            return sorted(((a.pk, a.name) for a in agents), key=lambda r: r[1].casefold())

        return self._get("assignable", load)

    def teams(self) -> list[tuple[str, str]]:
        return self._get(
            "teams",
            lambda: (
                Team.objects.for_workspace(self.workspace)
                .order_by("name", "id")
                .values_list("pk", "name")
            ),
        )

    def categories(self) -> list[tuple[str, str]]:
        return self._get(
            "categories",
            lambda: (
                Category.objects.for_workspace(self.workspace)
                .order_by("name", "id")
                .values_list("pk", "name")
            ),
        )

    def companies(self) -> list[tuple[str, str]]:
        return self._get(
            "companies",
            lambda: (
                Company.objects.for_workspace(self.workspace)
                .order_by("name", "id")
                .values_list("pk", "name")
            ),
        )

    def mailboxes(self) -> list[tuple[str, str]]:
        return self._get(
            "mailboxes",
            lambda: (
                MailboxConnection.objects.for_workspace(self.workspace)
                .order_by("email_address", "id")
                .values_list("pk", "email_address")
            ),
        )

    def tags(self) -> list[tuple[str, str]]:
        return self._get(
            "tags",
            lambda: (
                Tag.objects.for_workspace(self.workspace)
                .order_by("name", "id")
                .values_list("name", "name")
            ),
        )

    def canned_replies(self) -> list[tuple[str, str]]:
        # Rules send shared canned replies only (automation.actions).
        return self._get(
            "canned",
            lambda: (
                CannedReply.objects.for_workspace(self.workspace)
                .filter(owner__isnull=True)
                .order_by("title", "id")
                .values_list("pk", "title")
            ),
        )

    def workflows(self) -> list[tuple[str, str]]:
        return self._get(
            "workflows",
            lambda: (
                (w.pk, f"{w.name} ({w.get_trigger_display()})")
                for w in Workflow.objects.for_workspace(self.workspace).order_by("position", "id")
            ),
        )

    def reference(self, field_name: str) -> list[tuple[str, str]]:
        return {
            ConditionField.ASSIGNEE: self.agents,
            ConditionField.TEAM: self.teams,
            ConditionField.CATEGORY: self.categories,
            ConditionField.COMPANY: self.companies,
            ConditionField.MAILBOX: self.mailboxes,
        }[field_name]()


# --- Rows ----------------------------------------------------------------------------------


@dataclass
class Widget:
    """One input of a row: ``kind`` picks the template's element."""

    name: str
    kind: str  # text, textarea, lines, number, select, multi, flag, checkbox, password, none
    label: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    text: str = ""
    help: str = ""
    min: str = ""
    blank: str = ""
    datalist: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""

    @property
    def value(self) -> str:
        return self.selected[0] if self.selected else ""


@dataclass
class ConditionRow:
    key: str
    field: str
    operator: str
    values: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    widget: Widget | None = None
    operators: list[tuple[str, str]] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"c-{self.key}"


@dataclass
class ActionRow:
    key: str
    action_type: str
    params: dict[str, list[str]]
    errors: dict[str, str] = field(default_factory=dict)
    widgets: list[Widget] = field(default_factory=list)
    has_secret: bool = False

    @property
    def prefix(self) -> str:
        return f"a-{self.key}"


def condition_from_post(data: QueryDict, key: str) -> ConditionRow:
    prefix = f"c-{key}"
    field_name = data.get(f"{prefix}-field", "")
    if field_name not in condition_types.FIELD_KINDS:
        field_name = ConditionField.SUBJECT
    operator = data.get(f"{prefix}-operator", "")
    allowed = condition_types.operators_for(field_name)
    if operator not in allowed:
        operator = allowed[0]
    values = [v for v in data.getlist(f"{prefix}-value") if v is not None]
    return ConditionRow(key=key, field=field_name, operator=operator, values=values)


def action_from_post(data: QueryDict, key: str) -> ActionRow:
    prefix = f"a-{key}"
    action_type = data.get(f"{prefix}-type", "")
    if action_type not in action_types.PARAMS:
        action_type = ActionType.SET_STATUS
    names = (*action_types.PARAMS[action_type], "secret")
    params = {name: data.getlist(f"{prefix}-{name}") for name in names}
    has_secret = data.get(f"{prefix}-has_secret") == "1"
    return ActionRow(key=key, action_type=action_type, params=params, has_secret=has_secret)


def _keys(data: QueryDict, name: str) -> list[str]:
    keys = [k for k in data.getlist(name) if ROW_KEY_RE.match(k)]
    return list(dict.fromkeys(keys))[:MAX_ROWS]


def rows_from_post(data: QueryDict) -> tuple[list[ConditionRow], list[ActionRow]]:
    return (
        [condition_from_post(data, key) for key in _keys(data, "condition")],
        [action_from_post(data, key) for key in _keys(data, "action")],
    )


def _customer_emails(workspace: Workspace, ids: list[int]) -> dict[int, str]:
    return dict(
        Customer.objects.for_workspace(workspace).filter(pk__in=ids).values_list("pk", "email")
    )


def rows_from_automation(automation: Automation) -> tuple[list[ConditionRow], list[ActionRow]]:
    """A saved rule's rows (its conditions and actions, prefetched by the caller)."""
    conditions = list(automation.conditions.all())
    customer_ids = [
        pk
        for c in conditions
        if c.field == ConditionField.CUSTOMER
        for pk in (c.value if isinstance(c.value, list) else [c.value])
        if isinstance(pk, int)
    ]
    emails = _customer_emails(automation.workspace_id, customer_ids) if customer_ids else {}
    condition_rows = [
        ConditionRow(
            key=new_key(),
            field=c.field,
            operator=c.operator,
            values=_raw_condition_value(c.field, c.operator, c.value, emails),
        )
        for c in conditions
    ]
    action_rows = []
    for a in automation.actions.all():
        params: dict[str, list[str]] = {}
        for name, value in a.params.items():
            if isinstance(value, list):
                params[name] = [", ".join(value)] if name == "tags" else [str(v) for v in value]
            elif isinstance(value, bool):
                params[name] = ["1"] if value else []
            elif value is None:
                params[name] = [""]
            else:
                params[name] = [str(value)]
        action_rows.append(
            ActionRow(
                key=new_key(), action_type=a.action_type, params=params, has_secret=bool(a.secret)
            )
        )
    return condition_rows, action_rows


def _raw_condition_value(
    field_name: str, operator: str, value: Any, emails: dict[int, str]
) -> list[str]:
    if value is None:
        return []
    if field_name == ConditionField.CUSTOMER:
        ids = value if isinstance(value, list) else [value]
        return ["\n".join(emails.get(pk, str(pk)) for pk in ids)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        kind = condition_types.FIELD_KINDS[field_name]
        if kind in (condition_types.TEXT, condition_types.TAGS):
            return ["\n".join(str(v) for v in value)]
        return [str(v) for v in value]
    return [str(value)]


# --- Widgets -------------------------------------------------------------------------------


def decorate_condition(row: ConditionRow, choices: EditorChoices) -> ConditionRow:
    row.operators = [(op, OPERATOR_LABELS[op]) for op in condition_types.operators_for(row.field)]
    row.widget = condition_widget(row, choices)
    row.widget.error = row.errors.get("value", "")
    return row


def condition_widget(row: ConditionRow, choices: EditorChoices) -> Widget:
    name = f"{row.prefix}-value"
    kind = condition_types.FIELD_KINDS[row.field]
    many = row.operator in LIST_OPERATORS
    first = row.values[0] if row.values else ""
    if row.operator in NO_VALUE_OPERATORS:
        return Widget(name=name, kind="none")
    if kind == condition_types.TEXT:
        if many:
            return Widget(name=name, kind="lines", text=first, help="One per line.")
        if row.operator == ConditionOperator.MATCHES:
            return Widget(name=name, kind="text", text=first, help="A regular expression.")
        return Widget(name=name, kind="text", text=first)
    if kind == condition_types.CHOICE:
        options = list(CHOICE_LABELS[row.field].items())
        return Widget(
            name=name, kind="multi" if many else "select", options=options, selected=row.values
        )
    if kind == condition_types.REFERENCE:
        if row.field == ConditionField.CUSTOMER:
            if many:
                return Widget(
                    name=name,
                    kind="lines",
                    text=first,
                    help="Customers' email addresses, one per line.",
                )
            return Widget(name=name, kind="text", text=first, help="The customer's email address.")
        options = choices.reference(row.field)
        return Widget(
            name=name, kind="multi" if many else "select", options=options, selected=row.values
        )
    if kind == condition_types.TAGS:
        if many:
            return Widget(
                name=name,
                kind="lines",
                text=first,
                help="Tag names, one per line.",
                datalist=choices.tags(),
            )
        return Widget(name=name, kind="text", text=first, datalist=choices.tags())
    if kind == condition_types.FLAG:
        return Widget(
            name=name,
            kind="select",
            options=[("true", "Yes"), ("false", "No")],
            selected=row.values or ["true"],
        )
    # hours, sla_hours
    return Widget(
        name=name,
        kind="number",
        text=first,
        min="0" if kind == condition_types.HOURS else "",
        help="Hours (decimals allowed, e.g. 0.5)."
        if kind == condition_types.HOURS
        else "Hours left until the next SLA due time (negative: overdue).",
    )


def _param(row: ActionRow, name: str) -> list[str]:
    return row.params.get(name) or []


def _first(row: ActionRow, name: str) -> str:
    values = _param(row, name)
    return values[0] if values else ""


def decorate_action(row: ActionRow, choices: EditorChoices) -> ActionRow:
    row.widgets = action_widgets(row, choices)
    for widget in row.widgets:
        param = widget.name.rsplit("-", 1)[1]
        widget.error = row.errors.get(param, "")
    return row


def action_widgets(row: ActionRow, choices: EditorChoices) -> list[Widget]:
    p = row.prefix
    t = row.action_type
    A = ActionType
    if t == A.SET_STATUS:
        return [
            Widget(
                f"{p}-status", "select", "Status", list(TicketStatus.choices), _param(row, "status")
            )
        ]
    if t == A.SET_PRIORITY:
        return [
            Widget(
                f"{p}-priority",
                "select",
                "Priority",
                list(TicketPriority.choices),
                _param(row, "priority"),
            )
        ]
    if t == A.SET_CATEGORY:
        return [
            Widget(
                f"{p}-category_id",
                "select",
                "Category",
                choices.categories(),
                _param(row, "category_id"),
                blank="No category (clear it)",
            )
        ]
    if t == A.SET_TEAM:
        return [
            Widget(
                f"{p}-team_id",
                "select",
                "Team",
                choices.teams(),
                _param(row, "team_id"),
                blank="No team (clear it)",
            )
        ]
    if t == A.SET_ASSIGNEE:
        return [
            Widget(
                f"{p}-agent_id",
                "select",
                "Agent",
                choices.assignable_agents(),
                _param(row, "agent_id"),
                blank="Nobody (unassign)",
            )
        ]
    if t in (A.ASSIGN_ROUND_ROBIN, A.ASSIGN_LEAST_LOADED):
        return [Widget(f"{p}-team_id", "select", "Team", choices.teams(), _param(row, "team_id"))]
    if t in (A.ADD_TAGS, A.REMOVE_TAGS):
        return [
            Widget(
                f"{p}-tags",
                "text",
                "Tags",
                text=_first(row, "tags"),
                help="Separate tags with commas.",
                datalist=choices.tags(),
            )
        ]
    if t == A.ADD_NOTE:
        return [
            Widget(
                f"{p}-body",
                "textarea",
                "Note",
                text=_first(row, "body"),
                help="Placeholders such as {{ticket.subject}} are filled in.",
            )
        ]
    if t == A.SEND_CANNED_REPLY:
        return [
            Widget(
                f"{p}-canned_reply_id",
                "select",
                "Canned reply",
                choices.canned_replies(),
                _param(row, "canned_reply_id"),
                help="Shared canned replies; sent to the customer.",
            )
        ]
    if t == A.NOTIFY_AGENTS:
        return [
            Widget(f"{p}-message", "textarea", "Message", text=_first(row, "message")),
            Widget(f"{p}-agent_ids", "multi", "Agents", choices.agents(), _param(row, "agent_ids")),
            Widget(
                f"{p}-team_id",
                "select",
                "And a team's agents",
                choices.teams(),
                _param(row, "team_id"),
                blank="No team",
            ),
            Widget(
                f"{p}-assignee",
                "checkbox",
                "And the ticket's assignee",
                selected=_param(row, "assignee"),
            ),
        ]
    # CALL_WEBHOOK
    return [
        Widget(
            f"{p}-url",
            "text",
            "URL",
            text=_first(row, "url"),
            help="HTTPS; the request is signed with the secret (HMAC-SHA256).",
        ),
        Widget(
            f"{p}-secret",
            "password",
            "Signing secret",
            help="A secret is set: leave this empty to keep it." if row.has_secret else "Optional.",
        ),
    ]


# --- Raw rows → the services' JSON ---------------------------------------------------------


def _number(text: str) -> float | int:
    value = float(text.strip().replace(",", "."))
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return int(value) if value.is_integer() else value


def condition_json(row: ConditionRow, workspace: Workspace) -> tuple[dict[str, Any] | None, str]:
    """The condition as the services take it, or an error about its value."""
    kind = condition_types.FIELD_KINDS[row.field]
    many = row.operator in LIST_OPERATORS
    first = (row.values[0] if row.values else "").strip()
    value: Any
    if row.operator in NO_VALUE_OPERATORS:
        value = None
    elif kind in (condition_types.TEXT, condition_types.TAGS):
        value = _split(first) if many else first
    elif kind == condition_types.CHOICE:
        value = [v for v in row.values if v] if many else first
    elif kind == condition_types.REFERENCE:
        if row.field == ConditionField.CUSTOMER:
            emails = [e.lower() for e in _split(first)]
            if not emails:
                return None, "Give a customer's email address."
            found = dict(
                Customer.objects.for_workspace(workspace)
                .filter(email__in=emails)
                .values_list("email", "pk")
            )
            missing = [e for e in emails if e not in found]
            if missing:
                return None, f"No customer with the address {missing[0]} in this workspace."
            ids = [found[e] for e in emails]
            value = ids if many else ids[0]
        else:
            raw = [v for v in row.values if v] if many else ([first] if first else [])
            if not raw:
                return None, "Pick one." if not many else "Pick at least one."
            try:
                ids = [int(v) for v in raw]
            except ValueError:
                return None, "Pick from the list."
            value = ids if many else ids[0]
    elif kind == condition_types.FLAG:
        value = first != "false"
    else:
        if not first:
            return None, "Give a number of hours."
        try:
            value = _number(first)
        except ValueError:
            return None, "A number of hours, e.g. 4 or 0.5."
    return {"field": row.field, "operator": row.operator, "value": value}, ""


_ID_PARAMS = {"category_id", "team_id", "agent_id", "canned_reply_id"}
_NULLABLE = {
    (ActionType.SET_CATEGORY, "category_id"),
    (ActionType.SET_TEAM, "team_id"),
    (ActionType.SET_ASSIGNEE, "agent_id"),
}


def action_json(row: ActionRow) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The action as the services take it, or errors by parameter."""
    t = row.action_type
    params: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in action_types.PARAMS[t]:
        first = _first(row, name).strip()
        if name in _ID_PARAMS:
            if not first:
                if (t, name) in _NULLABLE:
                    params[name] = None
                elif name in action_types.REQUIRED[t]:
                    errors[name] = "Pick one."
                continue
            try:
                params[name] = int(first)
            except ValueError:
                errors[name] = "Pick from the list."
        elif name == "agent_ids":
            try:
                ids = [int(v) for v in _param(row, name) if v]
            except ValueError:
                errors[name] = "Pick from the list."
                continue
            if ids:
                params[name] = ids
        elif name == "assignee":
            params[name] = bool(_param(row, name))
        elif name == "tags":
            params[name] = _split(first)
        else:
            # Texts as typed (a note's line breaks matter); emptiness is the validator's.
            params[name] = _first(row, name)
    item: dict[str, Any] = {"action_type": t, "params": params}
    secret = _first(row, "secret")
    if t == ActionType.CALL_WEBHOOK and secret:
        item["secret"] = secret
    return (None if errors else item), errors


@dataclass
class CheckedRows:
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    ok: bool


def check_rows(
    condition_rows: list[ConditionRow], action_rows: list[ActionRow], workspace: Workspace
) -> CheckedRows:
    """Every row converted and validated by the services' own validators; each error is put
    on its row (``row.errors`` by part: field, operator, value, or a parameter name)."""
    conditions: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    ok = True
    for i, row in enumerate(condition_rows):
        item, error = condition_json(row, workspace)
        if item is None:
            row.errors["value"] = error
            ok = False
            continue
        try:
            item["value"] = condition_types.validate(
                item["field"],
                item["operator"],
                item["value"],
                workspace_id=workspace.pk,
                where=f"conditions.{i}",
            )
        except EnqueError as exc:
            row.errors[_part(exc.field)] = exc.message
            ok = False
            continue
        conditions.append(item)
    for i, row in enumerate(action_rows):
        item, errors = action_json(row)
        if item is None:
            row.errors.update(errors)
            ok = False
            continue
        try:
            item["params"] = action_types.validate(
                item["action_type"],
                item["params"],
                workspace_id=workspace.pk,
                where=f"actions.{i}",
            )
        except EnqueError as exc:
            row.errors[_part(exc.field)] = exc.message
            ok = False
            continue
        actions.append(item)
    return CheckedRows(conditions=conditions, actions=actions, ok=ok)


def _part(where: str | None) -> str:
    """``conditions.2.value`` → ``value``; ``actions.0.params.team_id`` → ``team_id``."""
    last = (where or "").rsplit(".", 1)[-1]
    return {"action_type": "type"}.get(last, last or "value")


def place_service_error(
    exc: EnqueError,
    form: forms.Form,
    condition_rows: list[ConditionRow],
    action_rows: list[ActionRow],
) -> None:
    """Put a service's refusal where it belongs: on a row, on a form field, or on top."""
    where = exc.field or ""
    match = re.match(r"^(conditions|actions)\.(\d+)(?:\.(.+))?$", where)
    if match:
        rows: list[Any] = condition_rows if match.group(1) == "conditions" else action_rows
        index = int(match.group(2))
        if index < len(rows):
            rows[index].errors[_part(match.group(3))] = exc.message
            return
    name = {"workflow_id": "workflow", "conditions": None, "actions": None}.get(where, where)
    form.add_error(name if name in form.fields else None, exc.message)


# --- The rule's own fields -----------------------------------------------------------------


class AutomationForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )
    trigger = forms.ChoiceField(choices=Trigger.choices, label="When")
    match = forms.ChoiceField(
        choices=[(MatchMode.ALL, "All conditions match"), (MatchMode.ANY, "Any condition matches")],
        initial=MatchMode.ALL,
        widget=forms.RadioSelect,
        label="Run the actions when",
    )
    workflow = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    position = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100_000,
        help_text="Rules run in this order (lowest first). Empty: after the others.",
    )

    def __init__(self, *args: Any, choices: EditorChoices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [("", "None (runs on its own)"), *choices.workflows()]
        self.fields["workflow"].help_text = "A workflow runs its rules in order, for its trigger."


class WorkflowForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )
    trigger = forms.ChoiceField(choices=Trigger.choices, label="When")
    stop_after_first_match = forms.BooleanField(
        required=False,
        label="Stop after the first matching rule",
        help_text="Otherwise every matching rule of the workflow runs, in order.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    position = forms.IntegerField(required=False, min_value=0, max_value=100_000)


class DryRunForm(forms.Form):
    ticket = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        label="Ticket #",
        help_text="Empty: the most recently updated tickets.",
    )
