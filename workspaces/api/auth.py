"""``/v1/auth/*``: sign-up, sign-in, tokens, password reset, invitations accepted.

Sign-in answers the same 401 ``invalid_credentials`` for an unknown address and a wrong
password (Django's ModelBackend runs the hasher for unknown addresses too, so the timing
matches). Guessing is slowed twice: the ``auth`` rate limit per client IP address (10 per
15 minutes) and a counter of failed sign-ins per email address (RATELIMIT_LOGIN_FAILURES,
5 per 15 minutes), after which that email answers 429 whatever the password.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api import throttling
from enque.api.authentication import issue_tokens, revoke_refresh, rotate_refresh
from enque.api.permissions import IsWorkspaceMember
from enque.api.throttling import AuthRateThrottle
from enque.api.viewsets import EnqueAPIView
from enque.errors import Forbidden, NotFound
from workspaces import selectors, services
from workspaces.api.serializers import (
    AcceptInviteInput,
    AcceptInviteOutput,
    DetailOutput,
    LoginInput,
    MeOutput,
    PasswordResetConfirmInput,
    PasswordResetInput,
    RefreshInput,
    RegisterInput,
    SessionOutput,
    SwitchWorkspaceInput,
    TokenPairOutput,
)
from workspaces.models import Agent


def session(agent: Agent) -> dict[str, Any]:
    """A new token pair with the membership it is for."""
    workspace = agent.workspace
    workspace.caller_role = agent.role
    return {**issue_tokens(agent), "agent": agent, "workspace": workspace}


class PublicAPIView(EnqueAPIView):
    """An endpoint for callers without a token. A stale ``Authorization`` header is ignored
    rather than refused, so an expired client can still sign in."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    # Idempotency keys are per agent, and these callers have none (their answers hold
    # tokens besides, which must not be stored).
    idempotent = False

    def get_authenticate_header(self, request: Request) -> str:
        # Keeps our own 401s (invalid_credentials, token_not_valid) 401s: DRF turns a 401
        # into a 403 when a view has no authenticator to name in WWW-Authenticate.
        return 'Bearer realm="enque"'


class RegisterView(PublicAPIView):
    input_serializer_class = RegisterInput
    output_serializer_class = SessionOutput
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(
        summary="Sign up: a new user and workspace",
        responses={201: SessionOutput},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        agent = services.account_register(
            name=data["name"],
            email=data["email"],
            password=data["password"],
            workspace_name=data["workspace_name"],
        )
        services.agent_record_login(agent=agent)
        return self.output(session(agent), status=status.HTTP_201_CREATED)


class LoginView(PublicAPIView):
    input_serializer_class = LoginInput
    output_serializer_class = SessionOutput
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(summary="Sign in", auth=[])
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        email = data["email"]
        wait = throttling.login_failures_wait(request, email)
        if wait is not None:
            raise exceptions.Throttled(
                wait, detail="Too many failed sign-ins for this address; try again later."
            )
        user = authenticate(request._request, email=email, password=data["password"])
        if user is None:
            throttling.record_login_failure(request, email)
            raise exceptions.AuthenticationFailed(
                "Invalid email or password.", code="invalid_credentials"
            )
        workspace_id = data.get("workspace_id")
        agent = selectors.membership_for_login(user=user, workspace_id=workspace_id)
        if agent is None:
            if workspace_id is not None:
                raise NotFound("Workspace not found.", field="workspace_id")
            raise Forbidden(
                "This account is not an active member of any workspace.", code="no_workspace"
            )
        services.agent_record_login(agent=agent)
        return self.output(session(agent))


class RefreshView(PublicAPIView):
    input_serializer_class = RefreshInput
    output_serializer_class = TokenPairOutput

    @extend_schema(
        summary="Trade a refresh token for a new pair",
        description="Refresh tokens rotate: the one sent is spent, use the new one next time.",
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        _, tokens = rotate_refresh(data["refresh"])
        return self.output(tokens)


class LogoutView(PublicAPIView):
    input_serializer_class = RefreshInput
    output_serializer_class = None

    @extend_schema(summary="Sign out: the refresh token is revoked", auth=[])
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        revoke_refresh(data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(EnqueAPIView):
    permission_classes = (IsWorkspaceMember,)
    output_serializer_class = MeOutput

    @extend_schema(summary="Who the token belongs to")
    def get(self, request: Request) -> Response:
        agent = request.agent
        workspace = agent.workspace
        workspace.caller_role = agent.role
        return self.output(
            {"user": agent.user, "agent": agent, "role": agent.role, "workspace": workspace}
        )


class SwitchWorkspaceView(EnqueAPIView):
    permission_classes = (IsWorkspaceMember,)
    input_serializer_class = SwitchWorkspaceInput
    output_serializer_class = SessionOutput
    # The response is a credential: never stored for an Idempotency-Key replay.
    idempotent = False

    @extend_schema(
        summary="A token pair for another of the caller's workspaces",
        description="Only workspaces where the caller is an active agent; any other is a 404.",
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        agent = selectors.membership_for_login(user=request.user, workspace_id=data["workspace_id"])
        if agent is None:
            raise NotFound("Workspace not found.", field="workspace_id")
        services.agent_record_login(agent=agent)
        return self.output(session(agent))


class PasswordResetView(PublicAPIView):
    input_serializer_class = PasswordResetInput
    output_serializer_class = DetailOutput
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(
        summary="Email a password reset link",
        description="Answers 202 whether or not the address has an account.",
        responses={202: DetailOutput},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        services.password_reset_request(email=data["email"])
        return self.output(
            {"detail": "If this address has an account, we have sent it a reset link."},
            status=status.HTTP_202_ACCEPTED,
        )


class PasswordResetConfirmView(PublicAPIView):
    input_serializer_class = PasswordResetConfirmInput
    output_serializer_class = None
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(
        summary="Set a new password with a reset token",
        description="The token works once; every session of the account is signed out.",
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        services.password_reset_confirm(token=data["token"], password=data["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class AcceptInviteView(PublicAPIView):
    input_serializer_class = AcceptInviteInput
    output_serializer_class = AcceptInviteOutput
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(
        summary="Accept an invitation",
        description="A new address needs `name` and `password` and gets tokens; an existing "
        "user just gains the membership (and signs in with their own password).",
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input()
        agent, created = services.invitation_accept(
            token=data["token"], name=data["name"], password=data["password"]
        )
        if created:
            services.agent_record_login(agent=agent)
            return self.output(session(agent))
        workspace = agent.workspace
        workspace.caller_role = agent.role
        return self.output(
            {"agent": agent, "workspace": workspace, "access": None, "refresh": None}
        )


urlpatterns = [
    path("auth/register", RegisterView.as_view(), name="auth-register"),
    path("auth/login", LoginView.as_view(), name="auth-login"),
    path("auth/refresh", RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", LogoutView.as_view(), name="auth-logout"),
    path("auth/me", MeView.as_view(), name="auth-me"),
    path("auth/switch-workspace", SwitchWorkspaceView.as_view(), name="auth-switch-workspace"),
    path("auth/password-reset", PasswordResetView.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm",
        PasswordResetConfirmView.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("auth/accept-invite", AcceptInviteView.as_view(), name="auth-accept-invite"),
]
