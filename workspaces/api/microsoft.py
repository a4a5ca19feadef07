"""``/v1/auth/microsoft``: "Sign in with Microsoft" for API clients.

``GET /v1/auth/microsoft`` answers the authorization URL and ``state`` and sets an HttpOnly
cookie binding the flow to this browser; Microsoft redirects the browser to
``/v1/auth/microsoft/callback?code&state``, which answers the same token pair as a password
sign-in. The state works once, within 15 minutes, and only with the cookie (so a link
started elsewhere cannot sign this browser in). Both count against the ``auth`` limit.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.throttling import AuthRateThrottle
from integrations.microsoft import config, oauth
from integrations.microsoft.callbacks import (
    BINDING_COOKIE,
    CallbackQuery,
    auth_response,
    binding_cookie,
    set_binding_cookie,
)
from integrations.microsoft.signin import signin_finish, signin_start
from workspaces import services
from workspaces.api.auth import PublicAPIView, session
from workspaces.api.serializers import SessionOutput


class SignInAuthorizationOutput(serializers.Serializer):
    authorization_url = serializers.URLField(help_text="Send the user's browser here.")
    state = serializers.CharField(help_text="Comes back on the callback; works once.")


class MicrosoftSignInView(PublicAPIView):
    output_serializer_class = SignInAuthorizationOutput
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(
        summary="Start signing in with Microsoft",
        description="Answers Microsoft's authorization URL (auth-code flow with PKCE) and "
        "sets the cookie the callback needs. 404 `microsoft_not_configured` when the "
        "server has no Microsoft app.",
        auth=[],
    )
    def get(self, request: Request) -> Response:
        binding = oauth.new_binding()
        url, state = signin_start(
            redirect_uri=config.redirect_uri(config.API_SIGNIN_CALLBACK), binding=binding
        )
        response = self.output({"authorization_url": url, "state": state})
        set_binding_cookie(response, binding, path=config.API_SIGNIN_CALLBACK)
        return response


class MicrosoftSignInCallbackView(PublicAPIView):
    query_serializer_class = CallbackQuery
    output_serializer_class = SessionOutput
    extra_throttle_classes = (AuthRateThrottle,)

    @extend_schema(
        summary="Finish signing in with Microsoft",
        description="Microsoft redirects here. A bad, expired or replayed `state` is a 400 "
        "`invalid_state`; an identity with no account whose domain no workspace allows is "
        "a 403 `microsoft_signup_not_allowed`.",
        auth=[],
    )
    def get(self, request: Request) -> Response:
        query = self.query
        agent = signin_finish(
            state=query["state"],
            binding=binding_cookie(request._request),
            auth_response=auth_response(query),
        )
        services.agent_record_login(agent=agent)
        response = self.output(session(agent))
        response.delete_cookie(BINDING_COOKIE, path=config.API_SIGNIN_CALLBACK)
        return response


urlpatterns = [
    path("auth/microsoft", MicrosoftSignInView.as_view(), name="auth-microsoft"),
    path(
        "auth/microsoft/callback",
        MicrosoftSignInCallbackView.as_view(),
        name="auth-microsoft-callback",
    ),
]
