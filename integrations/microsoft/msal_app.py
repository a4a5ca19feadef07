"""MSAL applications and each mailbox's token cache.

A mailbox's MSAL ``SerializableTokenCache`` lives encrypted in its ``MicrosoftToken`` row.
It is loaded for every call and written back whenever MSAL changed it — above all after a
refresh that rotated the refresh token: keeping the old one would lose the grant at its
next use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msal
import requests

from integrations.errors import ReconnectNeeded, TransientMailError
from integrations.microsoft.config import MAIL_SCOPES, AppCredentials, app_for_mailbox
from integrations.models import MailboxConnection, MicrosoftToken

# Token-endpoint errors that only a new consent can cure.
RECONNECT_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required"}
)


def build_app(
    credentials: AppCredentials, cache: msal.TokenCache | None = None
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        credentials.client_id,
        client_credential=credentials.client_secret,
        authority=credentials.authority,
        token_cache=cache,
    )


def load_cache(token: MicrosoftToken) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    if token.token_cache:
        cache.deserialize(token.token_cache)
    return cache


def save_cache(token: MicrosoftToken, cache: msal.SerializableTokenCache) -> None:
    """Write the cache back (encrypted by the field) if MSAL changed it."""
    if not cache.has_state_changed:
        return
    token.token_cache = cache.serialize()
    token.expires_at = access_token_expiry(cache)
    token.save(update_fields=["token_cache", "expires_at", "updated_at"])
    cache.has_state_changed = False


def access_token_expiry(cache: msal.SerializableTokenCache) -> dt.datetime | None:
    expiries = [
        int(item.get("expires_on", 0))
        for item in cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
    ]
    if not expiries or not max(expiries):
        return None
    return dt.datetime.fromtimestamp(max(expiries), tz=dt.UTC)


def raise_for_token_error(result: dict[str, Any]) -> None:
    """Map an MSAL error result to the mail channel's error types."""
    error = str(result.get("error", ""))
    description = str(result.get("error_description", "")).split("\r\n")[0]
    if error in RECONNECT_ERRORS:
        raise ReconnectNeeded(
            f"Microsoft refused the mailbox's sign-in ({error}): connect the mailbox again. "
            f"{description}".strip()
        )
    if error in {"invalid_client", "unauthorized_client"}:
        raise ReconnectNeeded(
            f"Microsoft refused the app's credentials ({error}): check the app's client "
            f"secret, then connect the mailbox again. {description}".strip()
        )
    raise TransientMailError(f"Microsoft's sign-in service failed ({error}). {description}")


def mailbox_access_token(mailbox: MailboxConnection, *, force_refresh: bool = False) -> str:
    """A Graph access token for ``mailbox``, refreshed (and the cache saved) when needed.

    Raises ReconnectNeeded when there is no grant or Microsoft refuses to renew it.
    """
    token = MicrosoftToken.objects.filter(mailbox=mailbox).first()
    if token is None or not token.token_cache:
        raise ReconnectNeeded("The mailbox has no Microsoft sign-in: connect it.")
    cache = load_cache(token)
    app = build_app(app_for_mailbox(mailbox), cache)
    accounts = app.get_accounts()
    account = next(
        (a for a in accounts if a.get("home_account_id") == token.home_account_id),
        accounts[0] if accounts and not token.home_account_id else None,
    )
    if account is None:
        raise ReconnectNeeded("The mailbox's Microsoft sign-in is missing: connect it again.")
    try:
        result = app.acquire_token_silent_with_error(
            list(MAIL_SCOPES), account=account, force_refresh=force_refresh
        )
    except requests.RequestException as exc:
        raise TransientMailError(f"Microsoft's sign-in service is unreachable: {exc}") from exc
    finally:
        # Saved even when the call failed: MSAL may have stored a rotated refresh token or
        # fresh authority metadata before the error.
        save_cache(token, cache)
    if result is None:
        raise ReconnectNeeded("The mailbox's Microsoft sign-in expired: connect it again.")
    if "access_token" not in result:
        raise_for_token_error(result)
    return str(result["access_token"])
