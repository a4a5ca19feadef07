"""Template context for Microsoft 365 features."""

from __future__ import annotations

from django.http import HttpRequest

from integrations.microsoft.config import signin_configured


def microsoft(request: HttpRequest) -> dict[str, bool]:
    # A settings check, no query: cheap enough for every page.
    return {"microsoft_signin_enabled": signin_configured()}
