""" "Sign in with Microsoft": which agent a verified Microsoft identity is.

The match is by the Azure AD object id first (``User.microsoft_oid``, set at the first
Microsoft sign-in), then by a *verified* address: the id token's ``email`` only when
Microsoft vouches for its domain (``xms_edov``), and the account's ``userPrincipalName``
from Graph ``/me`` (its domain must be verified in the tenant). The plain ``email`` and
``preferred_username`` claims are not proof: any tenant admin can set them to any
address. A person with no account gets one only where a workspace lists their domain in
``signup_domains``.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.db import IntegrityError, transaction

from enque.errors import Forbidden, NotFound
from integrations.microsoft import oauth
from integrations.microsoft.config import (
    GRAPH_ROOT,
    SIGNIN_SCOPES,
    AppCredentials,
    default_app,
    signin_configured,
)
from integrations.microsoft.graph import IMMUTABLE_IDS, TIMEOUT
from workspaces import services
from workspaces.models import Agent, AgentRole, User, Workspace
from workspaces.selectors import membership_for_login

logger = logging.getLogger(__name__)


def _credentials() -> AppCredentials:
    app = default_app()
    if app is None or not signin_configured():
        raise NotFound(
            "Sign-in with Microsoft is not configured on this server.",
            code="microsoft_not_configured",
        )
    return app


def signin_start(*, redirect_uri: str, binding: str) -> tuple[str, str]:
    """(Microsoft's sign-in URL, state) for a visitor."""
    return oauth.start(
        purpose=oauth.SIGNIN,
        credentials=_credentials(),
        scopes=SIGNIN_SCOPES,
        redirect_uri=redirect_uri,
        binding=binding,
    )


def signin_finish(*, state: str, binding: str | None, auth_response: dict[str, str]) -> Agent:
    """Redeem the sign-in and return the agent it lands as (Forbidden when none)."""
    entry = oauth.consume(state=state, purpose=oauth.SIGNIN, binding=binding)
    result = oauth.finish(entry, credentials=_credentials(), auth_response=auth_response)
    claims: dict[str, Any] = result.get("id_token_claims") or {}
    oid = str(claims.get("oid") or "")
    if not oid:
        raise oauth.MicrosoftAuthFailed("Microsoft's answer did not identify the account.")
    emails = verified_emails(claims, str(result.get("access_token") or ""), oid)
    return agent_for_microsoft_identity(oid=oid, emails=emails, name=str(claims.get("name", "")))


def verified_emails(claims: dict[str, Any], access_token: str, oid: str) -> list[str]:
    emails: list[str] = []
    if claims.get("email") and claims.get("xms_edov") in (True, 1, "1", "true", "True"):
        emails.append(str(claims["email"]).strip().lower())
    upn = _user_principal_name(access_token, oid)
    # Guests' UPNs ("x_gmail.com#EXT#@tenant.onmicrosoft.com") are not addresses.
    if upn and "#ext#" not in upn.lower() and "@" in upn:
        emails.append(upn.strip().lower())
    return list(dict.fromkeys(emails))


def _user_principal_name(access_token: str, oid: str) -> str:
    if not access_token:
        return ""
    try:
        response = requests.get(
            f"{GRAPH_ROOT}/me?$select=id,userPrincipalName",
            headers={"Authorization": f"Bearer {access_token}", "Prefer": IMMUTABLE_IDS},
            timeout=TIMEOUT,
        )
    except requests.RequestException:
        logger.warning("graph /me unreachable during sign-in", exc_info=True)
        return ""
    if response.status_code != 200:
        logger.warning("graph /me answered %s during sign-in", response.status_code)
        return ""
    body = response.json()
    if str(body.get("id", "")) != oid:
        return ""
    return str(body.get("userPrincipalName") or "")


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _workspaces_allowing(emails: list[str]) -> list[Workspace]:
    domains = {_domain(email) for email in emails}
    # signup_domains is a short JSON list; JSON containment is not portable to SQLite, and
    # few workspaces set any.
    candidates = Workspace.objects.filter(is_active=True).exclude(signup_domains=[]).order_by("pk")
    return [ws for ws in candidates if domains & {d.lower() for d in ws.signup_domains or []}]


def agent_for_microsoft_identity(*, oid: str, emails: list[str], name: str = "") -> Agent:
    """The agent a verified Microsoft identity signs in as; creates the account and
    membership only where a workspace allows the domain."""
    user = User.objects.filter(microsoft_oid=oid).first()
    if user is None:
        for email in emails:
            user = User.objects.filter(email__iexact=email).first()
            if user is not None:
                break
    if user is not None and user.microsoft_oid and user.microsoft_oid != oid:
        raise Forbidden(
            "This address is linked to another Microsoft account.", code="microsoft_mismatch"
        )
    if user is not None and not user.is_active:
        raise Forbidden("This account is disabled.", code="account_disabled")

    with transaction.atomic():
        if user is None:
            allowing = _workspaces_allowing(emails)
            if not allowing:
                raise Forbidden(
                    "No Enque account uses this Microsoft account's address, and no workspace "
                    "lets its domain sign up. Ask an admin of your workspace to invite you.",
                    code="microsoft_signup_not_allowed",
                )
            try:
                user = services.user_create(email=emails[0], name=name)
            except IntegrityError:
                raise Forbidden("Try signing in again.", code="microsoft_retry") from None
            for workspace in allowing:
                services.agent_add(workspace=workspace, user=user, role=AgentRole.AGENT)
        if not user.microsoft_oid:
            # Linked from now on: a later change of address still finds the account.
            User.objects.filter(pk=user.pk, microsoft_oid="").update(microsoft_oid=oid)
            user.microsoft_oid = oid
        agent = membership_for_login(user=user)
        if agent is None:
            # Joins only workspaces the person never belonged to: a membership an admin
            # deactivated stays deactivated.
            former = set(Agent.objects.filter(user=user).values_list("workspace_id", flat=True))
            for workspace in _workspaces_allowing(emails):
                if workspace.pk not in former:
                    services.agent_add(workspace=workspace, user=user, role=AgentRole.AGENT)
            agent = membership_for_login(user=user)
    if agent is None:
        raise Forbidden(
            "This account is not an active member of any workspace.", code="no_workspace"
        )
    return agent
