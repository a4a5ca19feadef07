"""What the API and UI callbacks share: the binding cookie and the callback's query."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from rest_framework import serializers

# Holds the flow's binding secret in the browser that started it (API flows; the UI keeps
# it in the session). HttpOnly, and Lax so the top-level redirect back from Microsoft
# carries it.
BINDING_COOKIE = "enque_ms_oauth"


def set_binding_cookie(response: HttpResponseBase, binding: str, *, path: str) -> None:
    from integrations.microsoft.oauth import FLOW_TTL_SECONDS

    response.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=FLOW_TTL_SECONDS,
        path=path,
        secure=settings.MICROSOFT_REDIRECT_BASE_URL.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


def binding_cookie(request: HttpRequest) -> str | None:
    return request.COOKIES.get(BINDING_COOKIE) or None


class CallbackQuery(serializers.Serializer):
    """What Microsoft appends to the redirect URI: a code, or an error."""

    code = serializers.CharField(required=False, max_length=8000)
    state = serializers.CharField(max_length=200)
    session_state = serializers.CharField(required=False, max_length=200)
    client_info = serializers.CharField(required=False, max_length=2000)
    error = serializers.CharField(required=False, max_length=200)
    error_description = serializers.CharField(required=False, max_length=2000)
    error_uri = serializers.CharField(required=False, max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("code") and not attrs.get("error"):
            raise serializers.ValidationError({"code": ["This field is required."]})
        return attrs


def auth_response(query: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in query.items() if value not in (None, "")}
