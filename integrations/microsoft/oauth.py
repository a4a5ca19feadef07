"""The OAuth 2.0 auth-code flow with PKCE (MSAL), with a single-use ``state``.

``start`` asks MSAL for the authorization URL (it adds the PKCE code challenge and a
nonce) and keeps MSAL's flow — code verifier included — server-side in the cache under
its ``state``, with a hash of a *binding* secret the caller holds (a cookie, or a value in
the Django session). ``consume`` takes the flow out again exactly once: the cache delete
is atomic, so a replayed or raced callback finds nothing. A flow whose binding differs
(another browser following a leaked link) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import warnings
from collections.abc import Sequence
from typing import Any

import requests
from django.core.cache import cache

from enque.errors import InvalidInput
from integrations.microsoft.config import AppCredentials
from integrations.microsoft.msal_app import build_app

# Long enough to sign in with MFA, short enough that an abandoned flow goes away.
FLOW_TTL_SECONDS = 15 * 60
_KEY_PREFIX = "microsoft-oauth-flow:"

SIGNIN = "signin"
MAILBOX = "mailbox"


class InvalidState(InvalidInput):
    """The callback's ``state`` is missing, unknown, expired, already used or not ours."""

    default_code = "invalid_state"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "This Microsoft sign-in link is invalid, expired or was already used. Start again.",
            field="state",
        )


class MicrosoftAuthFailed(InvalidInput):
    """Microsoft answered the flow with an error (consent declined, bad code…)."""

    default_code = "microsoft_error"


def new_binding() -> str:
    return secrets.token_urlsafe(32)


def _digest(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


def _cache_key(state: str) -> str:
    # Hashed: the callback's state is untrusted input, not fit for a cache key as it is.
    return _KEY_PREFIX + hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def start(
    *,
    purpose: str,
    credentials: AppCredentials,
    scopes: Sequence[str],
    redirect_uri: str,
    binding: str,
    login_hint: str = "",
    context: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Begin a flow; return (authorization URL, state)."""
    app = build_app(credentials)
    try:
        with warnings.catch_warnings():
            # MSAL recommends response_mode=form_post; our callbacks are GET (the code comes
            # back in the query), which PKCE and the single-use bound state keep safe.
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            flow = app.initiate_auth_code_flow(
                scopes=list(scopes),
                redirect_uri=redirect_uri,
                login_hint=login_hint or None,
                # Lets an admin pick the mailbox's account even when signed in as another.
                prompt="select_account",
            )
    except requests.RequestException as exc:
        raise MicrosoftAuthFailed(
            "Microsoft's sign-in service is unreachable; try again in a moment.",
            code="microsoft_unreachable",
        ) from exc
    entry = {
        "purpose": purpose,
        "binding": _digest(binding),
        "flow": flow,
        "client_id": credentials.client_id,
        "context": dict(context or {}),
    }
    cache.set(_cache_key(flow["state"]), entry, FLOW_TTL_SECONDS)
    return flow["auth_uri"], flow["state"]


def consume(*, state: str, purpose: str, binding: str | None) -> dict[str, Any]:
    """Take the pending flow for ``state`` out of the cache, once; InvalidState otherwise."""
    if not state or len(state) > 200:
        raise InvalidState()
    key = _cache_key(state)
    entry = cache.get(key)
    # Only the caller whose delete removed the key may go on: a replay, or a second request
    # racing the first, gets False here.
    if entry is None or not cache.delete(key):
        raise InvalidState()
    if entry.get("purpose") != purpose:
        raise InvalidState()
    if not binding or not hmac.compare_digest(entry["binding"], _digest(binding)):
        raise InvalidState(
            "This Microsoft sign-in was started in another browser or session. Start again."
        )
    return entry


def finish(
    entry: dict[str, Any],
    *,
    credentials: AppCredentials,
    auth_response: dict[str, str],
    token_cache: Any = None,
) -> dict[str, Any]:
    """Redeem the code (MSAL checks state, PKCE verifier and the id token's nonce)."""
    if credentials.client_id != entry.get("client_id"):
        raise InvalidState()
    app = build_app(credentials, token_cache)
    try:
        result = app.acquire_token_by_auth_code_flow(entry["flow"], auth_response)
    except ValueError as exc:
        # MSAL's answer to a state mismatch or a malformed response.
        raise InvalidState() from exc
    except requests.RequestException as exc:
        raise MicrosoftAuthFailed(
            "Microsoft's sign-in service is unreachable; try again in a moment.",
            code="microsoft_unreachable",
        ) from exc
    if "error" in result:
        description = str(result.get("error_description") or result["error"])
        raise MicrosoftAuthFailed(
            f"Microsoft did not complete the sign-in: {description.splitlines()[0]}"
        )
    return result
