"""The settings pages' forms: they parse what an admin typed into the shapes the services
take; the services decide (roles, uniqueness, same-workspace references) and write.

Field limits are the API's input serializers' (``workspaces.api.serializers``,
``workspaces.people_api.serializers``, ``tickets.settings_api``,
``automation.api.schedules``), so the UI and the API accept the same values. Choices naming
a workspace's objects are querysets scoped to the request's workspace: another workspace's
id is a form error before any service runs, and the services check again regardless.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, time
from functools import cache
from typing import Any

from django import forms

from automation.models import BusinessHours, Weekday
from tickets.models import Category, TicketPriority
from tickets.services import MAX_CANNED_REPLY_BODY, MAX_TAG_LENGTH
from workspaces.models import Agent, AgentRole, Company, Customer, Team, Workspace
from workspaces.services import MAX_SIGNATURE_LENGTH

MAX_DOMAINS = 100  # the API's signup_domains max_length
MAX_TARGET_MINUTES = 366 * 24 * 60  # automation.services.MAX_TARGET_MINUTES


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone name the server knows, sorted (UTC first: the usual default). Legacy
    names (GMT, EST5EDT…) stay: a workspace set to one through the API must save unchanged."""
    names = sorted(zoneinfo.available_timezones())
    return [("UTC", "UTC")] + [(n, n.replace("_", " ")) for n in names if n != "UTC"]


def split_list(raw: str) -> list[str]:
    """Items typed one per line or comma-separated."""
    return [item for item in re.split(r"[\s,;]+", raw or "") if item]


# --- Workspace -------------------------------------------------------------------------------


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=200, label="Workspace name")
    timezone = forms.ChoiceField(
        label="Time zone",
        help_text="Reports, SLA clocks and dates in the UI use this zone.",
    )
    default_signature = forms.CharField(
        required=False,
        strip=False,
        max_length=MAX_SIGNATURE_LENGTH,
        label="Default signature",
        help_text="Ends every reply of an agent who has no signature of their own. "
        "Simple HTML is kept (links, bold, line breaks); anything else is removed.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    signup_domains = forms.CharField(
        required=False,
        label="Microsoft sign-up domains",
        help_text="Mail domains (one per line or comma-separated) whose people may create "
        "their account by signing in with Microsoft. Empty: invitation only.",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "example.com"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = time_zone_choices()

    def clean_signup_domains(self) -> list[str]:
        domains = split_list(self.cleaned_data.get("signup_domains", ""))
        if len(domains) > MAX_DOMAINS:
            raise forms.ValidationError(f"At most {MAX_DOMAINS} domains.")
        for domain in domains:
            if len(domain) > 253:
                raise forms.ValidationError(f"{domain[:40]}… is too long for a domain.")
        return domains


# --- Agents and invitations ------------------------------------------------------------------


def role_choices(actor: Agent) -> list[tuple[str, str]]:
    """The roles ``actor`` may give: only an owner grants ``owner``."""
    return [
        (value, label)
        for value, label in AgentRole.choices
        if value != AgentRole.OWNER or actor.role == AgentRole.OWNER
    ]


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")
    role = forms.ChoiceField(initial=AgentRole.AGENT)
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.none(),
        required=False,
        label="Teams",
        help_text="Joined when the invitation is accepted.",
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, actor: Agent, teams: list[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(actor)
        self.fields[
            "role"
        ].help_text = "Admins manage settings; light agents read and add internal notes only."
        field = self.fields["teams"]
        field.queryset = Team.objects.for_workspace(actor.workspace_id).order_by("name", "id")
        # The page's list of teams doubles as the choices: no second query to render them.
        field.choices = [(t.pk, t.name) for t in teams]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=AgentRole.choices)


# --- Teams -----------------------------------------------------------------------------------


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )
    members = forms.ModelMultipleChoiceField(
        queryset=Agent.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Agents of this workspace; a team's tickets can be assigned round-robin "
        "among them by an automation.",
    )
    teams_webhook_url = forms.CharField(
        required=False,
        strip=True,
        label="Microsoft Teams webhook URL",
        help_text="Optional: the team's notifications are also posted to this Teams channel. "
        "Stored encrypted and never shown again; leave empty to keep the current one.",
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "placeholder": "https://…"}
        ),
    )
    clear_webhook = forms.BooleanField(required=False, label="Remove the Teams webhook")

    def __init__(self, *args: Any, workspace: Workspace, agents: list[Agent], **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = self.fields["members"]
        field.queryset = Agent.objects.for_workspace(workspace).select_related("user")
        field.choices = [
            (a.pk, f"{a.name} ({a.user.email})" + ("" if a.is_active else ", deactivated"))
            for a in agents
        ]


# --- Categories, tags, canned replies --------------------------------------------------------


class CategoryForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )


class TagForm(forms.Form):
    name = forms.CharField(max_length=MAX_TAG_LENGTH)
    color = forms.RegexField(
        regex=r"^#[0-9a-fA-F]{6}$",
        required=False,
        max_length=7,
        label="Colour",
        help_text="A hex code such as #3b82f6, or empty for the default.",
        error_messages={"invalid": "A colour is a hex code such as #3b82f6."},
        widget=forms.TextInput(attrs={"placeholder": "#3b82f6", "maxlength": 7}),
    )


class CannedReplyForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        max_length=MAX_CANNED_REPLY_BODY,
        strip=False,
        # Rendered with the placeholder list (settings/_canned_fields.html); the help text's
        # id is what the textarea's aria-describedby names.
        help_text="Plain text.",
        widget=forms.Textarea(attrs={"rows": 7}),
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.none(), required=False, empty_label="No category"
    )
    shared = forms.BooleanField(
        required=False,
        initial=True,
        label="Shared with the whole workspace",
        help_text="Unticked: personal, seen and used by you alone.",
    )

    def __init__(self, *args: Any, workspace: Workspace, categories: list[Category], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        field.queryset = Category.objects.for_workspace(workspace)
        field.choices = [("", "No category")] + [(c.pk, c.name) for c in categories]


# --- SLA policies and business hours ---------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhm]?)")
_DURATION_FULL = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[dhm]?\s*)+$")
_UNIT_MINUTES = {"d": 24 * 60, "h": 60, "m": 1, "": 1}


def parse_duration(raw: str) -> int | None:
    """ "90", "90m", "4h", "1h 30m", "1.5h", "2d" (24 hours each) → minutes; "" → None."""
    raw = (raw or "").strip().lower()
    if not raw:
        return None
    if not _DURATION_FULL.match(raw):
        raise forms.ValidationError("Write a duration such as 30m, 4h, 1h 30m or 2d.")
    minutes = sum(float(n) * _UNIT_MINUTES[unit] for n, unit in _DURATION_PART.findall(raw))
    minutes = round(minutes)
    if not 1 <= minutes <= MAX_TARGET_MINUTES:
        raise forms.ValidationError("Between 1 minute and 366 days.")
    return minutes


def format_duration(minutes: int | None) -> str:
    """The inverse of ``parse_duration``, for showing and editing: 90 → "1h 30m"."""
    if not minutes:
        return ""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return " ".join(p for p in parts if p)


class DurationField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("widget", forms.TextInput(attrs={"placeholder": "e.g. 4h"}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> int | None:  # type: ignore[override]
        return parse_duration(super().clean(value))


PRIORITIES = list(reversed(TicketPriority.choices))  # urgent first, as agents read them


class SLAPolicyForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    business_hours = forms.ModelChoiceField(
        queryset=BusinessHours.objects.none(),
        required=False,
        empty_label="Calendar time (24/7)",
        help_text="Targets count only the open hours of this schedule.",
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.none(), required=False, empty_label="Any category"
    )
    company = forms.ModelChoiceField(
        queryset=Company.objects.none(), required=False, empty_label="Any company"
    )
    customer_email = forms.EmailField(
        required=False,
        max_length=254,
        label="Customer",
        help_text="Only this customer's tickets (their email address); empty: any customer.",
    )

    def __init__(
        self,
        *args: Any,
        workspace: Workspace,
        hours: list[BusinessHours],
        categories: list[Category],
        companies: list[Company],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        for name, queryset, rows, empty in (
            ("business_hours", BusinessHours.objects, hours, "Calendar time (24/7)"),
            ("category", Category.objects, categories, "Any category"),
            ("company", Company.objects, companies, "Any company"),
        ):
            field = self.fields[name]
            field.queryset = queryset.for_workspace(workspace)
            field.choices = [("", empty)] + [(row.pk, str(row.name)) for row in rows]
        for value, label in PRIORITIES:
            self.fields[f"{value}_first_response"] = DurationField(label=f"{label}: first response")
            self.fields[f"{value}_resolution"] = DurationField(label=f"{label}: resolution")

    def target_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [
            (label, self[f"{value}_first_response"], self[f"{value}_resolution"])
            for value, label in PRIORITIES
        ]

    def clean_customer_email(self) -> Customer | None:
        email = (self.cleaned_data.get("customer_email") or "").strip().lower()
        if not email:
            return None
        customer = Customer.objects.for_workspace(self.workspace).filter(email=email).first()
        if customer is None:
            raise forms.ValidationError("No customer with this address in this workspace.")
        return customer

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        targets = []
        for value, _label in PRIORITIES:
            first = data.get(f"{value}_first_response")
            resolution = data.get(f"{value}_resolution")
            if first is not None or resolution is not None:
                targets.append(
                    {
                        "priority": value,
                        "first_response_minutes": first,
                        "resolution_minutes": resolution,
                    }
                )
        if not targets and not self.errors:
            raise forms.ValidationError("Give at least one target (for any priority).")
        data["targets"] = targets
        return data


_SLOT_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*(?:-|\u2013|to)\s*(\d{1,2}):(\d{2})$")


def parse_slots(raw: str) -> list[tuple[time, time]]:
    """ "09:00-17:00" or "09:00-12:00, 13:00-17:30" → intervals; "" → closed.
    "24:00" is midnight at the end of the day (stored 23:59, as the API documents)."""
    slots = []
    for part in [p.strip() for p in (raw or "").split(",") if p.strip()]:
        match = _SLOT_RE.match(part)
        if not match:
            raise forms.ValidationError(f"“{part}” is not a time range such as 09:00-17:00.")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h2, m2) == (24, 0):
            h2, m2 = 23, 59
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise forms.ValidationError(f"“{part}” is not a time of day.")
        opens, closes = time(h1, m1), time(h2, m2)
        if opens >= closes:
            raise forms.ValidationError(f"“{part}” closes before it opens.")
        slots.append((opens, closes))
    return slots


def format_slots(slots: list[tuple[time, time]]) -> str:
    return ", ".join(
        f"{o:%H:%M}-{'24:00' if c == time(23, 59) else format(c, '%H:%M')}" for o, c in slots
    )


_HOLIDAY_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(.*)$")


def parse_holidays(raw: str) -> list[dict[str, Any]]:
    holidays = []
    for line in [ln.strip() for ln in (raw or "").splitlines() if ln.strip()]:
        match = _HOLIDAY_RE.match(line)
        try:
            day = date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if day is None:
            raise forms.ValidationError(f"“{line[:60]}” does not start with a date (YYYY-MM-DD).")
        holidays.append({"date": day, "name": match.group(2).strip()[:120]})
    return holidays


class BusinessHoursForm(forms.Form):
    name = forms.CharField(max_length=120)
    timezone = forms.ChoiceField(label="Time zone")
    is_default = forms.BooleanField(
        required=False,
        label="The workspace's default schedule",
        help_text="Used wherever no schedule is named.",
    )
    holidays = forms.CharField(
        required=False,
        label="Holidays",
        help_text="One per line: a date and a name, e.g. 2026-12-25 Christmas. "
        "The SLA clock stops all day.",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "2026-12-25 Christmas"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = time_zone_choices()
        for value, label in Weekday.choices:
            self.fields[f"day_{value}"] = forms.CharField(
                required=False,
                max_length=200,
                label=label,
                widget=forms.TextInput(attrs={"placeholder": "Closed"}),
            )

    def day_fields(self) -> list[forms.BoundField]:
        return [self[f"day_{value}"] for value, _ in Weekday.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        slots = []
        for value, _label in Weekday.choices:
            try:
                intervals = parse_slots(data.get(f"day_{value}", ""))
            except forms.ValidationError as exc:
                self.add_error(f"day_{value}", exc)
                continue
            slots += [{"weekday": value, "opens_at": o, "closes_at": c} for o, c in intervals]
        data["slots"] = slots
        try:
            data["holiday_rows"] = parse_holidays(data.get("holidays", ""))
        except forms.ValidationError as exc:
            self.add_error("holidays", exc)
        return data

    @staticmethod
    def initial_for(hours: BusinessHours) -> dict[str, Any]:
        by_day: dict[int, list[tuple[time, time]]] = {}
        for slot in hours.slots.all():
            by_day.setdefault(slot.weekday, []).append((slot.opens_at, slot.closes_at))
        initial: dict[str, Any] = {
            "name": hours.name,
            "timezone": hours.timezone,
            "is_default": hours.is_default,
            "holidays": "\n".join(
                f"{h.date.isoformat()} {h.name}".strip() for h in hours.holidays.all()
            ),
        }
        for value, _ in Weekday.choices:
            initial[f"day_{value}"] = format_slots(sorted(by_day.get(value, [])))
        return initial
