"""The UI's forms: they parse and validate input; the services decide and write.

Choices that name a workspace's objects (agents, teams, categories, companies) are built
from querysets scoped to the request's workspace, so a posted id of another workspace is a
form error before any service runs — and the services check again regardless.
``add_service_error`` puts a service's ``EnqueError`` on the form field it names.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from enque.errors import EnqueError
from tickets.models import TicketPriority, TicketStatus
from workspaces.models import Agent, Company, Workspace

# Service field names → form field names, where they differ.
_FIELD_ALIASES = {
    "company_id": "company",
    "category_id": "category",
    "team_id": "team",
    "assignee_id": "assignee",
    "ids": "numbers",
}


def add_service_error(form: forms.Form, exc: EnqueError) -> None:
    """Show a service's refusal on the field it concerns (else above the form)."""
    name = _FIELD_ALIASES.get(exc.field or "", exc.field)
    form.add_error(name if name in form.fields else None, exc.message)


# --- Signing in ------------------------------------------------------------------------------


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )


class PasswordResetConfirmForm(forms.Form):
    password = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
    )
    password_again = forms.CharField(
        label="New password, again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


# --- The ticket page -------------------------------------------------------------------------

STATUS_AFTER_CHOICES = [
    ("", "Keep status"),
    (TicketStatus.OPEN, "Open"),
    (TicketStatus.PENDING, "Pending"),
    (TicketStatus.ON_HOLD, "On hold"),
    (TicketStatus.RESOLVED, "Resolved"),
    (TicketStatus.CLOSED, "Closed"),
]


class ReplyForm(forms.Form):
    MODES = [("reply", "Reply to customer"), ("note", "Internal note")]

    mode = forms.ChoiceField(choices=MODES, initial="reply", widget=forms.RadioSelect)
    body = forms.CharField(
        required=False,
        strip=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "Write your reply…"}),
    )
    status = forms.ChoiceField(
        label="Then set status", choices=STATUS_AFTER_CHOICES, required=False
    )
    attachment_ids = forms.CharField(required=False, widget=forms.MultipleHiddenInput)
    files = forms.FileField(required=False, label="Attach files")
    send_at = forms.DateTimeField(
        label="Send later",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    # The browser's reading of send_at with its own offset (set by ticket.js): an agent's
    # "9:00" is their local nine o'clock, whatever the workspace's zone.
    send_at_iso = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, workspace: Workspace, agent: Agent, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.agent = agent
        if not agent.can_reply:
            self.fields["mode"].choices = [("note", "Internal note")]
            self.fields["mode"].initial = "note"

    def clean_attachment_ids(self) -> list[int]:
        raw = self.data.getlist("attachment_ids") if hasattr(self.data, "getlist") else []
        ids: list[int] = []
        for value in raw:
            try:
                ids.append(int(value))
            except ValueError:
                raise forms.ValidationError("Unknown attachment.") from None
        return list(dict.fromkeys(ids))[:50]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        iso = (data.get("send_at_iso") or "").strip()
        when: datetime | None = None
        if iso:
            when = parse_datetime(iso)
            if when is None or timezone.is_naive(when):
                self.add_error("send_at", "Pick a date and time.")
                when = None
        elif data.get("send_at"):
            # Without the browser's offset, the time is read in the workspace's zone.
            when = data["send_at"]
            if timezone.is_naive(when):
                when = when.replace(tzinfo=_zone(self.workspace))
        if when is not None and when <= timezone.now():
            self.add_error("send_at", "Pick a time in the future.")
        data["when"] = when
        if data.get("mode") == "note" and data.get("status") and not self.agent.can_reply:
            data["status"] = ""
        return data


def _zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


class TicketFieldsForm(forms.Form):
    """The side panel: each select posts alone, so only the fields present change."""

    status = forms.ChoiceField(choices=TicketStatus.choices, required=False)
    priority = forms.ChoiceField(choices=TicketPriority.choices, required=False)
    assignee = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    team = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    category = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)

    def __init__(
        self,
        *args: Any,
        agents: list[Agent],
        teams: list[Any],
        categories: list[Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Unassigned")] + [
            (a.pk, a.name) for a in agents if a.is_active
        ]
        self.fields["team"].choices = [("", "No team")] + [(t.pk, t.name) for t in teams]
        self.fields["category"].choices = [("", "No category")] + [
            (c.pk, c.name) for c in categories
        ]

    def changes(self) -> dict[str, Any]:
        """The fields the request carried, cleaned (a blank reference means "none")."""
        return {name: self.cleaned_data[name] for name in self.fields if name in self.data}


class TagForm(forms.Form):
    add = forms.CharField(required=False, max_length=64, label="Add a tag")
    remove = forms.CharField(required=False, max_length=64)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not (data.get("add") or "").strip() and not (data.get("remove") or "").strip():
            raise forms.ValidationError("Name a tag.")
        return data


class MergeForm(forms.Form):
    into = forms.IntegerField(
        label="Merge into ticket #", min_value=1, max_value=2**31 - 1, widget=forms.NumberInput
    )


# --- The inbox -------------------------------------------------------------------------------

BULK_ACTIONS = [
    ("assign", "Assign"),
    ("status", "Set status"),
    ("tag", "Add tag"),
    ("merge", "Merge"),
]


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    numbers = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)
    assignee = forms.CharField(required=False)
    status = forms.ChoiceField(choices=[("", "—"), *TicketStatus.choices], required=False)
    tag = forms.CharField(required=False, max_length=64)
    into = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1)

    def __init__(self, *args: Any, agents: list[Agent], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agents = {a.pk: a for a in agents if a.is_active}
        # Ticket numbers are checked by the service (per ticket); here only their shape.
        numbers = self.data.getlist("numbers") if hasattr(self.data, "getlist") else []
        self.fields["numbers"].choices = [(n, n) for n in numbers if re.fullmatch(r"\d{1,9}", n)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if action == "assign":
            raw = (data.get("assignee") or "").strip()
            if raw == "none":
                data["agent"] = None
            elif raw.isdigit() and int(raw) in self.agents:
                data["agent"] = self.agents[int(raw)]
            else:
                self.add_error("assignee", "Pick an agent.")
        elif action == "status" and not data.get("status"):
            self.add_error("status", "Pick a status.")
        elif action == "tag" and not (data.get("tag") or "").strip():
            self.add_error("tag", "Name a tag.")
        elif action == "merge":
            numbers = data.get("numbers") or []
            if not data.get("into"):
                self.add_error("into", "Pick the ticket to merge into.")
            elif len([n for n in numbers if n != data["into"]]) < 1:
                self.add_error("numbers", "Select the tickets to merge into it.")
        return data


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=120, label="View name")
    shared = forms.BooleanField(required=False, label="Share with the workspace")


# --- Customers and companies -----------------------------------------------------------------


class CustomerForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    email = forms.EmailField(max_length=254)
    phone = forms.CharField(required=False, max_length=50)
    company = forms.ModelChoiceField(queryset=Company.objects.none(), required=False)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = Company.objects.for_workspace(workspace).order_by(
            "name", "id"
        )
        self.fields["company"].empty_label = "No company"


class CompanyForm(forms.Form):
    name = forms.CharField(max_length=200)
    domains = forms.CharField(
        required=False,
        help_text="Mail domains, one per line or comma-separated. New customers writing "
        "from them join this company.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def clean_domains(self) -> list[str]:
        raw = self.cleaned_data.get("domains") or ""
        return [d for d in re.split(r"[\s,;]+", raw) if d]
