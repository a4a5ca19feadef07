"""The ASGI application: HTTP (Django) and the realtime websocket (``realtime/``).

The websocket stack is ``AuthMiddlewareStack`` (the UI's session cookie) around the
realtime routes; the consumer also accepts an API token. There is no blanket
``AllowedHostsOriginValidator``: it would refuse every client that sends no ``Origin``
(API clients, scripts) and every SPA of another origin, although a token is not ambient
and needs no origin check. The check that matters — a session cookie counts only from one
of our origins — is made where the cookie is used (``realtime/auth.py``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")

# Django must be set up before anything imports models (the websocket routes do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
