""" "Sign in with Microsoft" and connecting a Microsoft 365 mailbox, in the agent UI.

Both flows keep their binding secret in the Django session, so the ``state`` Microsoft
sends back works only in the session that started it, and only once. Sign-in ends like
the password sign-in (``ui.views.auth``): Django's session login, the workspace put in the
session, the login recorded. Mailbox consent is for admins and ends on the mailbox
settings page with what happened.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from enque.api import throttling
from enque.errors import EnqueError
from integrations.microsoft import config, oauth
from integrations.microsoft.mailboxes import mailbox_connect_finish, mailbox_connect_start
from integrations.microsoft.signin import signin_finish, signin_start
from ui.session import admin_view, use_workspace
from ui.views.common import safe_next
from workspaces import services

SIGNIN_BINDING_KEY = "microsoft_signin_binding"
SIGNIN_NEXT_KEY = "microsoft_signin_next"
CONNECT_BINDING_KEY = "microsoft_connect_binding"


def _rate_limited(request: HttpRequest) -> bool:
    usage = throttling.count(request, scope="auth", key="ip")
    return usage is not None and usage.exceeded


def _callback_response(request: HttpRequest) -> dict[str, str]:
    return {key: value for key, value in request.GET.items() if value}


@never_cache
@require_GET
def microsoft_login(request: HttpRequest) -> HttpResponse:
    if _rate_limited(request):
        messages.error(request, "Too many sign-in attempts. Wait a few minutes and try again.")
        return redirect("ui:login")
    binding = oauth.new_binding()
    try:
        url, _state = signin_start(
            redirect_uri=config.redirect_uri(reverse("ui:microsoft_login_callback")),
            binding=binding,
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
        return redirect("ui:login")
    request.session[SIGNIN_BINDING_KEY] = binding
    request.session[SIGNIN_NEXT_KEY] = safe_next(request, reverse("ui:inbox"))
    return redirect(url)


@never_cache
@require_GET
def microsoft_login_callback(request: HttpRequest) -> HttpResponse:
    # Popped whatever happens: the binding is single-use like the state.
    binding = request.session.pop(SIGNIN_BINDING_KEY, None)
    target = request.session.pop(SIGNIN_NEXT_KEY, None) or reverse("ui:inbox")
    if _rate_limited(request):
        messages.error(request, "Too many sign-in attempts. Wait a few minutes and try again.")
        return redirect("ui:login")
    try:
        agent = signin_finish(
            state=request.GET.get("state", ""),
            binding=binding,
            auth_response=_callback_response(request),
        )
    except EnqueError as exc:
        messages.error(request, exc.message)
        return redirect("ui:login")
    login(request, agent.user, backend="django.contrib.auth.backends.ModelBackend")
    use_workspace(request, agent)
    services.agent_record_login(agent=agent)
    return redirect(target)


def mailbox_settings_url() -> str:
    try:
        return reverse("ui:settings_mailboxes")
    except NoReverseMatch:
        return reverse("ui:inbox")


class ConnectForm(forms.Form):
    email_address = forms.EmailField(max_length=254)
    is_shared_mailbox = forms.BooleanField(required=False)
    microsoft_integration = forms.IntegerField(required=False, min_value=1)


@require_POST
@admin_view
def microsoft_connect(request: HttpRequest) -> HttpResponse:
    form = ConnectForm(request.POST)
    if not form.is_valid():
        first = next(iter(form.errors.values()))[0]
        messages.error(request, f"Could not connect the mailbox: {first}")
        return redirect(mailbox_settings_url())
    binding = oauth.new_binding()
    try:
        url, _state = mailbox_connect_start(
            workspace=request.workspace,
            actor=request.agent,
            email_address=form.cleaned_data["email_address"],
            is_shared_mailbox=form.cleaned_data["is_shared_mailbox"],
            integration_id=form.cleaned_data["microsoft_integration"],
            redirect_uri=config.redirect_uri(reverse("ui:microsoft_connect_callback")),
            binding=binding,
        )
    except EnqueError as exc:
        messages.error(request, f"Could not connect the mailbox: {exc.message}")
        return redirect(mailbox_settings_url())
    request.session[CONNECT_BINDING_KEY] = binding
    return redirect(url)


@never_cache
@require_GET
@admin_view
def microsoft_connect_callback(request: HttpRequest) -> HttpResponse:
    binding = request.session.pop(CONNECT_BINDING_KEY, None)
    try:
        mailbox = mailbox_connect_finish(
            state=request.GET.get("state", ""),
            binding=binding,
            auth_response=_callback_response(request),
            actor=request.agent,
        )
    except EnqueError as exc:
        messages.error(request, f"The mailbox was not connected: {exc.message}")
    else:
        messages.success(
            request, f"{mailbox.email_address} is connected. Its mail syncs within minutes."
        )
    return redirect(mailbox_settings_url())
