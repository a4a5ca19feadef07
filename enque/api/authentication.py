"""JWT authentication: a token names one agent, i.e. one user in one workspace.

Both tokens of a pair carry, besides simplejwt's own claims (``token_type``, ``exp``,
``iat``, ``jti``), three of ours::

    {"user_id": "7", "workspace_id": 3, "agent_id": 12}

Every request re-resolves them against the database in one query: the agent must exist with
exactly that user and workspace, and agent, user and workspace must all be active — so
deactivating a member (or a workspace) locks their tokens out at once (401), without
waiting for the access token to expire. The role is not in the token: it is read from the
agent row on every request, so a demotion applies immediately too.

On success ``request.user`` is the ``User``, and ``request.agent`` / ``request.workspace``
are set on the Django request (visible to DRF's request, the middleware and the access
log). The workspace of a request comes from here and nowhere else: never from a URL or a
body.

Refresh tokens rotate (``rotate_refresh``): the old one is blacklisted as the new one is
issued, and a refresh token used twice is refused. ``revoke_refresh`` blacklists one on
logout (a password reset blacklists all of a user's: workspaces.services).

A sign-in is a session: every token of one chain of rotations carries the same ``sid``
claim. Logout blacklists the refresh token and also marks its ``sid`` revoked in the
cache for an access token's lifetime, so the access tokens already handed out (to the
API or a websocket) stop working at once instead of living on until they expire.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken, Token

from enque.api.middleware import bind_actor
from workspaces.models import Agent, User

WORKSPACE_CLAIM = "workspace_id"
AGENT_CLAIM = "agent_id"
USER_CLAIM = "user_id"
SESSION_CLAIM = "sid"


def _revoked_session_key(session_id: str) -> str:
    return f"jwt:revoked-session:{session_id}"


def issue_tokens(agent: Agent, *, session_id: str | None = None) -> dict[str, str]:
    """A new access/refresh pair for this membership (a new session unless one is given)."""
    refresh = RefreshToken.for_user(agent.user)
    refresh[WORKSPACE_CLAIM] = agent.workspace_id
    refresh[AGENT_CLAIM] = agent.pk
    refresh[SESSION_CLAIM] = session_id or uuid.uuid4().hex
    # The access token copies every claim of the refresh token but its type, jti and times.
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def agent_for_claims(claims: Any) -> Agent:
    """The active agent a token names, with its user and workspace; 401 otherwise."""
    try:
        user_id = int(claims[USER_CLAIM])
        workspace_id = int(claims[WORKSPACE_CLAIM])
        agent_id = int(claims[AGENT_CLAIM])
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("The token does not name a workspace membership.") from None
    session_id = claims.get(SESSION_CLAIM) if hasattr(claims, "get") else None
    if session_id and cache.get(_revoked_session_key(str(session_id))):
        raise AuthenticationFailed("This session was signed out.", code="token_revoked")
    agent = (
        Agent.objects.select_related("user", "workspace")
        .filter(
            pk=agent_id,
            workspace_id=workspace_id,
            user_id=user_id,
            is_active=True,
            user__is_active=True,
            workspace__is_active=True,
        )
        # At most one row (the primary key): Agent's default ordering (workspace name,
        # display name) would only add an ORDER BY over the join to every request.
        .order_by()
        .first()
    )
    if agent is None:
        raise AuthenticationFailed(
            "This account is no longer an active member of the workspace.",
            code="account_inactive",
        )
    return agent


def agent_for_access_token(raw: str) -> tuple[Agent, Token]:
    """The active agent a raw access token names, and the validated token, by the same
    checks as the API (the realtime websocket authenticates with this). Raises
    ``InvalidToken`` (bad, expired, not an access token) or ``AuthenticationFailed``."""
    token = AgentJWTAuthentication().get_validated_token(raw)
    return agent_for_claims(token), token


class AgentJWTAuthentication(JWTAuthentication):
    www_authenticate_realm = "enque"

    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        token = self.get_validated_token(raw_token)
        agent = agent_for_claims(token)
        django_request = request._request
        django_request.agent = agent
        django_request.workspace = agent.workspace
        bind_actor(workspace_id=agent.workspace_id, agent_id=agent.pk)
        return agent.user, token


def _refresh_token(raw: str) -> RefreshToken:
    try:
        # Verifies signature, expiry and type, and refuses a blacklisted token.
        return RefreshToken(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise InvalidToken(str(exc)) from None


def rotate_refresh(raw: str) -> tuple[Agent, dict[str, str]]:
    """Trade a refresh token for a new pair; the old refresh token is spent."""
    refresh = _refresh_token(raw)
    agent = agent_for_claims(refresh)
    with transaction.atomic():
        _, newly_blacklisted = refresh.blacklist()
        if not newly_blacklisted:
            # Two refreshes raced with one token: the first one won, the second is a reuse.
            raise InvalidToken("Token is blacklisted")
    return agent, issue_tokens(agent, session_id=refresh.get(SESSION_CLAIM))


def revoke_refresh(raw: str) -> None:
    refresh = _refresh_token(raw)
    refresh.blacklist()
    session_id = refresh.get(SESSION_CLAIM)
    if session_id:
        # Access tokens cannot outlive this mark: it expires with the longest of them.
        lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
        cache.set(_revoked_session_key(str(session_id)), True, timeout=int(lifetime) + 60)
