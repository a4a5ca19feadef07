"""Signing in and out, switching workspace, and resetting a forgotten password.

Sign-in is Django's session login, with the API's two brakes on password guessing: the
``auth`` rate limit per client address and the count of failed sign-ins per email address
(``enque.api.throttling``). Only an active agent of an active workspace gets in; the
session then carries that workspace (``ui.session``).

Password reset goes through the same services as ``/v1/auth/password-reset``: the emailed
link is ``/password-reset/confirm?token=…`` whichever asked for it, and this page is where
it lands.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from enque.api import throttling
from enque.errors import EnqueError
from ui.forms import (
    LoginForm,
    PasswordResetConfirmForm,
    PasswordResetRequestForm,
    add_service_error,
)
from ui.session import agent_view, use_workspace
from ui.views.common import safe_next
from workspaces import services
from workspaces.selectors import membership_for_login


def _rate_limited(request: HttpRequest) -> bool:
    """Counts this request against the ``auth`` limit of its address; True past it."""
    usage = throttling.count(request, scope="auth", key="ip")
    return usage is not None and usage.exceeded


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request, reverse("ui:inbox")))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        wait = throttling.login_failures_wait(request, email)
        if _rate_limited(request) or wait is not None:
            form.add_error(None, "Too many sign-in attempts. Wait a few minutes and try again.")
            status = 429
        else:
            user = authenticate(request, email=email, password=form.cleaned_data["password"])
            agent = membership_for_login(user=user) if user is not None else None
            if user is None:
                throttling.record_login_failure(request, email)
                form.add_error(None, "Invalid email or password.")
            elif agent is None:
                form.add_error(None, "This account is not an active agent of any workspace.")
            else:
                login(request, user)
                use_workspace(request, agent)
                services.agent_record_login(agent=agent)
                return redirect(safe_next(request, reverse("ui:inbox")))
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "ui/auth/login.html",
        {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")},
        status=status,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.success(request, "You have signed out.")
    return redirect("ui:login")


@require_POST
@agent_view
def switch_workspace(request: HttpRequest) -> HttpResponse:
    try:
        workspace_id = int(request.POST.get("workspace", ""))
    except ValueError:
        raise Http404 from None
    agent = membership_for_login(user=request.user, workspace_id=workspace_id)
    if agent is None:
        raise Http404
    use_workspace(request, agent)
    services.agent_record_login(agent=agent)
    messages.success(request, f"You are now in {agent.workspace.name}.")
    # Whatever page was open belonged to the other workspace: start from the inbox.
    return redirect("ui:inbox")


@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if _rate_limited(request):
            form.add_error(None, "Too many requests. Wait a few minutes and try again.")
            return render(request, "ui/auth/password_reset.html", {"form": form}, status=429)
        services.password_reset_request(email=form.cleaned_data["email"])
        # The same answer whether or not the address has an account.
        return render(
            request, "ui/auth/password_reset_sent.html", {"email": form.cleaned_data["email"]}
        )
    return render(request, "ui/auth/password_reset.html", {"form": form})


@sensitive_post_parameters("password", "password_again")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_confirm(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("token") or request.GET.get("token", "")
    form = PasswordResetConfirmForm(request.POST or None)
    invalid_link = not token
    if request.method == "POST" and form.is_valid() and token:
        if _rate_limited(request):
            form.add_error(None, "Too many requests. Wait a few minutes and try again.")
        else:
            try:
                services.password_reset_confirm(token=token, password=form.cleaned_data["password"])
            except EnqueError as exc:
                if exc.code == "invalid_token":
                    invalid_link = True
                else:
                    add_service_error(form, exc)
            else:
                messages.success(request, "Your password has been changed. Sign in with it.")
                return redirect("ui:login")
    return render(
        request,
        "ui/auth/password_reset_confirm.html",
        {"form": form, "token": token, "invalid_link": invalid_link},
        status=400 if request.method == "POST" else 200,
    )
