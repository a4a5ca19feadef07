"""Settings → Mailboxes (admins): the list with sync status and errors, add and edit an
IMAP/SMTP mailbox, edit a Microsoft 365 one, delete, "Sync now", and the form that starts
connecting a Microsoft 365 mailbox (``ui:microsoft_connect``, integrations.microsoft).

Writes are ``integrations.services``. Saving IMAP settings signs in to the server first
(``verify=True``) and shows a failure on the form, keeping what was typed: an admin at the
form can fix a typo now, whereas a mailbox saved broken would only fail later, in the
background. (The API saves without signing in unless asked, and offers ``/test``.)
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from enque.errors import EnqueError
from integrations import services
from integrations.models import (
    MailboxConnection,
    MailboxProvider,
    MicrosoftIntegration,
    TransportSecurity,
)
from tickets.models import Category, TicketPriority
from ui.forms import add_service_error
from ui.session import admin_view
from ui.views.common import render_page
from workspaces.models import Team, Workspace

DEFAULT_IMAP_PORT = 993
KEEP_PASSWORD_HELP = "Leave empty to keep the saved password."  # noqa: S105 - help text


# --- Forms -----------------------------------------------------------------------------------


class _DefaultsForm(forms.Form):
    """What every mailbox has: its name, state and the defaults of the tickets it opens."""

    display_name = forms.CharField(
        label="Display name",
        max_length=200,
        required=False,
        help_text="Shown to customers as the sender of replies, e.g. “Acme Support”.",
    )
    is_active = forms.BooleanField(
        label="Active (fetch mail from this mailbox)", required=False, initial=True
    )
    default_team = forms.ModelChoiceField(
        label="Team for new tickets", queryset=Team.objects.none(), required=False
    )
    default_category = forms.ModelChoiceField(
        label="Category for new tickets", queryset=Category.objects.none(), required=False
    )
    default_priority = forms.ChoiceField(
        label="Priority for new tickets",
        choices=TicketPriority.choices,
        initial=TicketPriority.NORMAL,
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Another workspace's team or category is "not one of the available choices".
        self.fields["default_team"].queryset = Team.objects.for_workspace(workspace).order_by(
            "name", "id"
        )
        self.fields["default_category"].queryset = Category.objects.for_workspace(
            workspace
        ).order_by("name", "id")


class ImapMailboxForm(_DefaultsForm):
    email_address = forms.EmailField(
        label="Email address",
        max_length=254,
        help_text="The address customers write to.",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    imap_host = forms.CharField(
        label="IMAP server", max_length=253, help_text="For example imap.example.com."
    )
    imap_port = forms.IntegerField(
        label="IMAP port", min_value=1, max_value=65535, initial=DEFAULT_IMAP_PORT
    )
    imap_security = forms.ChoiceField(
        label="IMAP security", choices=TransportSecurity.choices, initial=TransportSecurity.SSL
    )
    imap_username = forms.CharField(
        label="IMAP user name",
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    imap_password = forms.CharField(
        label="IMAP password",
        max_length=1000,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    imap_folder = forms.CharField(label="Folder", max_length=200, initial="INBOX")
    smtp_host = forms.CharField(
        label="SMTP server",
        max_length=253,
        required=False,
        help_text="For replies. Leave empty to set it up later.",
    )
    smtp_port = forms.IntegerField(label="SMTP port", min_value=1, max_value=65535, required=False)
    smtp_security = forms.ChoiceField(
        label="SMTP security",
        choices=TransportSecurity.choices,
        initial=TransportSecurity.STARTTLS,
    )
    smtp_username = forms.CharField(
        label="SMTP user name",
        max_length=254,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    smtp_password = forms.CharField(
        label="SMTP password",
        max_length=1000,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # Passwords are write-only: never sent back to the browser.
            for name in ("imap_password", "smtp_password"):
                self.fields[name].required = False
                self.fields[name].help_text = KEEP_PASSWORD_HELP


class MailboxDefaultsForm(_DefaultsForm):
    """A Microsoft 365 mailbox: its connection is the OAuth grant, not fields."""


class MicrosoftConnectForm(forms.Form):
    """Posted to ``ui:microsoft_connect`` (integrations.microsoft), which starts the OAuth
    consent for the address."""

    email_address = forms.EmailField(
        label="Mailbox address",
        max_length=254,
        help_text="The Microsoft 365 mailbox customers write to.",
    )
    is_shared_mailbox = forms.BooleanField(
        label="This is a shared mailbox (signed in through a user who can open it)",
        required=False,
    )
    microsoft_integration = forms.ChoiceField(label="Microsoft app", required=False)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        # Its own ids: it shares the list page with nothing else, but stays unambiguous.
        kwargs.setdefault("auto_id", "id_ms_%s")
        super().__init__(*args, **kwargs)
        apps = MicrosoftIntegration.objects.for_workspace(workspace).filter(is_active=True)
        self.fields["microsoft_integration"].choices = [
            ("", "Deployment default"),
            *((str(app.pk), app.name) for app in apps.order_by("name", "id")),
        ]


IMAP_FIELDS = (
    "email_address",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
    "imap_folder",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
)
DEFAULT_FIELDS = (
    "display_name",
    "is_active",
    "default_team",
    "default_category",
    "default_priority",
)


# --- Views ----------------------------------------------------------------------------------


def _mailbox_or_404(request: HttpRequest, pk: int) -> MailboxConnection:
    mailbox = services.mailbox_list(workspace=request.workspace).filter(pk=pk).first()
    if mailbox is None:
        raise Http404("No such mailbox.")
    return mailbox


def _microsoft_connect_url() -> str:
    try:
        return reverse("ui:microsoft_connect")
    except NoReverseMatch:
        return ""


@require_GET
@admin_view
def mailbox_list(request: HttpRequest) -> HttpResponse:
    # Two queries: the mailboxes (with team, category, sync config), the Microsoft apps.
    mailboxes = list(services.mailbox_list(workspace=request.workspace))
    connect_url = _microsoft_connect_url()
    return render_page(
        request,
        "ui/settings/mailboxes/list.html",
        {
            "settings_section": "mailboxes",
            "mailboxes": mailboxes,
            "connect_form": (
                MicrosoftConnectForm(workspace=request.workspace) if connect_url else None
            ),
        },
    )


@require_http_methods(["GET", "POST"])
@admin_view
def mailbox_new(request: HttpRequest) -> HttpResponse:
    form = ImapMailboxForm(request.POST or None, workspace=request.workspace)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                mailbox = services.mailbox_create_imap(
                    workspace=request.workspace,
                    actor=request.agent,
                    verify=True,
                    **{name: data[name] for name in (*IMAP_FIELDS, *DEFAULT_FIELDS)},
                )
            except EnqueError as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request,
                    f"Added {mailbox.email_address}. Its mail is fetched within minutes, or "
                    "now with “Sync now”.",
                )
                return redirect("ui:settings_mailboxes")
    return render_page(
        request,
        "ui/settings/mailboxes/form.html",
        {"settings_section": "mailboxes", "form": form, "mailbox": None},
        status=status,
    )


def _initial(mailbox: MailboxConnection) -> dict[str, Any]:
    initial = {name: getattr(mailbox, name) for name in DEFAULT_FIELDS}
    if mailbox.provider == MailboxProvider.IMAP:
        for name in IMAP_FIELDS:
            if not name.endswith("_password"):
                initial[name] = getattr(mailbox, name)
    return initial


@require_http_methods(["GET", "POST"])
@admin_view
def mailbox_detail(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox_or_404(request, pk)
    is_imap = mailbox.provider == MailboxProvider.IMAP
    kwargs: dict[str, Any] = {"initial": _initial(mailbox), "workspace": request.workspace}
    form: forms.Form = (
        ImapMailboxForm(request.POST or None, editing=True, **kwargs)
        if is_imap
        else MailboxDefaultsForm(request.POST or None, **kwargs)
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            names = (*IMAP_FIELDS, *DEFAULT_FIELDS) if is_imap else DEFAULT_FIELDS
            try:
                services.mailbox_update(
                    workspace=request.workspace,
                    actor=request.agent,
                    mailbox=mailbox,
                    verify=True,
                    **{name: form.cleaned_data[name] for name in names},
                )
            except EnqueError as exc:
                add_service_error(form, exc)
                mailbox = _mailbox_or_404(request, pk)  # the form's values were not saved
            else:
                messages.success(request, f"Saved {mailbox.email_address}.")
                return redirect("ui:settings_mailboxes")
    return render_page(
        request,
        "ui/settings/mailboxes/form.html",
        {
            "settings_section": "mailboxes",
            "form": form,
            "mailbox": mailbox,
            "connect_url": _microsoft_connect_url(),
        },
        status=status,
    )


@require_POST
@admin_view
def mailbox_delete(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox_or_404(request, pk)
    services.mailbox_delete(workspace=request.workspace, actor=request.agent, mailbox=mailbox)
    messages.success(
        request, f"Deleted {mailbox.email_address}. Its tickets and received mail are kept."
    )
    return redirect("ui:settings_mailboxes")


@require_POST
@admin_view
def mailbox_sync(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox_or_404(request, pk)
    try:
        services.mailbox_request_sync(
            workspace=request.workspace, actor=request.agent, mailbox=mailbox
        )
    except EnqueError as exc:
        messages.error(request, f"{mailbox.email_address} was not synced: {exc.message}")
    else:
        messages.success(
            request,
            f"Syncing {mailbox.email_address}. New mail appears in the inbox as it arrives.",
        )
    return redirect("ui:settings_mailboxes")
