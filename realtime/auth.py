"""Who is on the other end of a websocket.

Two ways in, and nothing else (an ``agentId`` / ``workspaceId`` query parameter is never
read):

- an API access token, as ``?token=<JWT>`` (browsers cannot set headers on a websocket) or
  ``Authorization: Bearer <JWT>``; resolved by ``enque.api.authentication``, the same
  checks as every ``/v1`` request (signature, expiry, token type, and an active agent,
  user and workspace). A token that is present but refused is final: no fallback to the
  session cookie.
- the agent UI's session cookie (``AuthMiddlewareStack``): the session's user must be an
  active agent of the session's workspace (session key ``workspace_id``, else the user's
  last workspace). A cookie is ambient — any page the browser visits could open a socket
  with it — so it counts only when the ``Origin`` header is one of ours (ALLOWED_HOSTS,
  CSRF_TRUSTED_ORIGINS): cross-site websocket hijacking is refused. A token is not ambient,
  so token clients need no Origin (API clients, other origins' SPAs, scripts).

An open socket re-checks its identity now and then (``still_valid``), and closes when its
token expires, so a deactivated agent or a signed-out session does not keep its stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user as get_session_user
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken

from enque.api import authentication
from workspaces.selectors import membership_for_login

logger = logging.getLogger(__name__)

# A JWT of ours is a few hundred bytes; anything much longer is not one.
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class Identity:
    agent_id: int
    workspace_id: int
    user_id: int
    # Shown to other agents in presence.
    name: str
    method: Literal["token", "session"]
    # The token's expiry (epoch seconds): the socket closes then.
    expires_at: float | None = None
    session_key: str | None = None
    # Every socket is an agent's today. A customer-facing socket would be False, and must
    # never see an event marked agents_only (realtime.publish.is_agents_only).
    is_agent: bool = True


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The raw token of ``?token=`` or ``Authorization: Bearer``; None if neither."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "token" in query:
        return query["token"][0]
    header = _header(scope, b"authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return None


def allowed_cookie_origins() -> list[str]:
    # As channels' AllowedHostsOriginValidator, plus the origins CSRF already trusts.
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return [*hosts, *settings.CSRF_TRUSTED_ORIGINS]


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        # Browsers always send Origin on a websocket handshake; a cookie without one is not
        # a browser page of ours.
        return False
    return OriginValidator(None, allowed_cookie_origins()).valid_origin(urlparse(origin))


def identity_from_token(raw: str) -> Identity | None:
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    try:
        agent, token = authentication.agent_for_access_token(raw)
    except (InvalidToken, AuthenticationFailed) as exc:
        logger.info("realtime: token refused (%s)", getattr(exc, "default_code", "invalid"))
        return None
    return Identity(
        agent_id=agent.pk,
        workspace_id=agent.workspace_id,
        user_id=agent.user_id,
        name=agent.name,
        method="token",
        expires_at=float(token["exp"]),
    )


def identity_from_session(scope: dict[str, Any]) -> Identity | None:
    user = scope.get("user")
    session = scope.get("session")
    if user is None or session is None or not user.is_authenticated:
        return None
    if not origin_allowed(scope):
        logger.info("realtime: session cookie from a foreign origin refused")
        return None
    try:
        workspace_id = int(session.get("workspace_id") or user.last_workspace_id or 0) or None
    except (TypeError, ValueError):
        workspace_id = None
    if workspace_id is None:
        return None
    agent = membership_for_login(user=user, workspace_id=workspace_id)
    if agent is None:
        return None
    return Identity(
        agent_id=agent.pk,
        workspace_id=agent.workspace_id,
        user_id=agent.user_id,
        name=agent.name,
        method="session",
        session_key=session.session_key,
    )


@database_sync_to_async
def authenticate(scope: dict[str, Any]) -> Identity | None:
    """The identity of a websocket handshake, or None (the consumer closes with 4401)."""
    raw = token_from_scope(scope)
    if raw is not None:
        return identity_from_token(raw)
    return identity_from_session(scope)


@database_sync_to_async
def still_valid(identity: Identity) -> bool:
    """Is this socket's agent still an active member (and its session still signed in)?"""
    try:
        # The API's own rule for "an active member", applied to the socket's claims.
        authentication.agent_for_claims(
            {
                authentication.USER_CLAIM: identity.user_id,
                authentication.WORKSPACE_CLAIM: identity.workspace_id,
                authentication.AGENT_CLAIM: identity.agent_id,
            }
        )
    except (InvalidToken, AuthenticationFailed):
        return False
    if identity.method == "session":
        store = import_module(settings.SESSION_ENGINE).SessionStore(identity.session_key)
        # Django's own check: the session exists, names this user, and its auth hash still
        # matches (a password change signs sessions out).
        user = get_session_user(SimpleNamespace(session=store))
        return bool(user.is_authenticated and user.pk == identity.user_id)
    return True
