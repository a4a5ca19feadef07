"""Connecting a Microsoft 365 mailbox: the admin's delegated consent, start to finish.

``mailbox_connect_start`` checks the admin and the input and returns Microsoft's consent
URL; ``mailbox_connect_finish`` redeems the code and creates or updates the workspace's
mailbox, its encrypted MSAL token cache and its sync state. Connecting a mailbox that is
"reconnect needed" again clears that state. The workspace and admin of the finish come
from the server-side flow (bound to the browser or session that started it), never from
the callback's URL.
"""

from __future__ import annotations

from typing import Any

import msal
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction

from enque.errors import Conflict, Forbidden, InvalidInput, NotFound
from integrations.errors import PermanentMailError
from integrations.microsoft import oauth
from integrations.microsoft.config import MAIL_SCOPES, AppCredentials, app_for_integration
from integrations.microsoft.msal_app import access_token_expiry, build_app
from integrations.models import (
    EmailSyncConfig,
    MailboxConnection,
    MailboxProvider,
    MicrosoftIntegration,
    MicrosoftToken,
    SyncStatus,
)
from workspaces.models import Agent, Workspace


def _require_admin(actor: Agent, workspace: Workspace) -> None:
    if actor.workspace_id != workspace.pk or not actor.is_active:
        raise NotFound("Workspace not found.")
    if not actor.is_admin:
        raise Forbidden(
            "Only an owner or admin of the workspace may connect mailboxes.",
            code="admin_required",
        )


def _integration(workspace: Workspace, integration_id: int | None) -> MicrosoftIntegration | None:
    if integration_id is None:
        return None
    integration = (
        MicrosoftIntegration.objects.for_workspace(workspace).filter(pk=integration_id).first()
    )
    if integration is None:
        # A reference to another workspace's app reads like one to a missing app.
        raise InvalidInput(
            "Microsoft app not found.", code="invalid_reference", field="integration"
        )
    return integration


def _credentials(integration: MicrosoftIntegration | None) -> AppCredentials:
    try:
        return app_for_integration(integration)
    except PermanentMailError as exc:
        raise InvalidInput(str(exc), code="microsoft_not_configured", field="integration") from exc


def normalise_address(email_address: str) -> str:
    address = (email_address or "").strip().lower()
    try:
        validate_email(address)
    except DjangoValidationError:
        raise InvalidInput(
            "Enter the mailbox's email address.", code="invalid", field="email_address"
        ) from None
    return address


def mailbox_connect_start(
    *,
    workspace: Workspace,
    actor: Agent,
    email_address: str,
    is_shared_mailbox: bool,
    integration_id: int | None,
    redirect_uri: str,
    binding: str,
) -> tuple[str, str]:
    """Check the request and return (Microsoft's consent URL, state)."""
    _require_admin(actor, workspace)
    address = normalise_address(email_address)
    integration = _integration(workspace, integration_id)
    existing = (
        MailboxConnection.objects.for_workspace(workspace)
        .filter(email_address__iexact=address)
        .exclude(provider=MailboxProvider.MICROSOFT)
        .exists()
    )
    if existing:
        raise Conflict(
            "An IMAP mailbox with this address exists; delete it before connecting the "
            "address through Microsoft 365.",
            code="mailbox_exists",
            field="email_address",
        )
    return oauth.start(
        purpose=oauth.MAILBOX,
        credentials=_credentials(integration),
        scopes=MAIL_SCOPES,
        redirect_uri=redirect_uri,
        binding=binding,
        # For a shared mailbox a delegate signs in, not the mailbox itself.
        login_hint="" if is_shared_mailbox else address,
        context={
            "workspace_id": workspace.pk,
            "agent_id": actor.pk,
            "email_address": address,
            "is_shared_mailbox": bool(is_shared_mailbox),
            "integration_id": integration.pk if integration else None,
        },
    )


def mailbox_connect_finish(
    *,
    state: str,
    binding: str | None,
    auth_response: dict[str, str],
    actor: Agent | None = None,
) -> MailboxConnection:
    """Redeem the consent and store the mailbox with its token cache.

    ``actor``, when the caller is signed in, must be the admin who started the flow.
    """
    entry = oauth.consume(state=state, purpose=oauth.MAILBOX, binding=binding)
    context: dict[str, Any] = entry["context"]
    admin = (
        Agent.objects.select_related("workspace")
        .filter(pk=context["agent_id"], workspace_id=context["workspace_id"], is_active=True)
        .first()
    )
    if admin is None or not admin.workspace.is_active:
        raise oauth.InvalidState()
    if actor is not None and actor.pk != admin.pk:
        raise oauth.InvalidState("This mailbox connection was started by someone else.")
    workspace = admin.workspace
    _require_admin(admin, workspace)
    integration = _integration(workspace, context["integration_id"])
    credentials = _credentials(integration)

    cache = msal.SerializableTokenCache()
    result = oauth.finish(
        entry, credentials=credentials, auth_response=auth_response, token_cache=cache
    )
    claims = result.get("id_token_claims") or {}
    accounts = build_app(credentials, cache).get_accounts()
    account = next(
        (a for a in accounts if a.get("local_account_id") == claims.get("oid")),
        accounts[0] if accounts else None,
    )
    if account is None:
        raise oauth.MicrosoftAuthFailed("Microsoft returned no account for the mailbox.")
    home_account_id = str(account["home_account_id"])
    granted = result.get("scope") or MAIL_SCOPES
    scopes = granted if isinstance(granted, str) else " ".join(granted)

    with transaction.atomic():
        mailbox = (
            MailboxConnection.objects.for_workspace(workspace)
            .select_for_update()
            .filter(email_address__iexact=context["email_address"])
            .first()
        )
        if mailbox is not None and mailbox.provider != MailboxProvider.MICROSOFT:
            raise Conflict(
                "An IMAP mailbox with this address exists.",
                code="mailbox_exists",
                field="email_address",
            )
        if mailbox is None:
            mailbox = MailboxConnection(
                workspace=workspace,
                provider=MailboxProvider.MICROSOFT,
                email_address=context["email_address"],
            )
        mailbox.is_shared_mailbox = context["is_shared_mailbox"]
        mailbox.microsoft_integration = integration
        mailbox.is_active = True
        mailbox.sync_status = SyncStatus.IDLE
        mailbox.last_error = ""
        mailbox.last_error_at = None
        mailbox.save()

        token = MicrosoftToken.objects.filter(mailbox=mailbox).first()
        same_account = token is not None and token.home_account_id == home_account_id
        if token is None:
            token = MicrosoftToken(workspace=workspace, mailbox=mailbox)
        token.token_cache = cache.serialize()
        token.home_account_id = home_account_id
        token.scopes = scopes[:500]
        token.expires_at = access_token_expiry(cache)
        token.save()

        config, created = EmailSyncConfig.objects.get_or_create(
            mailbox=mailbox, defaults={"workspace": workspace}
        )
        if not created and not same_account and config.delta_link:
            # Another account's view of the mailbox: its delta state does not apply.
            config.delta_link = ""
            config.save(update_fields=["delta_link", "updated_at"])
    return mailbox
