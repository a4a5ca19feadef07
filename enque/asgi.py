"""The ASGI application: HTTP (Django) now; the realtime websocket joins it in `realtime/`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")

# Django must be set up before anything imports models (the websocket routes will).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
