"""Which Azure AD app, authority and redirect URI a Microsoft flow uses.

The deployment's app (``MICROSOFT_CLIENT_ID`` …) serves "Sign in with Microsoft" and every
mailbox without a workspace app of its own; a ``MicrosoftIntegration`` row overrides it for
the mailboxes that name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from integrations.errors import PermanentMailError
from integrations.models import MailboxConnection, MicrosoftIntegration

GRAPH_HOST = "graph.microsoft.com"
GRAPH_ROOT = f"https://{GRAPH_HOST}/v1.0"

# Delegated Graph permissions a mailbox grants. MSAL adds openid, profile and
# offline_access (the refresh token) itself and refuses them in this list.
MAIL_SCOPES: tuple[str, ...] = (
    f"https://{GRAPH_HOST}/Mail.ReadWrite",
    f"https://{GRAPH_HOST}/Mail.Send",
)
# Sign-in reads the user's own profile (/me) for the tenant-verified userPrincipalName.
SIGNIN_SCOPES: tuple[str, ...] = (f"https://{GRAPH_HOST}/User.Read",)

# Callback paths, relative to MICROSOFT_REDIRECT_BASE_URL; each must be registered as a
# redirect URI of the app (README, "Microsoft 365").
API_SIGNIN_CALLBACK = "/v1/auth/microsoft/callback"
API_MAILBOX_CALLBACK = "/v1/mailboxes/microsoft/callback"
UI_SIGNIN_CALLBACK = "/login/microsoft/callback"
UI_MAILBOX_CALLBACK = "/settings/mailboxes/microsoft/callback"


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str
    tenant_id: str

    @property
    def authority(self) -> str:
        return f"{settings.MICROSOFT_AUTHORITY_HOST}/{self.tenant_id or 'organizations'}"


def default_app() -> AppCredentials | None:
    """The deployment's app, or None when Microsoft is not configured."""
    if not settings.MICROSOFT_CLIENT_ID:
        return None
    return AppCredentials(
        client_id=settings.MICROSOFT_CLIENT_ID,
        client_secret=settings.MICROSOFT_CLIENT_SECRET,
        tenant_id=settings.MICROSOFT_TENANT_ID,
    )


def signin_configured() -> bool:
    """Whether "Sign in with Microsoft" is offered (a confidential client needs its secret)."""
    app = default_app()
    return app is not None and bool(app.client_secret)


def app_for_integration(integration: MicrosoftIntegration | None) -> AppCredentials:
    """The workspace's own app when given, else the deployment's; PermanentMailError if
    neither can be used."""
    if integration is not None:
        if not integration.is_active:
            raise PermanentMailError(f"The Microsoft app “{integration.name}” is disabled.")
        return AppCredentials(
            client_id=integration.client_id,
            client_secret=integration.client_secret,
            tenant_id=integration.tenant_id,
        )
    app = default_app()
    if app is None:
        raise PermanentMailError(
            "Microsoft 365 is not configured: set MICROSOFT_CLIENT_ID and "
            "MICROSOFT_CLIENT_SECRET, or add a Microsoft app to the workspace."
        )
    return app


def app_for_mailbox(mailbox: MailboxConnection) -> AppCredentials:
    return app_for_integration(mailbox.microsoft_integration)


def redirect_uri(path: str) -> str:
    return f"{settings.MICROSOFT_REDIRECT_BASE_URL}{path}"


def mailbox_root(mailbox: MailboxConnection) -> str:
    """``/me`` for the signed-in user's own mailbox, ``/users/{address}`` for a shared one."""
    if mailbox.is_shared_mailbox:
        return f"/users/{mailbox.email_address}"
    return "/me"
