"""Microsoft 365: "Sign in with Microsoft" and connecting a mailbox (OAuth callbacks).

The callback paths are registered as redirect URIs of the Microsoft app (README), so they
must stay in step with integrations.microsoft.config.
"""

from django.urls import URLPattern, path

from ui.views import microsoft

urlpatterns: list[URLPattern] = [
    # Public: the visitor is not signed in yet.
    path("login/microsoft", microsoft.microsoft_login, name="microsoft_login"),
    path(
        "login/microsoft/callback",
        microsoft.microsoft_login_callback,
        name="microsoft_login_callback",
    ),
    # Admins: delegated consent for a mailbox.
    path(
        "settings/mailboxes/microsoft/connect",
        microsoft.microsoft_connect,
        name="microsoft_connect",
    ),
    path(
        "settings/mailboxes/microsoft/callback",
        microsoft.microsoft_connect_callback,
        name="microsoft_connect_callback",
    ),
]
